package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// inSyncOf returns partition part's in-sync set in the leader's map.
func inSyncOf(c interface{ Map() *placement.Map }, table string, part placement.PartitionID) []placement.NodeID {
	return c.Map().Table(table).Partitions[part].InSync
}

// syncWriteLoad is writeLoad for a sync table through failovers: a write
// whose outcome is unknown (ErrAmbiguous: its master failed while it
// waited; a sync table's writes are never sent twice) or that was refused
// (ErrNotEnoughReplicas) is not recorded; any other failure is an error.
func syncWriteLoad(t *testing.T, cl *client.Client, table string, writers int) (*ackLog, func()) {
	acks := newAckLog()
	tb := cl.Table(table)
	stop := startWriters(writers, func(w, i int) bool {
		k, v := fmt.Sprintf("w%d-%d", w, i%300), fmt.Sprintf("%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := tb.Set(ctx, []byte(k), []byte(v))
		switch {
		case err == nil:
			acks.add(k, v)
		case errors.Is(err, client.ErrClosed):
			return false
		case errors.Is(err, client.ErrAmbiguous), errors.Is(err, client.ErrNotEnoughReplicas):
			// Unknown or refused: the key's next write settles it.
		default:
			t.Errorf("write %s: %v", k, err)
			return false
		}
		return true
	})
	return acks, stop
}

func TestSyncTableKeepsEveryAcknowledgedWriteThroughFailover(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	tbl := c.CreateTable("s", client.TableOptions{Partitions: 4, Replication: 3, Mode: placement.ModeSync})
	if !tbl.Fenced || tbl.MinInSync != 2 {
		t.Fatalf("sync table: fenced %v, min in-sync %d; want fenced and 2 (a majority of 3)", tbl.Fenced, tbl.MinInSync)
	}
	for _, p := range c.Map().Table("s").Partitions {
		if len(p.InSync) != 3 {
			t.Fatalf("partition %d starts with in-sync set %v, want its 3 replicas", p.ID, p.InSync)
		}
	}
	cl := c.NewClient("writer")
	acks, stop := syncWriteLoad(t, cl, "s", 6)
	waitOps(t, cl, "s")
	c.Eventually(20*time.Second, func() error {
		if acks.count() < 500 {
			return fmt.Errorf("%d writes", acks.count())
		}
		return nil
	})
	// Kill the node mastering most partitions: with async replication its
	// unshipped tail would be lost; with sync nothing acknowledged is.
	victim := placement.NodeID("")
	counts := mastersOf(c.Map(), "s")
	for n, k := range counts {
		if victim == "" || k > counts[victim] {
			victim = n
		}
	}
	n0 := acks.count()
	c.Stop(c.Index(victim))
	c.Eventually(30*time.Second, func() error {
		if acks.count() < n0+500 {
			return fmt.Errorf("%d writes since the kill", acks.count()-n0)
		}
		return nil
	})
	stop()
	ctx := ctxFor(t, time.Minute)
	acks.check(t, ctx, cl.Table("s"))
	for _, p := range c.Map().Table("s").Partitions {
		if slices.Contains(p.InSync, victim) || p.Master == victim {
			t.Errorf("partition %d after the kill of %s: master %s, in-sync %v", p.ID, victim, p.Master, p.InSync)
		}
	}
	t.Logf("killed %s; %d writes acknowledged, none lost", victim, acks.count())
}

func TestSyncNotEnoughReplicasThenRecovery(t *testing.T) {
	c := splitCluster(t, 1, 3, func(i int, cfg *zeppelin.Config) {
		if i == 0 {
			cfg.HTTPAddr = "127.0.0.1:0"
		}
	})
	c.CreateTable("n", client.TableOptions{Partitions: 1, Replication: 3, Mode: placement.ModeSync})
	cl := c.NewClient("writer")
	tb := cl.Table("n")
	ctx := ctxFor(t, 2*time.Minute)
	if err := tb.Set(ctx, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	p := c.Map().Table("n").Partitions[0]
	// One slave down: the set shrinks to two, still the minimum.
	c.Stop(c.Index(p.Slaves[0]))
	if err := tb.Set(ctx, []byte("b"), []byte("2")); err != nil {
		t.Fatalf("write with one slave down: %v", err)
	}
	// Both down: writes are refused, retryably, and nothing is written. (A
	// write caught while the set shrinks below the minimum has an unknown
	// outcome: it ends with ErrAmbiguous.)
	c.Stop(c.Index(p.Slaves[1]))
	var refused []string
	c.Eventually(20*time.Second, func() error {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		k := fmt.Sprintf("c%d", len(refused))
		err := tb.Set(wctx, []byte(k), []byte("3"))
		if !errors.Is(err, client.ErrNotEnoughReplicas) || errors.Is(err, client.ErrAmbiguous) {
			refused = append(refused, "") // this key's fate is unknown
			return fmt.Errorf("write with both slaves down: %v, want ErrNotEnoughReplicas", err)
		}
		refused = append(refused, k)
		return nil
	})
	if got := inSyncOf(c, "n", 0); len(got) != 1 {
		t.Fatalf("in-sync set with both slaves down: %v", got)
	}
	// The shortfall shows in the meta member's metrics and status.
	base := "http://" + c.Server(0).HTTPAddr()
	c.Eventually(10*time.Second, func() error {
		body := get(t, base+"/metrics")
		if v := metricValue(t, body, "zeppelin_meta_partitions_below_min_in_sync", `table="n"`); v != 1 {
			return fmt.Errorf("zeppelin_meta_partitions_below_min_in_sync = %v, want 1", v)
		}
		if v := metricValue(t, body, "zeppelin_meta_in_sync_replicas", `table="n"`); v != 1 {
			return fmt.Errorf("zeppelin_meta_in_sync_replicas = %v, want 1", v)
		}
		if st := get(t, base+"/status"); !strings.Contains(st, `"partitions_below_min_in_sync": 1`) {
			return fmt.Errorf("/status does not report the partition below its minimum")
		}
		return nil
	})
	// They come back, rejoin the set, and writes go on.
	c.Restart(c.Index(p.Slaves[0]), true)
	c.Restart(c.Index(p.Slaves[1]), true)
	c.Eventually(30*time.Second, func() error {
		if got := inSyncOf(c, "n", 0); len(got) != 3 {
			return fmt.Errorf("in-sync set %v", got)
		}
		return nil
	})
	if err := tb.Set(ctx, []byte("d"), []byte("4")); err != nil {
		t.Fatalf("write after the slaves came back: %v", err)
	}
	for k, want := range map[string]string{"a": "1", "b": "2", "d": "4"} {
		if v, err := tb.Get(ctx, []byte(k)); err != nil || string(v) != want {
			t.Errorf("%s = %q %v, want %q", k, v, err, want)
		}
	}
	for _, k := range refused {
		if k == "" {
			continue
		}
		if _, err := tb.Get(ctx, []byte(k)); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("%s, refused with ErrNotEnoughReplicas, was written after all: %v", k, err)
		}
	}
	c.WaitConverged("n", 30*time.Second)
}

// TestSyncSwitchoverLeavesNoWriteUnknown moves a sync partition's master
// back and forth under load: a planned switchover waits until the whole
// in-sync set has the old master's writes, so every write in flight is
// answered, none ends with an unknown outcome, and none is lost.
func TestSyncSwitchoverLeavesNoWriteUnknown(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	c.CreateTable("sw", client.TableOptions{Partitions: 1, Replication: 3, Mode: placement.ModeSync})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	var ambiguous atomic.Int64
	acks := newAckLog()
	tb := cl.Table("sw")
	stop := startWriters(6, func(w, i int) bool {
		k, v := fmt.Sprintf("w%d-%d", w, i%300), fmt.Sprintf("%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := tb.Set(ctx, []byte(k), []byte(v))
		switch {
		case err == nil:
			acks.add(k, v)
		case errors.Is(err, client.ErrAmbiguous):
			ambiguous.Add(1)
			t.Logf("write %s: %v", k, err)
		default:
			t.Errorf("write %s: %v", k, err)
			return false
		}
		return true
	})
	waitOps(t, cl, "sw")
	ctx := ctxFor(t, 2*time.Minute)
	for i := range 6 {
		p := c.Map().Table("sw").Partitions[0]
		n0 := acks.count()
		if err := admin.SetMaster(ctx, "sw", 0, p.Slaves[i%len(p.Slaves)]); err != nil {
			t.Fatalf("switchover %d: %v", i, err)
		}
		c.Eventually(20*time.Second, func() error {
			if acks.count() < n0+200 {
				return fmt.Errorf("%d writes since switchover %d", acks.count()-n0, i)
			}
			return nil
		})
	}
	stop()
	acks.check(t, ctx, tb)
	if n := ambiguous.Load(); n > 0 {
		t.Errorf("%d writes ended with an unknown outcome across planned switchovers", n)
	}
	c.WaitConverged("sw", 30*time.Second)
}

// TestSyncBadInput checks the refusals around sync tables: each is a clear
// error and changes nothing.
func TestSyncBadInput(t *testing.T) {
	cfg := zeppelin.DefaultLocalConfig(t.TempDir())
	cfg.InSyncTimeout = -time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "InSyncTimeout") {
		t.Errorf("Validate with a negative InSyncTimeout: %v", err)
	}

	c := testcluster.New(t, testcluster.Options{Servers: 3})
	cl := c.Client(0)
	ctx := ctxFor(t, time.Minute)
	epoch := c.Map().Epoch
	for _, o := range []client.TableOptions{
		{Partitions: 2, Replication: 3, Mode: placement.ModeSync, MinInSync: 4},
		{Partitions: 2, Replication: 3, Mode: placement.ModeSync, MinInSync: -1},
		{Partitions: 2, Replication: 3, MinInSync: 2}, // an async table has no in-sync set
	} {
		if _, err := cl.CreateTable(ctx, "bad", o); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("CreateTable %+v: %v, want ErrInvalid", o, err)
		} else if !strings.Contains(err.Error(), "min in-sync") {
			t.Errorf("CreateTable %+v: %q does not name the minimum in-sync set", o, err)
		}
	}
	if m := c.Map(); m.Table("bad") != nil || m.Epoch != epoch {
		t.Fatalf("refused creations changed the map: epoch %d → %d, table %v", epoch, m.Epoch, m.Table("bad"))
	}

	// Replication 1 is allowed: the master alone is the in-sync set.
	one := c.CreateTable("one", client.TableOptions{Partitions: 2, Replication: 1, Mode: placement.ModeSync})
	if one.MinInSync != 1 || !one.Fenced {
		t.Errorf("sync table with replication 1: min in-sync %d, fenced %v", one.MinInSync, one.Fenced)
	}
	if err := cl.Table("one").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Errorf("write to a sync table with replication 1: %v", err)
	}

	sync, async := placement.ModeSync, placement.ModeAsync
	zero, four, two := 0, 4, 2
	c.CreateTable("a", client.TableOptions{Partitions: 2, Replication: 3})
	c.CreateTable("gone", client.TableOptions{Partitions: 2, Replication: 3})
	if err := cl.DropTable(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table string
		o     client.AlterOptions
		want  error
		msg   string
	}{
		{"gone", client.AlterOptions{Mode: &sync}, client.ErrTableNotFound, "does not exist"},
		{"a", client.AlterOptions{MinInSync: &two}, client.ErrInvalid, "sync tables only"},
		{"a", client.AlterOptions{Mode: &sync, MinInSync: &zero}, client.ErrInvalid, "outside 1..3"},
		{"a", client.AlterOptions{Mode: &sync, MinInSync: &four}, client.ErrInvalid, "outside 1..3"},
		{"one", client.AlterOptions{Mode: &async, Fenced: new(bool)}, nil, ""},
	} {
		_, err := cl.AlterTable(ctx, tc.table, tc.o)
		if tc.want == nil {
			if err != nil {
				t.Errorf("AlterTable %s: %v", tc.table, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("AlterTable %s %+v: %v, want %v mentioning %q", tc.table, tc.o, err, tc.want, tc.msg)
		}
	}
	m := c.Map()
	if a := m.Table("a"); a.Mode != placement.ModeAsync || a.MinInSync != 0 {
		t.Errorf("refused alterations changed table a: %+v", a)
	}
	if o := m.Table("one"); o.Mode != placement.ModeAsync || o.Fenced {
		t.Errorf("table one after switching to async and unfenced: mode %v, fenced %v", o.Mode, o.Fenced)
	}
}

// TestSyncModeSwitchOnline switches a table from async to sync and back
// while it takes writes: the in-sync sets fill as the slaves catch up, a
// master killed while the table is sync loses nothing acknowledged, and
// back in async mode the sets are gone and writes go on.
func TestSyncModeSwitchOnline(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	c.CreateTable("sw", client.TableOptions{Partitions: 4, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	acks, stop := syncWriteLoad(t, cl, "sw", 6)
	waitOps(t, cl, "sw")
	ctx := ctxFor(t, 2*time.Minute)
	waitWrites := func(n int) {
		n0 := acks.count()
		c.Eventually(30*time.Second, func() error {
			if acks.count() < n0+n {
				return fmt.Errorf("%d writes", acks.count()-n0)
			}
			return nil
		})
	}
	waitWrites(300)

	sync, async := placement.ModeSync, placement.ModeAsync
	tbl, err := admin.AlterTable(ctx, "sw", client.AlterOptions{Mode: &sync})
	if err != nil || tbl.Mode != placement.ModeSync || !tbl.Fenced || tbl.MinInSync != 2 {
		t.Fatalf("AlterTable to sync: %v %+v", err, tbl)
	}
	c.Eventually(30*time.Second, func() error {
		for _, p := range c.Map().Table("sw").Partitions {
			if len(p.InSync) != 3 {
				return fmt.Errorf("partition %d in-sync set %v", p.ID, p.InSync)
			}
		}
		return nil
	})
	waitWrites(300)
	victim := c.Map().Table("sw").Partitions[0].Master
	c.Stop(c.Index(victim))
	waitWrites(300)

	if tbl, err = admin.AlterTable(ctx, "sw", client.AlterOptions{Mode: &async}); err != nil || tbl.Mode != placement.ModeAsync {
		t.Fatalf("AlterTable to async: %v %+v", err, tbl)
	}
	for _, p := range c.Map().Table("sw").Partitions {
		if len(p.InSync) != 0 {
			t.Errorf("partition %d keeps in-sync set %v in async mode", p.ID, p.InSync)
		}
	}
	waitWrites(300)
	stop()
	acks.check(t, ctx, cl.Table("sw"))
	c.Restart(c.Index(victim), true)
	c.WaitConverged("sw", time.Minute)
}

// TestSyncNoStaleMasterPromoted loses both in-sync members of a sync
// partition at once while the third replica, which fell out of the set
// earlier, is up: the partition stays without a master, and says so,
// rather than promote a replica that lacks acknowledged writes; when an
// in-sync member returns it takes over with every acknowledged write.
func TestSyncNoStaleMasterPromoted(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	c.CreateTable("st", client.TableOptions{Partitions: 1, Replication: 3, Mode: placement.ModeSync})
	cl := c.NewClient("writer")
	tb := cl.Table("st")
	ctx := ctxFor(t, 2*time.Minute)
	p := c.Map().Table("st").Partitions[0]
	master, stale, other := p.Master, p.Slaves[0], p.Slaves[1]

	c.Stop(c.Index(stale))
	c.Eventually(30*time.Second, func() error {
		if in := inSyncOf(c, "st", 0); slices.Contains(in, stale) {
			return fmt.Errorf("in-sync set %v still lists %s", in, stale)
		}
		return nil
	})
	var acked []string
	for i := range 200 {
		k := fmt.Sprintf("k%d", i)
		if err := tb.Set(ctx, []byte(k), []byte(k)); err != nil {
			t.Fatalf("write %s with %s down: %v", k, stale, err)
		}
		acked = append(acked, k)
	}
	// Both members down at once; the stale replica comes back.
	c.Stop(c.Index(master))
	c.Stop(c.Index(other))
	c.Restart(c.Index(stale), false)
	c.Eventually(30*time.Second, func() error {
		for _, n := range c.Map().Nodes {
			if n.ID == stale && n.State != placement.NodeUp {
				return fmt.Errorf("%s is %v", stale, n.State)
			}
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := tb.Get(wctx, []byte("k0"))
	cancel()
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "in-sync set") {
		t.Errorf("read with no in-sync member up: %v, want ErrUnavailable naming the in-sync set", err)
	}
	if got := c.Map().Table("st").Partitions[0].Master; got != "" {
		t.Fatalf("%s was promoted with no in-sync member up (stale %s)", got, stale)
	}

	// An in-sync member returns: it is promoted, and nothing is lost. Which
	// members are still in-sync depends on the order in which meta declared
	// the two down: a slave declared down first left the set while the
	// master was still up, and only the master may then be promoted.
	in := inSyncOf(c, "st", 0)
	c.Restart(c.Index(other), true)
	restarted := !slices.Contains(in, other)
	if restarted {
		c.Restart(c.Index(master), true)
	}
	c.Eventually(30*time.Second, func() error {
		if got := c.Map().Table("st").Partitions[0].Master; got == "" || !slices.Contains(in, got) {
			return fmt.Errorf("master %q, in-sync set before %v", got, in)
		}
		return nil
	})
	for _, k := range acked {
		if v, err := tb.Get(ctx, []byte(k)); err != nil || string(v) != k {
			t.Fatalf("acknowledged %s after the recovery: %q %v", k, v, err)
		}
	}
	if !restarted {
		c.Restart(c.Index(master), true)
	}
	c.WaitConverged("st", time.Minute)
}
