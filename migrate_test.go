package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// ackLog records the writes acknowledged during a test: the last value of
// every key.
type ackLog struct {
	mu    sync.Mutex
	acked map[string]string
	n     int
}

func newAckLog() *ackLog { return &ackLog{acked: map[string]string{}} }

func (a *ackLog) add(k, v string) {
	a.mu.Lock()
	a.acked[k] = v
	a.n++
	a.mu.Unlock()
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// check reads every acknowledged key back and returns how many were
// missing or held another value, reporting the first few.
func (a *ackLog) check(t *testing.T, ctx context.Context, tb *client.Table) (lost int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([][]byte, 0, len(a.acked))
	for k := range a.acked {
		keys = append(keys, []byte(k))
	}
	for lo := 0; lo < len(keys); lo += 500 {
		batch := keys[lo:min(lo+500, len(keys))]
		res, err := tb.MGet(ctx, batch)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		for i, r := range res {
			if want := a.acked[string(batch[i])]; !r.Found || string(r.Value) != want {
				if lost++; lost <= 20 {
					t.Errorf("acknowledged %s=%s, read %q (found %v)", batch[i], want, r.Value, r.Found)
				}
			}
		}
	}
	if lost > 20 {
		t.Errorf("%d acknowledged writes missing in all", lost)
	}
	return lost
}

// writeLoad runs writers that overwrite keys of table through cl until
// stopped, recording every acknowledged write. Writes that fail are
// retried by the next iteration; none may fail for good while the test's
// faults are planned.
func writeLoad(t *testing.T, cl *client.Client, table string, writers int) (*ackLog, func()) {
	acks := newAckLog()
	tb := cl.Table(table)
	stop := startWriters(writers, func(w, i int) bool {
		k, v := fmt.Sprintf("w%d-%d", w, i%300), fmt.Sprintf("%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := tb.Set(ctx, []byte(k), []byte(v)); err != nil {
			if !errors.Is(err, client.ErrClosed) {
				t.Errorf("write %s during the migration: %v", k, err)
			}
			return false
		}
		acks.add(k, v)
		return true
	})
	return acks, stop
}

// nodeOutside returns a data node that holds no copy of partition p.
func nodeOutside(c *testcluster.Cluster, p placement.Partition) placement.NodeID {
	for _, n := range c.Map().Nodes {
		if !p.Holds(n.ID) {
			return n.ID
		}
	}
	return ""
}

// waitMigration waits for migration id to finish and returns it.
func waitMigration(t *testing.T, cl *client.Client, id uint64) client.Migration {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	m, err := cl.WaitMigration(ctx, id)
	if err != nil {
		t.Fatalf("migration %d: %v", id, err)
	}
	return m
}

// checkMoved checks the map after a move of partition part from from to to:
// one master, the replication factor kept, from gone, to present, no
// learner left, and the partition active.
func checkMoved(t *testing.T, c *testcluster.Cluster, table string, part placement.PartitionID, from, to placement.NodeID) placement.Partition {
	t.Helper()
	m := c.Map()
	p := m.Table(table).Partitions[part]
	if p.Holds(from) || !p.HasReplica(to) || len(p.Learners) != 0 || p.State != placement.PartitionActive {
		t.Fatalf("after the move %s → %s: %+v", from, to, p)
	}
	checkOneMaster(t, m)
	return p
}

func TestMigrateSlaveAndMasterUnderLoad(t *testing.T) {
	c := splitCluster(t, 1, 4, nil)
	c.CreateTable("mv", client.TableOptions{Partitions: 4, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	acks, stop := writeLoad(t, cl, "mv", 6)
	waitOps(t, cl, "mv")
	ctx := ctxFor(t, 2*time.Minute)

	for _, role := range []string{"slave", "master"} {
		n0 := acks.count()
		c.Eventually(20*time.Second, func() error {
			if acks.count() < n0+300 {
				return fmt.Errorf("%d writes so far", acks.count()-n0)
			}
			return nil
		})
		p := c.Map().Table("mv").Partitions[1]
		from := p.Slaves[0]
		if role == "master" {
			from = p.Master
		}
		to := nodeOutside(c, p)
		id, err := admin.Migrate(ctx, "mv", 1, from, to)
		if err != nil {
			t.Fatalf("migrate the %s %s → %s: %v", role, from, to, err)
		}
		mg := waitMigration(t, admin, id)
		if mg.State != placement.MigrationDone {
			t.Fatalf("migration of the %s: %+v", role, mg)
		}
		np := checkMoved(t, c, "mv", 1, from, to)
		if role == "master" && (np.Master != to || np.Gen != p.Gen+1) {
			t.Fatalf("moving the master %s → %s: %+v (was gen %d)", from, to, np, p.Gen)
		}
		t.Logf("moved the %s of partition 1 from %s to %s", role, from, to)
	}
	n0 := acks.count()
	c.Eventually(20*time.Second, func() error {
		if acks.count() < n0+300 {
			return fmt.Errorf("%d writes since the moves", acks.count()-n0)
		}
		return nil
	})
	stop()
	c.WaitConverged("mv", 30*time.Second)
	acks.check(t, ctx, cl.Table("mv"))
	// The old copies are gone from the nodes that gave them up.
	tbl := c.Map().Table("mv")
	for i := range c.Len() {
		s := c.Server(i)
		if s == nil || s.Node() == nil || tbl.Partitions[1].Holds(placement.NodeID(s.NodeID())) {
			continue
		}
		c.Eventually(20*time.Second, func() error {
			ids, err := s.Node().Store().Replicas()
			if err != nil {
				return err
			}
			if slices.ContainsFunc(ids, func(id partition.ReplicaID) bool { return id.Table == uint32(tbl.ID) && id.Partition == 1 }) {
				return fmt.Errorf("%s still holds a copy of partition 1", s.NodeID())
			}
			return nil
		})
	}
	t.Logf("%d writes acknowledged, none lost", acks.count())
}

// stageHook lets a test act when migrations reach a stage (see
// zeppelin.MigrationConfig.Hook): reached receives the stages as they
// come, and a "held" handover waits until release is closed.
type stageHook struct {
	reached chan string
	mu      sync.Mutex
	holds   map[uint64]chan struct{}
	hold    bool // hold handovers
}

func newStageHook() *stageHook {
	return &stageHook{reached: make(chan string, 64), holds: map[uint64]chan struct{}{}}
}

func (h *stageHook) fn(stage string, id uint64) {
	select {
	case h.reached <- fmt.Sprintf("%s %d", stage, id):
	default:
	}
	if stage != "held" {
		return
	}
	h.mu.Lock()
	if !h.hold {
		h.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	h.holds[id] = ch
	h.mu.Unlock()
	<-ch
}

// holdHandovers makes the next handovers wait in their held stage.
func (h *stageHook) holdHandovers(on bool) {
	h.mu.Lock()
	h.hold = on
	h.mu.Unlock()
}

// release lets migration id's held handover go on.
func (h *stageHook) release(id uint64) {
	h.mu.Lock()
	ch := h.holds[id]
	delete(h.holds, id)
	h.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// await waits until migration id reaches stage.
func (h *stageHook) await(t *testing.T, stage string, id uint64) {
	t.Helper()
	want := fmt.Sprintf("%s %d", stage, id)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-h.reached:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("migration %d did not reach stage %s", id, stage)
		}
	}
}

// waitState waits until migration id is in state.
func waitState(t *testing.T, c *testcluster.Cluster, cl *client.Client, id uint64, state placement.MigrationState, cond func(client.Migration) bool) client.Migration {
	t.Helper()
	var got client.Migration
	c.Eventually(30*time.Second, func() error {
		ms, err := cl.Migrations(context.Background(), 0)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.ID == id {
				got = m
				if m.State == state && (cond == nil || cond(m)) {
					return nil
				}
				return fmt.Errorf("migration %d is %v (copied %d of %d bytes)", id, m.State, m.CopiedBytes, m.TotalBytes)
			}
		}
		return fmt.Errorf("no migration %d", id)
	})
	return got
}

// fillPartition writes n keys of size bytes into partition part of table.
func fillPartition(t *testing.T, cl *client.Client, table string, part placement.PartitionID, parts, n, size int) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	keys := keysIn("fill", part, parts, n)
	val := make([]byte, size)
	for lo := 0; lo < n; lo += 100 {
		var kvs []client.KV
		for _, k := range keys[lo:min(lo+100, n)] {
			kvs = append(kvs, client.KV{Key: k, Value: val})
		}
		if err := cl.Table(table).MSet(ctx, kvs); err != nil {
			t.Fatal(err)
		}
	}
}

// samePlacement reports whether a partition has the same master, slaves,
// generation and no learner, active.
func samePlacement(a, b placement.Partition) bool {
	return a.Master == b.Master && slices.Equal(a.Slaves, b.Slaves) && a.Gen == b.Gen &&
		len(b.Learners) == 0 && b.State == placement.PartitionActive
}

// waitNoCopy waits until node holds no copy of partition part of table in
// its store (a cancelled or failed learner's data is deleted).
func waitNoCopy(t *testing.T, c *testcluster.Cluster, node placement.NodeID, table placement.TableID, part placement.PartitionID) {
	t.Helper()
	i := c.Index(node)
	c.Eventually(30*time.Second, func() error {
		s := c.Server(i)
		if s == nil {
			return nil
		}
		ids, err := s.Node().Store().Replicas()
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ids, func(id partition.ReplicaID) bool { return id.Table == uint32(table) && id.Partition == uint32(part) }) {
			return fmt.Errorf("%s still holds a copy of partition %d", node, part)
		}
		return nil
	})
}

func TestMigrateCancelAtEachStage(t *testing.T) {
	hook := newStageHook()
	c := splitCluster(t, 1, 4, func(_ int, cfg *zeppelin.Config) {
		cfg.Migration.Total = 1 // a second move waits, pending
		cfg.Migration.Hook = hook.fn
	})
	tbl := c.CreateTable("c", client.TableOptions{Partitions: 2, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	fillPartition(t, cl, "c", 0, 2, 2000, 1000) // about 2 MB to copy
	acks, stop := writeLoad(t, cl, "c", 4)
	waitOps(t, cl, "c")
	ctx := ctxFor(t, 2*time.Minute)

	before := c.Map().Table("c").Partitions
	p0, p1 := before[0], before[1]
	slow, err := admin.Migrate(ctx, "c", 0, p0.Slaves[0], nodeOutside(c, p0), client.CopyRate(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	// Pending: the only slot is taken.
	pending, err := admin.Migrate(ctx, "c", 1, p1.Slaves[0], nodeOutside(c, p1))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, admin, pending, placement.MigrationPending, nil)
	if err := admin.CancelMigration(ctx, pending); err != nil {
		t.Fatalf("cancel the pending migration: %v", err)
	}
	if m := waitMigration(t, admin, pending); m.State != placement.MigrationCancelled {
		t.Fatalf("pending migration after cancel: %+v", m)
	}
	if got := c.Map().Table("c").Partitions[1]; !samePlacement(p1, got) {
		t.Fatalf("partition 1 after cancelling its pending move: %+v, was %+v", got, p1)
	}

	// Copying: the slow copy is under way.
	target := nodeOutside(c, p0)
	waitState(t, c, admin, slow, placement.MigrationCopying, func(m client.Migration) bool { return m.CopiedBytes > 0 })
	if err := admin.CancelMigration(ctx, slow); err != nil {
		t.Fatalf("cancel the copying migration: %v", err)
	}
	if m := waitMigration(t, admin, slow); m.State != placement.MigrationCancelled {
		t.Fatalf("copying migration after cancel: %+v", m)
	}
	if got := c.Map().Table("c").Partitions[0]; !samePlacement(p0, got) {
		t.Fatalf("partition 0 after cancelling its copy: %+v, was %+v", got, p0)
	}
	waitNoCopy(t, c, target, tbl.ID, 0)
	if err := admin.CancelMigration(ctx, slow); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("cancelling a finished migration: %v, want ErrInvalid", err)
	}

	// Handover: the master is moving and its writes are held.
	hook.holdHandovers(true)
	p0 = c.Map().Table("c").Partitions[0]
	target = nodeOutside(c, p0)
	moving, err := admin.Migrate(ctx, "c", 0, p0.Master, target)
	if err != nil {
		t.Fatal(err)
	}
	hook.await(t, "held", moving)
	if st := c.Map().Table("c").Partitions[0].State; st != placement.PartitionStuck {
		t.Fatalf("partition 0 is %v during the handover, want stuck", st)
	}
	done := make(chan error, 1)
	go func() { done <- admin.CancelMigration(ctx, moving) }()
	hook.holdHandovers(false)
	hook.release(moving)
	if err := <-done; err != nil {
		t.Fatalf("cancel during the handover: %v", err)
	}
	if m := waitMigration(t, admin, moving); m.State != placement.MigrationCancelled {
		t.Fatalf("moving master after cancel: %+v", m)
	}
	if got := c.Map().Table("c").Partitions[0]; !samePlacement(p0, got) {
		t.Fatalf("partition 0 after cancelling its handover: %+v, was %+v", got, p0)
	}
	waitNoCopy(t, c, target, tbl.ID, 0)

	stop()
	c.WaitConverged("c", 30*time.Second)
	acks.check(t, ctx, cl.Table("c"))
	t.Logf("%d writes acknowledged, none lost", acks.count())
}

// waitReplicasCaughtUp waits until every running replica of a partition
// holds its master's last record.
func waitReplicasCaughtUp(t *testing.T, c *testcluster.Cluster, table string, part placement.PartitionID) {
	t.Helper()
	c.Eventually(30*time.Second, func() error {
		m := c.Map()
		tb := m.Table(table)
		p := tb.Partitions[part]
		mi := c.Index(p.Master)
		ms, ok := replicaStatus(c, mi, tb.ID, part)
		if !ok {
			return fmt.Errorf("no status from the master %s", p.Master)
		}
		for _, n := range p.Slaves {
			if i := c.Index(n); c.Server(i) != nil {
				if ss, ok := replicaStatus(c, i, tb.ID, part); !ok || ss.Seq != ms.Seq {
					return fmt.Errorf("slave %s at seq %d, master at %d", n, ss.Seq, ms.Seq)
				}
			}
		}
		return nil
	})
}

// TestMigrateSurvivesKillsAtEachStage kills the source, the target or the
// meta leader while a move copies, once it has caught up, and while a
// moving master's writes are held: every move completes or rolls back by
// itself, nothing acknowledged is lost, and no partition stays held.
func TestMigrateSurvivesKillsAtEachStage(t *testing.T) {
	for _, victim := range []string{"source", "target", "meta leader"} {
		t.Run(victim, func(t *testing.T) { testMigrateKills(t, victim) })
	}
}

func testMigrateKills(t *testing.T, victim string) {
	hook := newStageHook()
	c := splitCluster(t, 3, 4, func(_ int, cfg *zeppelin.Config) { cfg.Migration.Hook = hook.fn })
	const parts = 3
	tbl := c.CreateTable("k", client.TableOptions{Partitions: parts, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	for p := range parts {
		fillPartition(t, cl, "k", placement.PartitionID(p), parts, 1000, 1000)
	}
	acks, stop := writeLoad(t, cl, "k", 4)
	waitOps(t, cl, "k")
	ctx := ctxFor(t, 3*time.Minute)

	for _, stage := range []string{"copying", "ready", "held"} {
		part := placement.PartitionID(slices.Index([]string{"copying", "ready", "held"}, stage))
		p := c.Map().Table("k").Partitions[part]
		from, to := p.Slaves[0], nodeOutside(c, p)
		var opts []client.MigrateOption
		switch stage {
		case "copying":
			opts = append(opts, client.CopyRate(256<<10)) // a 1 MB copy takes seconds
		case "held":
			from = p.Master
			hook.holdHandovers(true)
		}
		id, err := admin.Migrate(ctx, "k", int(part), from, to, opts...)
		if err != nil {
			t.Fatalf("%s: migrate: %v", stage, err)
		}
		switch stage {
		case "copying":
			waitState(t, c, admin, id, placement.MigrationCopying, func(m client.Migration) bool { return m.CopiedBytes > 0 })
		case "ready":
			hook.await(t, "ready", id)
		case "held":
			hook.await(t, "held", id)
			if victim == "source" {
				// The writes are held: once every replica has the master's
				// last record, killing it loses nothing acknowledged.
				waitReplicasCaughtUp(t, c, "k", part)
			}
		}
		var vi int
		switch victim {
		case "source":
			vi = c.Index(from)
		case "target":
			vi = c.Index(to)
		default:
			vi = c.WaitMetaLeader()
		}
		if victim != "meta leader" {
			// A killed master loses what its slaves had not received yet
			// (async replication): the victim gives up its other master
			// roles first, so that only the move's own risks remain.
			shedMasters(t, c, admin, "k", placement.NodeID(c.Member(vi).Name), part)
		}
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			c.Stop(vi)
		}()
		if stage == "held" {
			hook.holdHandovers(false)
			hook.release(id)
		}
		<-killed
		mg := waitMigrationOver(t, c, admin, id)
		t.Logf("%s killed while %s: migration ended %v %s", victim, stage, mg.State, mg.Error)
		c.Restart(vi, true)
		waitAllUpAndMastered(c, time.Minute)
		np := c.Map().Table("k").Partitions[part]
		if np.State != placement.PartitionActive || len(np.Learners) != 0 {
			t.Fatalf("%s: partition %d after the move ended: %+v", stage, part, np)
		}
		if mg.State == placement.MigrationDone {
			if np.Holds(from) || !np.HasReplica(to) {
				t.Fatalf("%s: done, but the partition is %+v", stage, np)
			}
		} else if np.Holds(to) {
			t.Fatalf("%s: rolled back, but %s still holds the partition: %+v", stage, to, np)
		}
		if mg.State != placement.MigrationDone {
			waitNoCopy(t, c, to, tbl.ID, part)
		}
	}
	n0 := acks.count()
	c.Eventually(20*time.Second, func() error {
		if acks.count() < n0+100 {
			return fmt.Errorf("%d writes since the last move", acks.count()-n0)
		}
		return nil
	})
	stop()
	checkOneMaster(t, c.Map())
	c.WaitConverged("k", time.Minute)
	acks.check(t, ctx, cl.Table("k"))
	t.Logf("%d writes acknowledged, none lost", acks.count())
}

// waitMigrationOver waits until migration id has finished, through any
// meta member that answers, and returns it.
func waitMigrationOver(t *testing.T, c *testcluster.Cluster, cl *client.Client, id uint64) client.Migration {
	t.Helper()
	var got client.Migration
	c.Eventually(time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ms, err := cl.Migrations(ctx, 0)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.ID == id {
				got = m
				if m.State.Finished() {
					return nil
				}
				return fmt.Errorf("migration %d is %v", id, m.State)
			}
		}
		return fmt.Errorf("no migration %d", id)
	})
	return got
}

// shedMasters hands every master role node holds in table, but that of
// partition keep, to one of its slaves by planned switchovers, and waits
// until their slaves have everything.
func shedMasters(t *testing.T, c *testcluster.Cluster, cl *client.Client, table string, node placement.NodeID, keep placement.PartitionID) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	for _, p := range c.Map().Table(table).Partitions {
		if p.Master != node || p.ID == keep {
			continue
		}
		if err := cl.SetMaster(ctx, table, int(p.ID), p.Slaves[0]); err != nil {
			t.Fatalf("move the master of partition %d off %s: %v", p.ID, node, err)
		}
	}
}

// replicaCounts counts, per node, the replicas and masters of table.
func replicaCounts(m *placement.Map, table string) (replicas, masters map[placement.NodeID]int) {
	replicas, masters = map[placement.NodeID]int{}, map[placement.NodeID]int{}
	for _, p := range m.Table(table).Partitions {
		masters[p.Master]++
		for _, n := range p.Replicas() {
			replicas[n]++
		}
	}
	return replicas, masters
}

// checkBalanced checks that every up node holds within one of its share of
// table's replicas and masters.
func checkBalanced(t *testing.T, m *placement.Map, table string, nodes []placement.NodeID) {
	t.Helper()
	tb := m.Table(table)
	reps, mas := replicaCounts(m, table)
	repShare := float64(len(tb.Partitions)*tb.Replication) / float64(len(nodes))
	masShare := float64(len(tb.Partitions)) / float64(len(nodes))
	for _, n := range nodes {
		if r := float64(reps[n]); r < repShare-1 || r > repShare+1 {
			t.Errorf("%s holds %d replicas, share %.1f: %v", n, reps[n], repShare, reps)
		}
		if ms := float64(mas[n]); ms < masShare-1 || ms > masShare+1 {
			t.Errorf("%s masters %d partitions, share %.1f: %v", n, mas[n], masShare, mas)
		}
	}
}

func TestDrainThenRemoveNode(t *testing.T) {
	c := splitCluster(t, 1, 4, nil)
	c.CreateTable("d", client.TableOptions{Partitions: 8, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	acks, stop := writeLoad(t, cl, "d", 4)
	waitOps(t, cl, "d")
	ctx := ctxFor(t, 2*time.Minute)
	const victim = placement.NodeID("n5")
	if err := admin.RemoveNode(ctx, victim); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("removing a node that holds replicas: %v, want ErrInvalid", err)
	}
	batch, n, err := admin.DrainNode(ctx, victim)
	if err != nil || n == 0 {
		t.Fatalf("drain: batch %d, %d migrations, %v", batch, n, err)
	}
	p, err := admin.WaitBatch(ctx, batch, func(p client.BatchProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	if p.Done != p.Total {
		t.Fatalf("drain batch: %+v", p)
	}
	m := c.Map()
	if held := holdingsOf(m, victim); held != 0 {
		t.Fatalf("%s still holds %d copies after the drain", victim, held)
	}
	// With the node drained, the three left are balanced again.
	c.Eventually(30*time.Second, func() error {
		_, mas := replicaCounts(c.Map(), "d")
		for _, n := range []placement.NodeID{"n2", "n3", "n4"} {
			if mas[n] < 2 {
				return fmt.Errorf("masters %v", mas)
			}
		}
		return nil
	})
	checkBalanced(t, c.Map(), "d", []placement.NodeID{"n2", "n3", "n4"})
	// The last three nodes of a replication-3 table cannot be drained.
	if _, _, err := admin.DrainNode(ctx, "n2"); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("draining one of the last three nodes: %v, want ErrInvalid", err)
	}
	if err := admin.RemoveNode(ctx, victim); err != nil {
		t.Fatalf("remove the drained node: %v", err)
	}
	if c.Map().Node(victim) != nil {
		t.Fatal("the removed node is still in the map")
	}
	stop()
	c.WaitConverged("d", 30*time.Second)
	acks.check(t, ctx, cl.Table("d"))
	// The removed node, still running, is not let back in.
	time.Sleep(3 * c.Member(0).Cfg.HeartbeatInterval)
	if c.Map().Node(victim) != nil {
		t.Fatal("the removed node registered again")
	}
	waitNoCopies(t, c, victim)
	t.Logf("drained %s with %d migrations; %d writes acknowledged, none lost", victim, n, acks.count())
}

// holdingsOf counts the copies node holds in m.
func holdingsOf(m *placement.Map, node placement.NodeID) int {
	n := 0
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.Holds(node) {
				n++
			}
		}
	}
	return n
}

// waitNoCopies waits until node's store holds no replica at all.
func waitNoCopies(t *testing.T, c *testcluster.Cluster, node placement.NodeID) {
	t.Helper()
	i := c.Index(node)
	c.Eventually(30*time.Second, func() error {
		ids, err := c.Server(i).Node().Store().Replicas()
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return fmt.Errorf("%s still holds %d replicas", node, len(ids))
		}
		return nil
	})
}

func TestReReplicationAfterReplaceTimeout(t *testing.T) {
	c := splitCluster(t, 1, 4, func(_ int, cfg *zeppelin.Config) { cfg.Migration.ReplaceTimeout = 2 * time.Second })
	c.CreateTable("r", client.TableOptions{Partitions: 8, Replication: 3})
	cl := c.NewClient("writer")
	ctx := ctxFor(t, 2*time.Minute)
	writeKeys(t, ctx, []*client.Client{cl}, "r", 500)
	c.WaitConverged("r", 30*time.Second)
	acks, stop := writeLoad(t, cl, "r", 2)
	waitOps(t, cl, "r")
	const victim = placement.NodeID("n5")
	vi := c.Index(victim)
	c.Stop(vi)
	c.Eventually(time.Minute, func() error {
		m := c.LeaderMap()
		if m == nil {
			return fmt.Errorf("no meta leader")
		}
		if held := holdingsOf(m, victim); held > 0 {
			return fmt.Errorf("%s still holds %d copies", victim, held)
		}
		for _, p := range m.Table("r").Partitions {
			if len(p.Replicas()) != 3 || p.State != placement.PartitionActive || len(p.Learners) > 0 {
				return fmt.Errorf("partition %d: %+v", p.ID, p)
			}
		}
		return nil
	})
	stop()
	checkKeys(t, ctx, cl, "r", 500)
	acks.check(t, ctx, cl.Table("r"))
	c.WaitConverged("r", 30*time.Second)
	// The node comes back: it holds nothing any more, and drops its stale
	// copies.
	c.Restart(vi, true)
	waitNoCopies(t, c, victim)
	t.Logf("the replicas of %s were re-created elsewhere; %d writes acknowledged, none lost", victim, acks.count())
}

func TestMigrateRefusesBadInput(t *testing.T) {
	c := splitCluster(t, 1, 4, func(i int, cfg *zeppelin.Config) {
		if i == 4 { // n5 shares a host with n4
			cfg.Labels.Host = "h4"
		} else {
			cfg.Labels.Host = fmt.Sprintf("h%d", i+1)
		}
	})
	c.CreateTable("b", client.TableOptions{Partitions: 2, Replication: 3})
	c.CreateTable("gone", client.TableOptions{Partitions: 1, Replication: 3})
	admin := c.NewClient("admin")
	ctx := ctxFor(t, time.Minute)
	if err := admin.DropTable(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	m := c.Map()
	p := m.Table("b").Partitions[0]
	outside := nodeOutside(c, p)
	// sameHost is a node outside p on the host of sharer, one of p's
	// replicas; from is another of them.
	var sameHost, sharer, from placement.NodeID
	for _, pair := range [][2]placement.NodeID{{"n4", "n5"}, {"n5", "n4"}} {
		if p.HasReplica(pair[0]) && !p.Holds(pair[1]) {
			sharer, sameHost = pair[0], pair[1]
		}
	}
	for _, r := range p.Replicas() {
		if r != sharer {
			from = r
			break
		}
	}
	before := m.Table("b").Partitions
	cases := []struct {
		name     string
		table    string
		from, to placement.NodeID
		opts     []client.MigrateOption
		want     error
	}{
		{"to a node that holds the partition", "b", p.Master, p.Slaves[0], nil, client.ErrInvalid},
		{"to an unknown node", "b", p.Master, "nobody", nil, client.ErrInvalid},
		{"from a node without the partition", "b", outside, p.Master, nil, client.ErrInvalid},
		{"onto itself", "b", p.Master, p.Master, nil, client.ErrInvalid},
		{"of a dropped table", "gone", p.Master, outside, nil, client.ErrTableNotFound},
	}
	if sameHost == "" {
		t.Fatalf("no node shares a host with a replica of %+v", p)
	}
	{
		cases = append(cases, struct {
			name     string
			table    string
			from, to placement.NodeID
			opts     []client.MigrateOption
			want     error
		}{"into the failure domain of another replica", "b", from, sameHost, nil, client.ErrInvalid})
	}
	for _, tc := range cases {
		_, err := admin.Migrate(ctx, tc.table, 0, tc.from, tc.to, tc.opts...)
		if !errors.Is(err, tc.want) {
			t.Errorf("migrate %s: %v, want %v", tc.name, err, tc.want)
		} else {
			t.Logf("migrate %s: %v", tc.name, err)
		}
	}
	if _, err := admin.Migrate(ctx, "b", 7, p.Master, outside); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("migrate a partition out of range: %v, want ErrInvalid", err)
	}
	if got := c.Map().Table("b").Partitions; !slices.EqualFunc(before, got, samePlacement) {
		t.Fatalf("refused moves changed the table: %+v, was %+v", got, before)
	}
	// Moving a partition that is already moving.
	if err := admin.SetNodeWeight(ctx, outside, 0); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("weight 0: %v, want ErrInvalid", err)
	}
	{
		id, err := admin.Migrate(ctx, "b", 0, from, sameHost, client.Force(), client.CopyRate(1))
		if err != nil {
			t.Fatalf("a forced move into a shared domain: %v", err)
		}
		if _, err := admin.Migrate(ctx, "b", 0, sharer, outside); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("migrate a partition already moving: %v, want ErrInvalid", err)
		}
		if err := admin.CancelMigration(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := admin.CancelMigration(ctx, id); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("cancel a finished migration: %v, want ErrInvalid", err)
		}
	}
	if err := admin.CancelMigration(ctx, 9999); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("cancel an unknown migration: %v, want ErrInvalid", err)
	}
	if err := admin.RemoveNode(ctx, "nobody"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("remove an unknown node: %v, want ErrInvalid", err)
	}
	// To a node that is down.
	c.Stop(c.Index(outside))
	c.Eventually(20*time.Second, func() error {
		if n := c.Map().Node(outside); n.State != placement.NodeDown {
			return fmt.Errorf("%s is %v", outside, n.State)
		}
		return nil
	})
	p = c.Map().Table("b").Partitions[0]
	if _, err := admin.Migrate(ctx, "b", 0, p.Slaves[0], outside); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("migrate to a node that is down: %v, want ErrInvalid", err)
	}
}

func TestExpandThreeToFiveUnderLoad(t *testing.T) {
	c := splitCluster(t, 1, 3, nil)
	c.CreateTable("e", client.TableOptions{Partitions: 12, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	ctx := ctxFor(t, 3*time.Minute)
	writeKeys(t, ctx, []*client.Client{cl}, "e", 2000)
	acks, stop := writeLoad(t, cl, "e", 4)
	waitOps(t, cl, "e")
	for range 2 {
		c.AddServer(zeppelin.RoleData, nil)
	}
	res, err := admin.Rebalance(ctx, client.RebalanceOptions{})
	if err != nil || res.Migrations == 0 {
		t.Fatalf("rebalance onto the new nodes: %+v %v", res, err)
	}
	polls := 0
	p, err := admin.WaitBatch(ctx, res.Batch, func(client.BatchProgress) { polls++ })
	if err != nil {
		t.Fatal(err)
	}
	if p.Done != p.Total || p.Total != res.Migrations {
		t.Fatalf("rebalance batch: %+v", p)
	}
	nodes := []placement.NodeID{"n2", "n3", "n4", "n5", "n6"}
	// Masters are balanced once the batch is over.
	c.Eventually(30*time.Second, func() error {
		_, mas := replicaCounts(c.Map(), "e")
		for _, n := range nodes {
			if mas[n] < 2 {
				return fmt.Errorf("masters per node: %v", mas)
			}
		}
		return nil
	})
	checkBalanced(t, c.Map(), "e", nodes)
	stop()
	checkOneMaster(t, c.Map())
	c.WaitConverged("e", time.Minute)
	checkKeys(t, ctx, cl, "e", 2000)
	acks.check(t, ctx, cl.Table("e"))
	reps, mas := replicaCounts(c.Map(), "e")
	t.Logf("expanded 3 → 5 data nodes with %d migrations (%d progress polls): replicas %v, masters %v; %d writes acknowledged, none lost",
		res.Migrations, polls, reps, mas, acks.count())
}
