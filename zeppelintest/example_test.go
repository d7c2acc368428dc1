package zeppelintest_test

import (
	"context"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
	"github.com/zeppelin-kv/zeppelin/zeppelintest"
)

// A test of a program's own code against a three-server cluster: a write
// to a sync table survives the crash of the server that mastered it.
func TestWriteSurvivesItsMastersCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := zeppelintest.Start(t, zeppelintest.Options{Servers: 3})
	c.CreateTable("sessions", client.TableOptions{Partitions: 4, Replication: 3, Mode: placement.ModeSync})
	sessions := c.NewClient().Table("sessions")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sessions.Set(ctx, []byte("token"), []byte("alice"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tbl := c.Map().Table("sessions")
	master := tbl.Partitions[placement.PartitionOf([]byte("token"), len(tbl.Partitions))].Master
	for i := range c.Len() {
		if c.NodeID(i) == master {
			c.Kill(i)
		}
	}
	v, err := sessions.Get(ctx, []byte("token"))
	if err != nil || string(v) != "alice" {
		t.Fatalf("after the crash of its master %s: %q %v", master, v, err)
	}
}
