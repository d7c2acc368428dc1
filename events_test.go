package zeppelin_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestEvents kills the master of a partition and finds the failover among
// the meta leader's events, through Server.Events and Client.Events, with
// the table named.
func TestEvents(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	tbl := c.CreateTable("ev", client.TableOptions{Partitions: 4, Replication: 3})
	victim := tbl.Partitions[0].Master
	vi := c.Index(victim)
	leader := c.WaitMetaLeader()
	if leader == vi {
		// Keep the meta leader: its events are the ones looked at.
		c.Eventually(30*time.Second, func() error {
			if err := c.Client(leader).SetMaster(ctxFor(t, 10*time.Second), "ev", 0, placement.NodeID(c.Member((leader+1)%3).Name)); err != nil {
				return err
			}
			victim = placement.NodeID(c.Member((leader + 1) % 3).Name)
			return nil
		})
		vi = c.Index(victim)
	}
	c.Stop(vi)
	failover := func(evs []client.Event) error {
		for _, e := range evs {
			if e.Kind == "failover" && e.Table == "ev" && e.From == victim && e.Node != victim && e.Node != "" && !e.Time.IsZero() {
				return nil
			}
		}
		return fmt.Errorf("no failover of ev away from %s among %d events", victim, len(evs))
	}
	c.Eventually(30*time.Second, func() error { return failover(c.Server(leader).Events(100)) })
	cl := c.NewClient("events")
	evs, err := cl.Events(ctxFor(t, 10*time.Second), c.Addr(leader), 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := failover(evs); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.After(evs[i-1].Time) {
			t.Fatalf("events not newest first: %v after %v", evs[i].Time, evs[i-1].Time)
		}
	}
	if evs[0].Source != c.Member(leader).Name {
		t.Errorf("source %q, want %q", evs[0].Source, c.Member(leader).Name)
	}
}
