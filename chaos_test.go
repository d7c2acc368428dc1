//go:build chaos

// The long randomized fault run: go test -tags chaos -run TestChaos -timeout 60m .
// ZEPPELIN_CHAOS_ROUNDS sets the number of faults (default 100),
// ZEPPELIN_CHAOS_SEED the random seed (default: the clock), and
// ZEPPELIN_CHAOS_PAD pads every value to at least that many bytes (values
// of 1 KiB and more live in the store's value log).

package zeppelin_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// chaosLoad has each worker write two kinds of keys, one write at a time:
// keys of its own that it overwrites with increasing counters (the value a
// key ends with must be one that was written, never a newer one) and keys
// written once (every acknowledged one must survive, or be counted lost).
type chaosLoad struct {
	mu        sync.Mutex
	attempted map[string]uint64 // counter keys: highest value sent
	once      [][]byte          // write-once keys acknowledged
	onceRound []int             // the fault round each was acknowledged in
	onceAt    []time.Time       // when each was acknowledged
	round     *atomic.Int64     // the fault round now running
	pad       int               // bytes every value is padded to
	ops, errs int
}

// chaosValue is the value written for v: its decimal digits, padded with
// a '|' and filler to pad bytes.
func chaosValue(v uint64, pad int) []byte {
	b := strconv.AppendUint(nil, v, 10)
	if len(b) < pad {
		b = append(b, '|')
		b = append(b, bytes.Repeat([]byte{'x'}, pad-len(b))...)
	}
	return b
}

// chaosNumber is the number chaosValue wrote into b.
func chaosNumber(b []byte) (uint64, error) {
	if i := bytes.IndexByte(b, '|'); i >= 0 {
		b = b[:i]
	}
	return strconv.ParseUint(string(b), 10, 64)
}

func (l *chaosLoad) run(ctx context.Context, tb *client.Table, w, keys int, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	next := make([]uint64, keys)
	rng := rand.New(rand.NewPCG(uint64(w), 99))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var k string
		var v uint64
		if i%2 == 0 {
			j := rng.IntN(keys)
			next[j]++
			k, v = fmt.Sprintf("c-%d-%d", w, j), next[j]
			l.mu.Lock()
			l.attempted[k] = v
			l.mu.Unlock()
		} else {
			k, v = fmt.Sprintf("u-%d-%d", w, i), uint64(i)
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := tb.Set(wctx, []byte(k), chaosValue(v, l.pad))
		cancel()
		l.mu.Lock()
		l.ops++
		switch {
		case err != nil:
			l.errs++
		case i%2 == 1:
			l.once = append(l.once, []byte(k))
			l.onceRound = append(l.onceRound, int(l.round.Load()))
			l.onceAt = append(l.onceAt, time.Now())
		}
		l.mu.Unlock()
	}
}

// check reads every key back, fails the test on a counter value nobody
// wrote and returns how many acknowledged write-once keys are gone, per
// fault round they were acknowledged in.
func (l *chaosLoad) check(t *testing.T, ctx context.Context, tb *client.Table) (lost map[int]int, lostKeys map[int][]lostKey) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var counters [][]byte
	for k := range l.attempted {
		counters = append(counters, []byte(k))
	}
	read := func(keys [][]byte, each func(i int, r client.Result)) {
		for lo := 0; lo < len(keys); lo += 500 {
			batch := keys[lo:min(lo+500, len(keys))]
			res, err := tb.MGet(ctx, batch)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			for i, r := range res {
				each(lo+i, r)
			}
		}
	}
	read(counters, func(i int, r client.Result) {
		k := string(counters[i])
		if !r.Found {
			return // its first writes may all have been lost
		}
		got, err := chaosNumber(r.Value)
		if err != nil || got > l.attempted[k] {
			t.Errorf("%s holds %q, but only values up to %d were written", k, r.Value, l.attempted[k])
		}
	})
	lost = map[int]int{}
	lostKeys = map[int][]lostKey{}
	read(l.once, func(i int, r client.Result) {
		if !r.Found {
			lost[l.onceRound[i]]++
			lostKeys[l.onceRound[i]] = append(lostKeys[l.onceRound[i]], lostKey{key: l.once[i], at: l.onceAt[i]})
		}
	})
	return lost, lostKeys
}

// lostKey is an acknowledged write-once key that is gone.
type lostKey struct {
	key []byte
	at  time.Time
}

// explainLoss logs what the cluster knows about a lost key: the meta
// events of its partition around the time it was acknowledged, and, for
// every replica, its (gen, seq) history and whether its retained binlog
// still holds a record writing the key.
func explainLoss(t *testing.T, c *testcluster.Cluster, table string, lk lostKey) {
	t.Helper()
	m := c.Map()
	tbl := m.Table(table)
	part := placement.PartitionOf(lk.key, len(tbl.Partitions))
	t.Logf("forensics: %s key %s (partition %d) acknowledged at %s", table, lk.key, part, lk.at.Format("15:04:05.000"))
	for i := range c.Len() {
		s := c.Server(i)
		if s == nil || s.Meta() == nil {
			continue
		}
		for _, e := range s.Meta().Events() {
			if e.Time.Before(lk.at.Add(-5*time.Second)) || e.Time.After(lk.at.Add(5*time.Second)) {
				continue
			}
			if e.Kind == "leader" || (e.Table == tbl.ID && e.Partition == part) || e.Kind == "down" || e.Kind == "up" {
				t.Logf("forensics:   meta %s event %s %s node=%s from=%s gen=%d epoch=%d", s.NodeID(), e.Time.Format("15:04:05.000"), e.Kind, e.Node, e.From, e.Gen, e.Epoch)
			}
		}
	}
	for i := range c.Len() {
		s := c.Server(i)
		if s == nil || s.Node() == nil {
			continue
		}
		r, err := s.Node().Store().Replica(uint32(tbl.ID), uint32(part))
		if err != nil {
			continue
		}
		st := r.State()
		recs, _ := r.ReadLog(max(st.FirstSeq, 1), 1<<30)
		found := "not in its retained log"
		for _, b := range recs {
			rec, err := binlog.Decode(b)
			if err != nil {
				continue
			}
			for _, e := range rec.Effects {
				if string(e.Key) == string(lk.key) {
					found = fmt.Sprintf("written by seq %d gen %d at %s", rec.Seq, rec.Gen, time.UnixMilli(rec.TimeMs).Format("15:04:05.000"))
				}
			}
		}
		// The records around the acknowledgement, as runs per generation.
		var runs []string
		var cur string
		var first, last uint64
		flush := func() {
			if cur != "" {
				runs = append(runs, fmt.Sprintf("%s:%d..%d", cur, first, last))
			}
		}
		for _, b := range recs {
			seq, gen, ms, err := binlog.Peek(b)
			if err != nil || ms < lk.at.Add(-2*time.Second).UnixMilli() || ms > lk.at.Add(2*time.Second).UnixMilli() {
				continue
			}
			g := fmt.Sprintf("g%d", gen)
			if g != cur {
				flush()
				cur, first = g, seq
			}
			last = seq
		}
		flush()
		t.Logf("forensics:   %s: gen %d seq %d first %d history %v; key %s; records ±2s: %v", s.NodeID(), st.Gen, st.Seq, st.FirstSeq, st.History, found, runs)
	}
}

// fault is one injected fault: its kind, the node it hit and when it was
// in force.
type fault struct {
	kind       string
	node       string // member name ("" for a meta member chosen at random)
	start, end time.Time
}

// masterLog records, from the meta leader's map, which node mastered each
// partition and since when.
type masterLog struct {
	mu      sync.Mutex
	changes map[string][]masterChange // "table/partition" → changes in time order
}

type masterChange struct {
	at     time.Time
	master placement.NodeID
}

func (ml *masterLog) record(m *placement.Map, now time.Time) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	for _, tb := range m.Tables {
		for _, p := range tb.Partitions {
			k := fmt.Sprintf("%s/%d", tb.Name, p.ID)
			cs := ml.changes[k]
			if len(cs) == 0 || cs[len(cs)-1].master != p.Master {
				ml.changes[k] = append(cs, masterChange{at: now, master: p.Master})
			}
		}
	}
}

// mastersDuring returns the nodes that mastered a partition at some time
// within [from, to].
func (ml *masterLog) mastersDuring(table string, part placement.PartitionID, from, to time.Time) []placement.NodeID {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	var out []placement.NodeID
	cs := ml.changes[fmt.Sprintf("%s/%d", table, part)]
	for i, ch := range cs {
		until := to
		if i+1 < len(cs) {
			until = cs[i+1].at
		}
		if !ch.at.After(to) && !until.Before(from) && ch.master != "" && !slices.Contains(out, ch.master) {
			out = append(out, ch.master)
		}
	}
	return out
}

// lossWindow is how long after acknowledging a write its master may still
// hold the only copy: slaves that re-attach after a master change (a
// handshake, perhaps a full sync) can take this long under load.
const lossWindow = 3 * time.Second

// explain returns the fault that explains the loss of a write acknowledged
// at t in partition part of table, or nil. Only a master that stops
// abruptly, or keeps taking writes while its slaves cannot reach it, may
// lose acknowledged writes: a crash, a pause or an isolation of the node
// that mastered the partition around t, in force at t or starting within
// lossWindow after it; for an unfenced table also a master cut off from
// meta alone (it is replaced while it still serves).
func explain(faults []fault, ml *masterLog, table string, fenced bool, part placement.PartitionID, t time.Time) *fault {
	masters := ml.mastersDuring(table, part, t.Add(-lossWindow), t)
	for i := range faults {
		f := &faults[i]
		lossy := f.kind == "crash a data node" || f.kind == "isolate a data node" || f.kind == "pause a data node" ||
			(!fenced && f.kind == "cut a data node off from meta")
		if !lossy || !slices.Contains(masters, placement.NodeID(f.node)) {
			continue
		}
		if !f.end.Before(t.Add(-100*time.Millisecond)) && !f.start.After(t.Add(lossWindow)) {
			return f
		}
	}
	return nil
}

// TestChaos runs a continuous write load on an async, a fenced and a sync table
// while it crashes, pauses (traffic held, then delivered late), gracefully
// stops, isolates and restarts data nodes and meta members at random. At the end every node must be up,
// every partition must have one master and identical replicas, every key
// must hold a value that was written, and every acknowledged write that is
// gone must be explained by a fault that the design allows to lose it —
// for the sync table, none may be gone.
func TestChaos(t *testing.T) {
	rounds := int(envInt("ZEPPELIN_CHAOS_ROUNDS", 100))
	seed := envInt("ZEPPELIN_CHAOS_SEED", uint64(time.Now().UnixNano()))
	t.Logf("chaos: %d rounds, seed %d", rounds, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	const metas, datas = 3, 4
	c := splitCluster(t, metas, datas, nil)
	c.CreateTable("async", client.TableOptions{Partitions: 16, Replication: 3})
	c.CreateTable("fenced", client.TableOptions{Partitions: 8, Replication: 3, Fenced: true})
	c.CreateTable("sync", client.TableOptions{Partitions: 8, Replication: 3, Mode: placement.ModeSync})
	fencedTables := map[string]bool{"fenced": true, "sync": true}
	// A sync table loses no acknowledged write to any of these faults: one
	// node at a time fails, and its minimum in-sync set is 2 of 3.
	syncTables := map[string]bool{"sync": true}
	cl := c.NewClient("load")
	admin := c.NewClient("admin")
	ctx := ctxFor(t, time.Duration(rounds)*30*time.Second+5*time.Minute)

	// The master log starts before the first write.
	ml := &masterLog{changes: map[string][]masterChange{}}
	ml.record(c.Map(), time.Now())

	var round atomic.Int64
	loads := map[string]*chaosLoad{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, name := range []string{"async", "fenced", "sync"} {
		l := &chaosLoad{attempted: map[string]uint64{}, round: &round, pad: int(envInt("ZEPPELIN_CHAOS_PAD", 0))}
		loads[name] = l
		for w := range 4 {
			wg.Add(1)
			go l.run(ctx, cl.Table(name), w, 200, stop, &wg)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if m := c.LeaderMap(); m != nil {
				ml.record(m, time.Now())
			}
		}
	}()

	var faults []fault
	for r := range rounds {
		i := metas + rng.IntN(datas)
		pause := time.Duration(200+rng.IntN(2500)) * time.Millisecond
		f := rng.IntN(15)
		kind := map[int]string{0: "crash a data node", 1: "crash a data node", 2: "crash a data node", 3: "crash a data node",
			4: "graceful stop of a data node", 5: "graceful stop of a data node",
			6: "isolate a data node", 7: "isolate a data node", 8: "cut a data node off from meta",
			9: "pause a data node", 10: "crash a meta member", 11: "pause the meta leader",
			12: "move replicas", 13: "drain a data node, then undrain it", 14: "cancel the migrations"}[f]
		round.Store(int64(r + 1))
		target := c.Member(i).Name
		m := rng.IntN(metas)
		switch f {
		case 10:
			target = c.Member(m).Name
		case 11:
			m = max(c.MetaLeader(), 0)
			target = c.Member(m).Name
		}
		t.Logf("chaos: round %d: %s %s, pause %v", r+1, kind, target, pause)
		ft := fault{kind: kind, node: target, start: time.Now()}
		switch f {
		case 0, 1, 2, 3:
			c.Stop(i)
			time.Sleep(pause)
			c.Restart(i, true)
		case 4, 5:
			c.Shutdown(i)
			time.Sleep(pause)
			c.Restart(i, true)
		case 6, 7:
			isolate(c, placement.NodeID(c.Member(i).Name))
			time.Sleep(pause)
			c.Hub.Heal()
		case 8:
			for m := range metas {
				c.Hub.Block(c.Member(i).Name, c.Member(m).Name)
			}
			time.Sleep(pause)
			c.Hub.Heal()
		case 9:
			c.Pause(i)
			time.Sleep(2 * pause) // 0.4–5.4 s
			c.Resume(i)
		case 10:
			c.Stop(m)
			time.Sleep(pause)
			c.Restart(m, true)
		case 11:
			c.Pause(m)
			time.Sleep(2 * pause)
			c.Resume(m)
		case 12:
			moveRandomReplicas(t, ctx, c, admin, rng, 1+rng.IntN(3))
			time.Sleep(pause)
		case 13:
			node := placement.NodeID(c.Member(i).Name)
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			batch, _, err := admin.DrainNode(actx, node)
			cancel()
			if err != nil {
				t.Logf("chaos:   drain %s: %v", node, err)
			}
			time.Sleep(2 * pause)
			actx, cancel = context.WithTimeout(ctx, 10*time.Second)
			if batch != 0 {
				if err := admin.CancelBatch(actx, batch); err != nil {
					t.Logf("chaos:   cancel the drain of %s: %v", node, err)
				}
			}
			if err := admin.UndrainNode(actx, node); err != nil {
				t.Logf("chaos:   undrain %s: %v", node, err)
			}
			cancel()
		case 14:
			cancelMigrations(t, ctx, admin)
			time.Sleep(pause)
		}
		ft.end = time.Now()
		faults = append(faults, ft)
		if r%10 == 9 {
			t.Logf("chaos: %d rounds done", r+1)
		}
	}
	round.Store(int64(rounds + 1))
	close(stop)
	wg.Wait()

	waitAllUpAndMastered(c, time.Minute)
	// Every migration ends (completed or rolled back) and leaves nothing
	// held or half-copied behind.
	c.Eventually(3*time.Minute, func() error {
		ms, err := admin.Migrations(ctx, 0)
		if err != nil {
			return err
		}
		for _, mg := range ms {
			if !mg.State.Finished() {
				return fmt.Errorf("migration %d (%s/%d %s → %s) is %v", mg.ID, mg.Table, mg.Partition, mg.From, mg.To, mg.State)
			}
		}
		return nil
	})
	// A master rebalance may still be switching a partition over (stuck
	// for a moment); every partition settles active with no learners.
	c.Eventually(time.Minute, func() error {
		for _, tb := range c.Map().Tables {
			for _, p := range tb.Partitions {
				if p.State != placement.PartitionActive || len(p.Learners) > 0 {
					return fmt.Errorf("table %s partition %d after the run: %+v", tb.Name, p.ID, p)
				}
			}
		}
		return nil
	})
	for name := range loads {
		c.WaitConverged(name, 2*time.Minute)
	}
	checkOneMaster(t, c.Map())
	rctx := ctxFor(t, 2*time.Minute)
	for name, l := range loads {
		_, lostKeys := l.check(t, rctx, cl.Table(name))
		nparts := len(c.Map().Table(name).Partitions)
		type tally struct{ faults, lost int }
		byKind := map[string]*tally{}
		for _, f := range faults {
			tl := byKind[f.kind]
			if tl == nil {
				tl = &tally{}
				byKind[f.kind] = tl
			}
			tl.faults++
		}
		var unexplained []lostKey
		total := 0
		for _, lks := range lostKeys {
			for _, lk := range lks {
				total++
				part := placement.PartitionOf(lk.key, nparts)
				var f *fault
				if !syncTables[name] {
					f = explain(faults, ml, name, fencedTables[name], part, lk.at)
				}
				if f != nil {
					byKind[f.kind].lost++
				} else {
					unexplained = append(unexplained, lk)
				}
			}
		}
		t.Logf("chaos: table %s: %d writes sent, %d failed or timed out; %d of %d acknowledged write-once keys lost",
			name, l.ops, l.errs, total, len(l.once))
		for _, kind := range slices.Sorted(maps.Keys(byKind)) {
			tl := byKind[kind]
			t.Logf("chaos:   %-30s %3d× lost %5d", kind, tl.faults, tl.lost)
		}
		t.Logf("chaos:   %-30s      lost %5d", "no fault explains", len(unexplained))
		if len(unexplained) > 0 {
			t.Errorf("table %s: %d acknowledged writes lost that no fault explains", name, len(unexplained))
			for _, lk := range unexplained[:min(5, len(unexplained))] {
				part := placement.PartitionOf(lk.key, nparts)
				t.Logf("forensics: masters of %s/%d around the loss: %v", name, part, ml.mastersDuring(name, part, lk.at.Add(-lossWindow), lk.at))
				for _, f := range faults {
					if !f.end.Before(lk.at.Add(-5*time.Second)) && !f.start.After(lk.at.Add(5*time.Second)) {
						t.Logf("forensics:   fault %s %s from %s to %s", f.kind, f.node, f.start.Format("15:04:05.000"), f.end.Format("15:04:05.000"))
					}
				}
				explainLoss(t, c, name, lk)
			}
		}
	}
}

// moveRandomReplicas queues n moves of random replicas to random nodes
// outside their partitions (refusals, such as a partition already moving,
// are logged and skipped).
func moveRandomReplicas(t *testing.T, ctx context.Context, c *testcluster.Cluster, admin *client.Client, rng *rand.Rand, n int) {
	m := c.LeaderMap()
	if m == nil {
		return
	}
	for range n {
		tb := m.Tables[rng.IntN(len(m.Tables))]
		p := tb.Partitions[rng.IntN(len(tb.Partitions))]
		reps := p.Replicas()
		if len(reps) == 0 {
			continue
		}
		from := reps[rng.IntN(len(reps))]
		var outside []placement.NodeID
		for _, node := range m.Nodes {
			if !p.Holds(node.ID) && node.State == placement.NodeUp && !node.Drain {
				outside = append(outside, node.ID)
			}
		}
		if len(outside) == 0 {
			continue
		}
		to := outside[rng.IntN(len(outside))]
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, err := admin.Migrate(actx, tb.Name, int(p.ID), from, to, client.Force())
		cancel()
		if err != nil {
			t.Logf("chaos:   move %s/%d %s → %s: %v", tb.Name, p.ID, from, to, err)
			continue
		}
		t.Logf("chaos:   migration %d: %s/%d %s → %s", id, tb.Name, p.ID, from, to)
	}
}

// cancelMigrations cancels every unfinished migration.
func cancelMigrations(t *testing.T, ctx context.Context, admin *client.Client) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ms, err := admin.Migrations(actx, 0)
	if err != nil {
		t.Logf("chaos:   list migrations: %v", err)
		return
	}
	for _, mg := range ms {
		if mg.State.Finished() {
			continue
		}
		if err := admin.CancelMigration(actx, mg.ID); err != nil {
			t.Logf("chaos:   cancel migration %d: %v", mg.ID, err)
		} else {
			t.Logf("chaos:   cancelled migration %d (%v)", mg.ID, mg.State)
		}
	}
}
