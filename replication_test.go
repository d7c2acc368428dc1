package zeppelin_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// replicaStatus returns member i's status for one replica (ok false when it
// holds none).
func replicaStatus(c *testcluster.Cluster, i int, table placement.TableID, part placement.PartitionID) (wire.ReplicaStatus, bool) {
	s := c.Server(i)
	if s == nil || s.Node() == nil {
		return wire.ReplicaStatus{}, false
	}
	for _, r := range s.Node().Status().Replicas {
		if r.Table == table && r.Partition == part {
			return r, true
		}
	}
	return wire.ReplicaStatus{}, false
}

// slaveOf lists the partitions of table where node is a slave.
func slaveOf(m *placement.Map, table, node string) []placement.PartitionID {
	var out []placement.PartitionID
	for _, p := range m.Table(table).Partitions {
		if p.IsSlave(placement.NodeID(node)) {
			out = append(out, p.ID)
		}
	}
	return out
}

// load writes random sets, overwrites and deletes until stop is closed,
// through c, and returns how many succeeded.
// startWriters runs op(w, i) for i = 0, 1, ... in each of n goroutines
// (w = 0 … n-1) until op returns false or the returned stop is called; stop
// waits for every writer to finish.
func startWriters(n int, op func(w, i int) bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if !op(w, i) {
					return
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

func load(ctx context.Context, c *client.Client, table string, workers int, stop <-chan struct{}) func() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := c.Table(table)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "load-%d-%d", w, rng.IntN(500))
				var err error
				if rng.IntN(5) == 0 {
					_, err = tb.Delete(ctx, k)
				} else {
					err = tb.Set(ctx, k, fmt.Appendf(nil, "v%d", rng.Int()))
				}
				if err == nil {
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}()
	}
	return func() int {
		wg.Wait()
		return done
	}
}

func TestReplicationConvergesAfter20kWrites(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("r", client.TableOptions{Partitions: 16, Replication: 3})
	ctx := ctxFor(t, 2*time.Minute)

	// 8 writers, each owning its keys, mix sets, overwrites and deletes.
	const writers, ops = 8, 20_000
	model := make([]map[string]string, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		model[w] = make(map[string]string)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := c.Client(w % 3).Table("r")
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range ops / writers {
				k := fmt.Sprintf("w%d-k%d", w, rng.IntN(800))
				if rng.IntN(4) == 0 {
					if _, err := tb.Delete(ctx, []byte(k)); err != nil {
						errs <- err
						return
					}
					delete(model[w], k)
					continue
				}
				v := fmt.Sprintf("%d-%d", w, i)
				if err := tb.Set(ctx, []byte(k), []byte(v)); err != nil {
					errs <- err
					return
				}
				model[w][k] = v
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.WaitConverged("r", 30*time.Second)

	// The converged contents are the model's.
	want := make(map[string]string)
	for _, m := range model {
		for k, v := range m {
			want[k] = v
		}
	}
	got := make(map[string]string)
	tbl := c.Map().Table("r")
	for _, p := range tbl.Partitions {
		ds, err := c.Dump("r", p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 3 {
			t.Fatalf("partition %d: %d replicas dumped, want 3", p.ID, len(ds))
		}
		for _, e := range ds[0].Entries {
			got[string(e.Key)] = string(e.Value)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("replicas hold %d keys, model %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s: replicas hold %q, model %q", k, got[k], v)
		}
	}
}

func TestStoppedSlaveCatchesUpByStreaming(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	tbl := c.CreateTable("r", client.TableOptions{Partitions: 12, Replication: 3})
	ctx := ctxFor(t, 2*time.Minute)
	cl := c.NewClient("writer", c.Addr(0), c.Addr(1))

	stop := make(chan struct{})
	wait := load(ctx, cl, "r", 8, stop)
	waitOps(t, cl, "r")

	const victim = 2
	slaves := slaveOf(c.Map(), "r", c.Member(victim).Name)
	// The victim must hold data and stream before it is stopped.
	c.Eventually(10*time.Second, func() error {
		for _, p := range slaves {
			if st, ok := replicaStatus(c, victim, tbl.ID, p); !ok || st.State != wire.ReplStreaming || st.Seq == 0 {
				return fmt.Errorf("partition %d: slave not streaming yet: %+v", p, st)
			}
		}
		return nil
	})
	c.Stop(victim)
	time.Sleep(300 * time.Millisecond) // let the load run while the slave is away
	c.Restart(victim, true)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	if n := wait(); n == 0 {
		t.Fatal("no write succeeded")
	}
	c.WaitConverged("r", 30*time.Second)

	for _, p := range slaves {
		st, ok := replicaStatus(c, victim, tbl.ID, p)
		if !ok {
			t.Fatalf("partition %d: restarted slave holds no replica", p)
		}
		if st.FullSyncs != 0 {
			t.Errorf("partition %d: the restarted slave needed %d full syncs, want streaming only", p, st.FullSyncs)
		}
	}
}

// waitOps waits until writes through cl succeed (the load is running).
func waitOps(t *testing.T, cl *client.Client, table string) {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	if err := cl.Table(table).Set(ctx, []byte("probe"), []byte("1")); err != nil {
		t.Fatal(err)
	}
}

func TestWipedSlaveRejoinsByFullSync(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	tbl := c.CreateTable("r", client.TableOptions{Partitions: 8, Replication: 3})
	ctx := ctxFor(t, 2*time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "r", 3_000)
	// Replication is asynchronous: every acknowledged write must have reached
	// the other replicas before the victim is stopped abruptly and wiped, or
	// the writes it mastered and had not shipped are gone with it.
	c.WaitConverged("r", 30*time.Second)

	const victim = 2
	c.Stop(victim)
	if err := os.RemoveAll(filepath.Join(c.Member(victim).Cfg.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	c.Restart(victim, true)
	c.WaitConverged("r", 30*time.Second)
	checkKeys(t, ctx, c.Client(victim), "r", 3_000)
	for p := range tbl.Partitions {
		st, ok := replicaStatus(c, victim, tbl.ID, placement.PartitionID(p))
		if !ok {
			t.Fatalf("partition %d: wiped node holds no replica", p)
		}
		if st.Role == wire.RoleSlave && st.FullSyncs == 0 {
			t.Errorf("partition %d: wiped slave converged without a full sync", p)
		}
	}
}

func TestSlaveBehindRetainedLogFullSyncs(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Retention = zeppelin.Retention{MaxRecords: 20}
	}})
	tbl := c.CreateTable("r", client.TableOptions{Partitions: 4, Replication: 3})
	ctx := ctxFor(t, 2*time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "r", 200)
	c.WaitConverged("r", 30*time.Second)

	const victim = 2
	before := slaveOf(c.Map(), "r", c.Member(victim).Name)
	seqs := make(map[placement.PartitionID]uint64)
	for _, p := range before {
		st, _ := replicaStatus(c, victim, tbl.ID, p)
		seqs[p] = st.Seq
	}
	c.Stop(victim)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "r", 2_000)
	// Wait until every master has purged past what the victim holds.
	c.Eventually(30*time.Second, func() error {
		m := c.LeaderMap()
		if m == nil {
			return fmt.Errorf("no meta leader")
		}
		for _, p := range before {
			master := m.Table("r").Partitions[p].Master
			for i := range c.Len() {
				if c.Member(i).Name != string(master) {
					continue
				}
				st, ok := replicaStatus(c, i, tbl.ID, p)
				if !ok || st.FirstSeq <= seqs[p]+1 {
					return fmt.Errorf("partition %d: master %s retains from %d, victim needs %d", p, master, st.FirstSeq, seqs[p]+1)
				}
			}
		}
		return nil
	})
	c.Restart(victim, true)
	c.WaitConverged("r", 30*time.Second)
	for _, p := range before {
		st, _ := replicaStatus(c, victim, tbl.ID, p)
		if st.FullSyncs == 0 {
			t.Errorf("partition %d: slave fell out of the retained log but did not full-sync", p)
		}
	}
	checkKeys(t, ctx, c.Client(victim), "r", 2_000)
}

func TestInterruptedFullSyncLeavesIncompleteReplica(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Expert.SnapshotChunk = 16 << 10
	}})
	tbl := c.CreateTable("big", client.TableOptions{Partitions: 1, Replication: 3})
	ctx := ctxFor(t, 2*time.Minute)
	value := make([]byte, 8<<10)
	kvs := make([]client.KV, 0, 200)
	for i := range 2_000 {
		kvs = append(kvs, client.KV{Key: key(i), Value: value})
		if len(kvs) == cap(kvs) {
			if err := c.Client(0).Table("big").MSet(ctx, kvs); err != nil {
				t.Fatal(err)
			}
			kvs = kvs[:0]
		}
	}
	victim := -1
	for i := range c.Len() {
		if st, ok := replicaStatus(c, i, tbl.ID, 0); ok && st.Role == wire.RoleSlave {
			victim = i
		}
	}
	c.WaitConverged("big", 30*time.Second)
	c.Stop(victim)
	dataDir := filepath.Join(c.Member(victim).Cfg.Dir, "data")
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	c.Restart(victim, false)
	// Kill the slave in the middle of its full sync, once it has started
	// loading (and so discarding its old copy).
	c.Eventually(30*time.Second, func() error {
		st, ok := replicaStatus(c, victim, tbl.ID, 0)
		if !ok || st.State != wire.ReplFullSyncing || !st.Incomplete {
			return fmt.Errorf("replica not loading a snapshot yet: %+v", st)
		}
		return nil
	})
	c.Stop(victim)

	store, err := partition.Open(partition.Options{Dir: dataDir, Small: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Replica(uint32(tbl.ID), 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.State(); !st.Incomplete || st.Seq != 0 {
		t.Errorf("interrupted full sync left state %+v, want incomplete at seq 0", st)
	}
	if _, _, found, err := r.Get(key(0)); found || err == nil {
		t.Errorf("an incomplete replica served a read: found=%v err=%v", found, err)
	}
	store.Close()

	c.Restart(victim, true)
	c.WaitConverged("big", time.Minute)
}
