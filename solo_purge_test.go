package zeppelin_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// memberOf returns the index of the cluster member running data node n.
func memberOf(t *testing.T, c *testcluster.Cluster, n placement.NodeID) int {
	t.Helper()
	for i := range c.Len() {
		if c.Member(i).Name == string(n) {
			return i
		}
	}
	t.Fatalf("no member runs node %s", n)
	return -1
}

// TestSoloMasterPurgesToSoloBoundAndNewSlaveFullSyncs checks the retention
// of a master no slave can continue from: the binlog of a table of
// replication factor 1 is purged down to Retention.SoloMaxBytes while a
// replicated table's, written alike, stays within the larger MaxBytes
// untouched, and a replica added later (a move onto another node) catches
// up by full sync and then serves every key.
func TestSoloMasterPurgesToSoloBoundAndNewSlaveFullSyncs(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Retention = zeppelin.Retention{MaxBytes: 64 << 20, SoloMaxBytes: 2 << 10}
	}})
	solo := c.CreateTable("solo", client.TableOptions{Partitions: 2, Replication: 1})
	repl := c.CreateTable("repl", client.TableOptions{Partitions: 2, Replication: 2})
	ctx := ctxFor(t, 2*time.Minute)
	const n = 2_000
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "solo", n)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "repl", n)
	c.WaitConverged("repl", 30*time.Second)

	// Each partition holds about 1,000 records of some 40 bytes: a 2 KiB
	// bound keeps a few dozen of them.
	c.Eventually(30*time.Second, func() error {
		m := c.LeaderMap()
		if m == nil {
			return fmt.Errorf("no meta leader")
		}
		for _, p := range m.Table("solo").Partitions {
			st, ok := replicaStatus(c, memberOf(t, c, p.Master), solo.ID, p.ID)
			if !ok {
				return fmt.Errorf("solo partition %d: master %s holds no replica", p.ID, p.Master)
			}
			if kept := st.Seq + 1 - st.FirstSeq; st.Seq < n/4 || kept > st.Seq/4 {
				return fmt.Errorf("solo partition %d: retains %d of %d records", p.ID, kept, st.Seq)
			}
		}
		return nil
	})
	for _, p := range c.Map().Table("repl").Partitions {
		st, ok := replicaStatus(c, memberOf(t, c, p.Master), repl.ID, p.ID)
		if !ok || st.FirstSeq != 1 {
			t.Errorf("replicated partition %d: master retains from %d (found %v), want the whole log", p.ID, st.FirstSeq, ok)
		}
	}

	// Move partition 0 of the solo table to the other node: the target
	// joins as a learner that cannot continue from the purged log.
	p := c.Map().Table("solo").Partitions[0]
	to := nodeOutside(c, p)
	id, err := c.Client(0).Migrate(ctx, "solo", 0, p.Master, to)
	if err != nil {
		t.Fatal(err)
	}
	if m := waitMigration(t, c.Client(0), id); m.Error != "" {
		t.Fatalf("move of solo partition 0 to %s: %s", to, m.Error)
	}
	checkMoved(t, c, "solo", 0, p.Master, to)
	st, ok := replicaStatus(c, memberOf(t, c, to), solo.ID, 0)
	if !ok || st.FullSyncs == 0 {
		t.Errorf("new master %s of solo partition 0: %+v (found %v), want a full sync", to, st, ok)
	}
	checkKeys(t, ctx, c.Client(0), "solo", n)
	checkKeys(t, ctx, c.Client(1), "solo", n)
}
