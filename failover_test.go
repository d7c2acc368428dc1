package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/meta"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// splitCluster starts metas meta-only members (n1..) followed by datas
// data-only members, so that killing a data node never costs a meta
// member and the other way round.
func splitCluster(t *testing.T, metas, datas int, configure func(int, *zeppelin.Config)) *testcluster.Cluster {
	t.Helper()
	var roles []zeppelin.Roles
	for range metas {
		roles = append(roles, zeppelin.RoleMeta)
	}
	for range datas {
		roles = append(roles, zeppelin.RoleData)
	}
	return testcluster.New(t, testcluster.Options{Servers: metas + datas, Roles: roles, Configure: configure})
}

// keysIn returns n keys that fall in partition part of a table with parts
// partitions.
func keysIn(prefix string, part placement.PartitionID, parts, n int) [][]byte {
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		k := fmt.Appendf(nil, "%s-%d", prefix, i)
		if placement.PartitionOf(k, parts) == part {
			out = append(out, k)
		}
	}
	return out
}

// mastersOf counts the partitions each node masters in table (nil when
// there is no map, e.g. during a meta election).
func mastersOf(m *placement.Map, table string) map[placement.NodeID]int {
	if m == nil || m.Table(table) == nil {
		return nil
	}
	out := make(map[placement.NodeID]int)
	for _, p := range m.Table(table).Partitions {
		out[p.Master]++
	}
	return out
}

// waitMasterMoved waits until partition part of table has a master other
// than from in the leader's map, and returns it.
func waitMasterMoved(t *testing.T, c *testcluster.Cluster, table string, part placement.PartitionID, from placement.NodeID) placement.NodeID {
	t.Helper()
	var to placement.NodeID
	c.Eventually(30*time.Second, func() error {
		m := c.LeaderMap()
		if m == nil {
			return fmt.Errorf("no meta leader")
		}
		to = m.Table(table).Partitions[part].Master
		if to == "" || to == from {
			return fmt.Errorf("partition %d still mastered by %q", part, to)
		}
		return nil
	})
	return to
}

// checkOneMaster checks the map's structure: every partition has exactly
// one master, which is not also a slave, and distinct replicas.
// waitWrites waits until n more writes than now have been counted.
func waitWrites(c *testcluster.Cluster, writes *atomic.Int64, n int64) {
	want := writes.Load() + n
	c.Eventually(30*time.Second, func() error {
		if got := writes.Load(); got < want {
			return fmt.Errorf("%d writes acknowledged, waiting for %d", got, want)
		}
		return nil
	})
}

// waitAllUpAndMastered waits until the meta leader's map has every node up
// and a master for every partition.
func waitAllUpAndMastered(c *testcluster.Cluster, timeout time.Duration) {
	c.Eventually(timeout, func() error {
		m := c.LeaderMap()
		if m == nil {
			return fmt.Errorf("no meta leader")
		}
		for _, n := range m.Nodes {
			if n.State != placement.NodeUp {
				return fmt.Errorf("node %s is %v", n.ID, n.State)
			}
		}
		for _, tb := range m.Tables {
			for _, p := range tb.Partitions {
				if p.Master == "" {
					return fmt.Errorf("table %s partition %d has no master", tb.Name, p.ID)
				}
			}
		}
		return nil
	})
}

func checkOneMaster(t *testing.T, m *placement.Map) {
	t.Helper()
	for _, tb := range m.Tables {
		for _, p := range tb.Partitions {
			reps := p.Replicas()
			if p.Master == "" {
				t.Errorf("table %s partition %d has no master", tb.Name, p.ID)
			}
			seen := map[placement.NodeID]bool{}
			for _, n := range reps {
				if seen[n] {
					t.Errorf("table %s partition %d lists %s twice: master %s slaves %v", tb.Name, p.ID, n, p.Master, p.Slaves)
				}
				seen[n] = true
			}
			if len(reps) != tb.Replication {
				t.Errorf("table %s partition %d has %d replicas, want %d", tb.Name, p.ID, len(reps), tb.Replication)
			}
		}
	}
}

func TestFailoverKillBusiestMaster(t *testing.T) {
	c := splitCluster(t, 3, 3, nil)
	const parts = 12
	c.CreateTable("f", client.TableOptions{Partitions: parts, Replication: 3})
	cl := c.NewClient("writer")
	tb := cl.Table("f")

	var killAt atomic.Int64
	resumed := make([]atomic.Int64, parts)
	keys := make([][][]byte, parts)
	for p := range parts {
		keys[p] = keysIn("f", placement.PartitionID(p), parts, 50)
	}
	stop := startWriters(parts, func(p, i int) bool {
		// Only a write sent after the victim is gone shows that its
		// partition has resumed.
		sent := time.Now().UnixNano()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := tb.Set(ctx, keys[p][i%len(keys[p])], fmt.Appendf(nil, "%d", i))
		cancel()
		if k := killAt.Load(); err == nil && k != 0 && sent >= k {
			resumed[p].CompareAndSwap(0, time.Now().UnixNano())
		}
		return true
	})
	waitOps(t, cl, "f")

	c.WaitMetaLeader()
	m := c.Map()
	counts := mastersOf(m, "f")
	var victim placement.NodeID
	for n, k := range counts {
		if victim == "" || k > counts[victim] || (k == counts[victim] && n < victim) {
			victim = n
		}
	}
	var affected []int
	for _, p := range m.Table("f").Partitions {
		if p.Master == victim {
			affected = append(affected, int(p.ID))
		}
	}
	kill := time.Now()
	c.Stop(c.Index(victim))
	killAt.Store(time.Now().UnixNano())
	c.Eventually(30*time.Second, func() error {
		for p := range parts {
			if resumed[p].Load() == 0 {
				return fmt.Errorf("partition %d has not taken a write since the kill", p)
			}
		}
		return nil
	})
	stop()
	var ds []time.Duration
	for _, p := range affected {
		d := time.Duration(resumed[p].Load() - kill.UnixNano())
		ds = append(ds, d)
		t.Logf("partition %d (was mastered by %s): first write %v after the kill", p, victim, d.Round(time.Millisecond))
	}
	slices.Sort(ds)
	t.Logf("killed %s mastering %d of %d partitions: writes resumed after median %v, max %v",
		victim, len(affected), parts, ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	checkOneMaster(t, c.Map())
}

// lastWriteMs returns the master time of the newest record member i holds
// for the partition.
func lastWriteMs(t *testing.T, c *testcluster.Cluster, i int, table placement.TableID, part placement.PartitionID) int64 {
	t.Helper()
	r, err := c.Server(i).Node().Store().Replica(uint32(table), uint32(part))
	if err != nil {
		t.Fatal(err)
	}
	st := r.State()
	recs, err := r.ReadLog(st.FirstSeq, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, rec := range recs {
		_, _, ms, err := binlog.Peek(rec)
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, ms)
	}
	return last
}

// failoverEvent finds the leader's failover decision for a partition away
// from node.
func failoverEvent(t *testing.T, c *testcluster.Cluster, table placement.TableID, part placement.PartitionID, from placement.NodeID) meta.Event {
	t.Helper()
	var ev meta.Event
	c.Eventually(10*time.Second, func() error {
		for i := range c.Len() {
			s := c.Server(i)
			if s == nil || s.Meta() == nil {
				continue
			}
			for _, e := range s.Meta().Events() {
				if e.Kind == "failover" && e.Table == table && e.Partition == part && e.From == from {
					ev = e
					return nil
				}
			}
		}
		var all []meta.Event
		for i := range c.Len() {
			if s := c.Server(i); s != nil && s.Meta() != nil {
				all = append(all, s.Meta().Events()...)
			}
		}
		return fmt.Errorf("no failover event for partition %d from %s among %+v", part, from, all)
	})
	return ev
}

// isolate cuts node off from every other member (meta and data); clients
// still reach it.
func isolate(c *testcluster.Cluster, node placement.NodeID) {
	for i := range c.Len() {
		if n := c.Member(i).Name; n != string(node) {
			c.Hub.Block(string(node), n)
		}
	}
}

func TestFencedMasterStopsBeforePromotion(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	tbl := c.CreateTable("fenced", client.TableOptions{Partitions: 4, Replication: 3, Fenced: true})
	victim := c.Map().Table("fenced").Partitions[0].Master
	vi := c.Index(victim)
	keys := keysIn("k", 0, 4, 200)
	cl := c.NewClient("client")
	tb := cl.Table("fenced")
	ctx := ctxFor(t, time.Minute)

	// A writer hammers partition 0 throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := tb.Set(wctx, keys[i%len(keys)], fmt.Appendf(nil, "%d", i)); err == nil {
				acked.Add(1)
			}
			cancel()
		}
	}()
	waitOps(t, cl, "fenced")

	isolate(c, victim) // the client can still reach it
	newMaster := waitMasterMoved(t, c, "fenced", 0, victim)
	ev := failoverEvent(t, c, tbl.ID, 0, victim)
	last := lastWriteMs(t, c, vi, tbl.ID, 0)
	t.Logf("old master %s took its last write %d ms before the failover decision to %s", victim, ev.Time.UnixMilli()-last, newMaster)
	if last >= ev.Time.UnixMilli() {
		t.Fatalf("the fenced master %s accepted a write at %d, not before the failover decision at %d", victim, last, ev.Time.UnixMilli())
	}
	// Writes go on at the new master.
	before := acked.Load()
	c.Eventually(20*time.Second, func() error {
		if acked.Load() < before+10 {
			return fmt.Errorf("writes have not resumed (%d acknowledged)", acked.Load())
		}
		return nil
	})
	c.Hub.Heal()
	close(stop)
	wg.Wait()
	c.WaitConverged("fenced", 30*time.Second)
	if p := c.Map().Table("fenced").Partitions[0]; p.Master != newMaster || !p.IsSlave(victim) {
		t.Fatalf("after healing: master %s slaves %v, want master %s with %s as a slave", p.Master, p.Slaves, newMaster, victim)
	}
}

func TestUnfencedMasterWritesAreDiscardedOnRejoin(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	c.CreateTable("open", client.TableOptions{Partitions: 4, Replication: 3})
	victim := c.Map().Table("open").Partitions[0].Master
	keys := keysIn("k", 0, 4, 60)
	ctx := ctxFor(t, time.Minute)

	stale := c.NewClient("stale") // keeps the map it has: it will write to the deposed master
	for _, k := range keys[:20] {
		if err := stale.Table("open").Set(ctx, k, []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitConverged("open", 30*time.Second)

	isolate(c, victim)
	waitMasterMoved(t, c, "open", 0, victim)
	// The deposed master does not know yet and keeps acknowledging: the
	// unfenced promise.
	for _, k := range keys[20:40] {
		if err := stale.Table("open").Set(ctx, k, []byte("during")); err != nil {
			t.Fatalf("write to the cut-off master: %v", err)
		}
	}
	fresh := c.NewClient("fresh")
	for _, k := range keys[40:] {
		if err := fresh.Table("open").Set(ctx, k, []byte("after")); err != nil {
			t.Fatal(err)
		}
	}
	c.Hub.Heal()
	c.WaitConverged("open", 30*time.Second)
	for i, k := range keys {
		v, err := fresh.Table("open").Get(ctx, k)
		switch {
		case i < 20 && string(v) != "before", i >= 40 && string(v) != "after":
			t.Errorf("key %s: %q %v, want it kept", k, v, err)
		case i >= 20 && i < 40 && !errors.Is(err, client.ErrNotFound):
			t.Errorf("key %s written to the deposed master survived: %q %v", k, v, err)
		}
	}
}

func TestAsyncDivergenceIsResynchronisedInFull(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	tbl := c.CreateTable("d", client.TableOptions{Partitions: 1, Replication: 3})
	m := c.Map()
	p := m.Table("d").Partitions[0]
	victim := p.Master
	vi := c.Index(victim)
	cl := c.NewClient("client")
	tb := cl.Table("d")
	ctx := ctxFor(t, time.Minute)
	put := func(prefix string) {
		t.Helper()
		for i := range 50 {
			if err := tb.Set(ctx, fmt.Appendf(nil, "%s-%d", prefix, i), []byte(prefix)); err != nil {
				t.Fatalf("%s: %v", prefix, err)
			}
		}
	}
	put("a")
	c.WaitConverged("d", 30*time.Second)
	for _, s := range p.Slaves {
		c.Hub.Block(string(victim), string(s)) // the slaves stop replicating
	}
	put("b") // acknowledged by the master alone
	c.Stop(vi)
	waitMasterMoved(t, c, "d", 0, victim)
	put("c")
	c.Hub.Heal()
	c.Restart(vi, true)
	c.WaitConverged("d", 30*time.Second)
	st, _ := replicaStatus(c, vi, tbl.ID, 0)
	if st.FullSyncs == 0 {
		t.Errorf("the diverged old master rejoined without a full sync: %+v", st)
	}
	ds, err := c.Dump("d", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if len(d.Entries) != 100 {
			t.Errorf("%s holds %d keys, want the 100 of a and c", d.Node, len(d.Entries))
		}
		for _, e := range d.Entries {
			if string(e.Value) == "b" {
				t.Errorf("%s kept %s, written only to the old master", d.Node, e.Key)
			}
		}
	}
}

func TestWipedMasterRestartedQuicklyLosesNothing(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("w", client.TableOptions{Partitions: 6, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "w", 1_000)
	c.WaitConverged("w", 30*time.Second)
	victim := c.Map().Table("w").Partitions[0].Master
	vi := c.Index(victim)
	c.Stop(vi)
	if err := os.RemoveAll(filepath.Join(c.Member(vi).Cfg.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	c.Restart(vi, true) // well within DownTimeout
	if p := c.Map().Table("w").Partitions[0]; p.Master == victim {
		t.Fatalf("the node that lost its store is still master of partition 0")
	}
	checkKeys(t, ctx, c.NewClient("reader"), "w", 1_000)
	c.WaitConverged("w", 30*time.Second)
}

func TestMetaLeaderKilledDuringNodeFailure(t *testing.T) {
	c := splitCluster(t, 3, 3, nil)
	c.CreateTable("f", client.TableOptions{Partitions: 6, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.NewClient("w")}, "f", 300)
	c.WaitConverged("f", 30*time.Second) // a kill loses what slaves have not received
	leader := c.WaitMetaLeader()
	victim := c.Map().Table("f").Partitions[0].Master
	c.Stop(c.Index(victim))
	c.Stop(leader)
	waitMasterMoved(t, c, "f", 0, victim)
	nl := c.WaitMetaLeader()
	var leadAt, failAt time.Time
	for _, e := range c.Server(nl).Meta().Events() {
		switch {
		case e.Kind == "leader":
			leadAt = e.Time
		case e.Kind == "failover" && e.From == victim && failAt.IsZero():
			failAt = e.Time
		}
	}
	if leadAt.IsZero() || failAt.IsZero() {
		t.Fatalf("new leader's events lack the election or the failover: %+v", c.Server(nl).Meta().Events())
	}
	grace := c.Member(nl).Cfg.DownTimeout
	t.Logf("new leader elected, failed %s over %v later (grace %v)", victim, failAt.Sub(leadAt).Round(time.Millisecond), grace)
	if failAt.Sub(leadAt) < grace {
		t.Fatalf("new leader failed over after %v, before its %v grace period", failAt.Sub(leadAt), grace)
	}
	checkKeys(t, ctx, c.NewClient("r"), "f", 300)
	checkOneMaster(t, c.Map())
}

func TestSetMasterLosesNothing(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("s", client.TableOptions{Partitions: 2, Replication: 3})
	cl := c.NewClient("w")
	tb := cl.Table("s")
	ctx := ctxFor(t, time.Minute)
	keys := keysIn("s", 0, 2, 100)

	// Writers record the last acknowledged value of every key.
	var mu sync.Mutex
	acked := map[string]string{}
	var slowest atomic.Int64
	var writes atomic.Int64
	stop := startWriters(4, func(w, i int) bool {
		k := keys[(w*25)+i%25]
		v := fmt.Sprintf("%d-%d", w, i)
		start := time.Now()
		if err := tb.Set(ctx, k, []byte(v)); err != nil {
			t.Errorf("write during the switchover: %v", err)
			return false
		}
		if d := time.Since(start); d.Nanoseconds() > slowest.Load() {
			slowest.Store(d.Nanoseconds())
		}
		mu.Lock()
		acked[string(k)] = v
		mu.Unlock()
		writes.Add(1)
		return true
	})
	waitOps(t, cl, "s")
	p := c.Map().Table("s").Partitions[0]
	target := p.Slaves[0]
	waitWrites(c, &writes, 200) // some load before the switchover
	start := time.Now()
	if err := cl.SetMaster(ctx, "s", 0, target); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	waitWrites(c, &writes, 200) // and after it
	stop()
	np := c.Map().Table("s").Partitions[0]
	if np.Master != target || np.Gen != p.Gen+1 || !np.IsSlave(p.Master) {
		t.Fatalf("after SetMaster: %+v, want master %s at gen %d with %s as a slave", np, target, p.Gen+1, p.Master)
	}
	t.Logf("switchover committed in %v; slowest write during it %v", took.Round(time.Millisecond), time.Duration(slowest.Load()).Round(time.Millisecond))
	for k, v := range acked {
		got, err := tb.Get(ctx, []byte(k))
		if err != nil || string(got) != v {
			t.Fatalf("acknowledged %s=%s, now %q %v", k, v, got, err)
		}
	}
	c.WaitConverged("s", 30*time.Second)
}

func TestMastersRebalancedAfterNodeReturns(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("b", client.TableOptions{Partitions: 12, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "b", 500)
	c.WaitConverged("b", 30*time.Second) // a kill loses what slaves have not received
	victim := 2
	name := placement.NodeID(c.Member(victim).Name)
	c.Stop(victim)
	c.Eventually(30*time.Second, func() error {
		counts := mastersOf(c.LeaderMap(), "b")
		if counts == nil || counts[name] != 0 {
			return fmt.Errorf("%s still masters partitions: %v", name, counts)
		}
		return nil
	})
	c.Restart(victim, true)
	c.Eventually(30*time.Second, func() error {
		counts := mastersOf(c.LeaderMap(), "b")
		for i := range c.Len() {
			if n := counts[placement.NodeID(c.Member(i).Name)]; n != 4 {
				return fmt.Errorf("masters per node %v, want 4 each", counts)
			}
		}
		return nil
	})
	checkKeys(t, ctx, c.NewClient("r"), "b", 500)
	c.WaitConverged("b", 30*time.Second)
}

func TestMetaMemberLoss(t *testing.T) {
	c := splitCluster(t, 3, 3, nil)
	c.CreateTable("fenced", client.TableOptions{Partitions: 6, Replication: 3, Fenced: true})
	c.CreateTable("open", client.TableOptions{Partitions: 6, Replication: 3})
	cl := c.NewClient("client")
	ctx := ctxFor(t, 3*time.Minute)
	writeKeys(t, ctx, []*client.Client{cl}, "fenced", 300)
	writeKeys(t, ctx, []*client.Client{cl}, "open", 300)
	c.WaitConverged("open", 30*time.Second) // kills below must not cost writes
	c.WaitConverged("fenced", 30*time.Second)

	// One member down, the leader: everything keeps working, failover
	// included.
	first := c.WaitMetaLeader()
	c.Stop(first)
	c.WaitMetaLeader()
	if _, err := cl.CreateTable(ctx, "third", client.TableOptions{Partitions: 2, Replication: 3}); err != nil {
		t.Fatalf("create table with one meta member down: %v", err)
	}
	c.WaitServing("third")
	victim := c.Map().Table("open").Partitions[0].Master
	c.Stop(c.Index(victim))
	waitMasterMoved(t, c, "open", 0, victim)
	checkKeys(t, ctx, cl, "open", 300)
	checkKeys(t, ctx, cl, "fenced", 300)
	c.Restart(c.Index(victim), true)
	c.WaitConverged("open", 30*time.Second)

	// Two members down: no quorum.
	second := c.WaitMetaLeader()
	c.Stop(second)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	sctx, cancel := short()
	if _, err := cl.CreateTable(sctx, "fourth", client.TableOptions{Partitions: 2, Replication: 3}); err == nil {
		t.Fatal("a table was created without a meta quorum")
	}
	cancel()
	// Unfenced reads and writes go on.
	checkKeys(t, ctx, cl, "open", 300)
	for i := range 50 {
		sctx, cancel := short()
		if err := cl.Table("open").Set(sctx, fmt.Appendf(nil, "noquorum-%d", i), []byte("v")); err != nil {
			t.Fatalf("unfenced write without a meta quorum: %v", err)
		}
		cancel()
	}
	// Fenced writes and reads pause once the leases lapse: no master can
	// tell whether it has been replaced.
	c.Eventually(10*time.Second, func() error {
		sctx, cancel := short()
		defer cancel()
		err := cl.Table("fenced").Set(sctx, []byte("noquorum"), []byte("v"))
		if err == nil {
			return fmt.Errorf("fenced write still accepted")
		}
		if !errors.Is(err, client.ErrUnavailable) {
			return fmt.Errorf("fenced write failed with %v, want a wait that ends in ErrUnavailable", err)
		}
		rctx, rcancel := short()
		defer rcancel()
		_, err = cl.Table("fenced").Get(rctx, key(0))
		if !errors.Is(err, client.ErrUnavailable) {
			return fmt.Errorf("fenced read: %v, want a wait that ends in ErrUnavailable", err)
		}
		return nil
	})
	// No failover either.
	survivor := 3 - first - second // the meta members are 0, 1 and 2
	before := c.Server(survivor).Meta().Map()
	dataVictim := before.Table("open").Partitions[1].Master
	c.Stop(c.Index(dataVictim))
	time.Sleep(2 * c.Member(0).Cfg.DownTimeout)
	if after := c.Server(survivor).Meta().Map(); after.Epoch != before.Epoch {
		t.Fatalf("the map changed from epoch %d to %d without a meta quorum", before.Epoch, after.Epoch)
	}

	// Quorum back: fenced writes resume and the dead node fails over.
	c.Restart(first, false)
	c.Restart(second, false)
	waitMasterMoved(t, c, "open", 1, dataVictim)
	if err := cl.Table("fenced").Set(ctx, []byte("quorum-back"), []byte("v")); err != nil {
		t.Fatalf("fenced write after the quorum came back: %v", err)
	}
	c.Restart(c.Index(dataVictim), true)
	c.WaitConverged("open", 30*time.Second)
	c.WaitConverged("fenced", 30*time.Second)
}

func TestRandomKillRestartConverges(t *testing.T) {
	c := splitCluster(t, 3, 4, nil)
	c.CreateTable("chaos", client.TableOptions{Partitions: 12, Replication: 3})
	c.CreateTable("chaosf", client.TableOptions{Partitions: 6, Replication: 3, Fenced: true})
	cl := c.NewClient("load")
	ctx := ctxFor(t, 5*time.Minute)
	stop := make(chan struct{})
	done1 := load(ctx, cl, "chaos", 6, stop)
	done2 := load(ctx, cl, "chaosf", 4, stop)
	rng := rand.New(rand.NewPCG(42, 42))
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		i := 3 + rng.IntN(4) // a data node
		if round%5 == 4 {
			i = rng.IntN(3) // now and then a meta member
		}
		c.Stop(i)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		c.Restart(i, true)
	}
	close(stop)
	t.Logf("%d and %d writes succeeded during %d rounds", done1(), done2(), rounds)
	waitAllUpAndMastered(c, 30*time.Second)
	c.WaitConverged("chaos", time.Minute)
	c.WaitConverged("chaosf", time.Minute)
	checkOneMaster(t, c.Map())
}

func TestGracefulShutdownHandsOffAndLosesNothing(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("g", client.TableOptions{Partitions: 12, Replication: 3})
	cl := c.NewClient("w")
	tb := cl.Table("g")
	ctx := ctxFor(t, time.Minute)

	var mu sync.Mutex
	var acked [][]byte
	var writes atomic.Int64
	stop := startWriters(8, func(w, i int) bool {
		k := fmt.Appendf(nil, "g%d-%d", w, i)
		if err := tb.Set(ctx, k, []byte("v")); err != nil {
			t.Errorf("write during the shutdown: %v", err)
			return false
		}
		mu.Lock()
		acked = append(acked, k)
		mu.Unlock()
		writes.Add(1)
		return true
	})
	waitOps(t, cl, "g")
	// Every slave must hold a complete copy: a master hands its role only
	// to one that does.
	c.WaitSlavesStreaming(30 * time.Second)
	victim := 1
	name := placement.NodeID(c.Member(victim).Name)
	mastered := mastersOf(c.Map(), "g")[name]
	members := make([]*zeppelin.Server, c.Len()) // the victim may be the meta leader that runs the hand-off
	for i := range members {
		members[i] = c.Server(i)
	}
	start := time.Now()
	c.Shutdown(victim)
	t.Logf("shutdown of %s (master of %d partitions) took %v", name, mastered, time.Since(start).Round(time.Millisecond))
	waitWrites(c, &writes, 200) // writes go on after it
	stop()

	if n := mastersOf(c.Map(), "g")[name]; n != 0 {
		t.Errorf("%s still masters %d partitions after shutting down", name, n)
	}
	switchovers := 0
	for _, s := range members {
		if s.Meta() == nil {
			continue
		}
		for _, e := range s.Meta().Events() {
			switch {
			case e.Kind == "switchover" && e.From == name:
				switchovers++
			case e.Kind == "failover" && e.From == name:
				t.Errorf("partition %d failed over from %s: the shutdown did not hand it off", e.Partition, name)
			}
		}
	}
	if switchovers != mastered {
		t.Errorf("%d switchovers away from %s, want %d", switchovers, name, mastered)
	}
	for lo := 0; lo < len(acked); lo += 1000 {
		res, err := tb.MGet(ctx, acked[lo:min(lo+1000, len(acked))])
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range res {
			if !r.Found {
				t.Fatalf("acknowledged write %s lost", acked[lo+j])
			}
		}
	}
	t.Logf("%d acknowledged writes, none lost", len(acked))
}
