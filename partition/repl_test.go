package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// catchUp copies the master's records the slave lacks, a page at a time.
func catchUp(t testing.TB, master, slave *Replica, pageBytes int) {
	t.Helper()
	for {
		from := slave.State().Seq + 1
		recs, err := master.ReadLog(from, pageBytes)
		if err != nil {
			t.Fatalf("ReadLog(%d): %v", from, err)
		}
		if len(recs) == 0 {
			return
		}
		if err := slave.Apply(recs); err != nil {
			t.Fatalf("Apply(%d records from %d): %v", len(recs), from, err)
		}
	}
}

// sameReplica checks two replicas in two stores hold identical data and
// positions.
func sameReplica(t testing.TB, ms *Store, m *Replica, ss *Store, s *Replica, now int64) {
	t.Helper()
	mst, sst := m.State(), s.State()
	if mst.Gen != sst.Gen || mst.Seq != sst.Seq || !reflect.DeepEqual(mst.History, sst.History) {
		t.Fatalf("positions differ: master %+v, slave %+v", mst, sst)
	}
	equalModels(t, "slave vs master", dump(t, ss, s.ID(), sst, now), dump(t, ms, m.ID(), mst, now))
}

func TestReplicationApply(t *testing.T) {
	c := newClock()
	ms, m := newMaster(t, c)
	ss := openStore(t, testOptions(t, t.TempDir(), c))
	s := replica(t, ss, 1, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for round := range 6 {
		if round == 3 {
			// A failover-like generation change.
			if err := m.Promote(2); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 150 {
			ops := randomGroup(rng, 40)
			switch i % 50 {
			case 10:
				ops = append(ops, wire.Op{Type: wire.OpDeleteTag, Key: []byte("h1")})
			case 20:
				ops = append(ops, wire.Op{Type: wire.OpExpire, Key: []byte("k3"), TTL: 10_000})
			case 30:
				ops = []wire.Op{{Type: wire.OpPersist, Key: []byte("k3")}, setTTL("short", "x", 50)}
			}
			if round == 4 && i == 75 {
				ops = []wire.Op{{Type: wire.OpFlush}, set("after-flush", "1")}
			}
			if _, err := m.Write(ctx, ops); err != nil && wire.CodeOf(err) != wire.CodeNotInteger {
				t.Fatal(err)
			}
		}
		c.Advance(100) // let some short TTLs lapse
		catchUp(t, m, s, 1+rng.IntN(4000))
		sameReplica(t, ms, m, ss, s, c.Now())
	}
	st := s.State()
	if st.Gen != 2 || len(st.History) != 2 || st.History[0] != (GenStart{Gen: 1, Seq: 1}) {
		t.Fatalf("slave state %+v", st)
	}
	// The slave's log is byte-identical to the master's.
	mrecs, _ := m.ReadLog(1, 1<<30)
	srecs, _ := s.ReadLog(1, 1<<30)
	if !reflect.DeepEqual(mrecs, srecs) {
		t.Fatalf("logs differ")
	}
	// The slave's data is its own log replayed.
	equalModels(t, "slave replay", dump(t, ss, s.ID(), st, c.Now()), replay(readLog(t, ss, s.ID(), st)).live(c.Now()))

	// Reopened, the slave still matches.
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	ss2 := openStore(t, testOptions(t, ss.opts.Dir, c))
	s2 := replica(t, ss2, 1, 0)
	sameReplica(t, ms, m, ss2, s2, c.Now())
}

func TestApplyRejects(t *testing.T) {
	c := newClock()
	_, m := newMaster(t, c)
	ss := openStore(t, testOptions(t, t.TempDir(), c))
	s := replica(t, ss, 1, 0)
	for i := range 5 {
		write(t, m, set(fmt.Sprint("k", i), "v"))
	}
	recs, err := m.ReadLog(1, 1<<20)
	if err != nil || len(recs) != 5 {
		t.Fatalf("ReadLog: %d %v", len(recs), err)
	}
	wantErr(t, s.Apply(recs[1:]), ErrGap)
	wantErr(t, s.Apply([][]byte{recs[0], recs[2]}), ErrGap)
	if st := s.State(); st.Seq != 0 {
		t.Fatalf("rejected Apply changed the state: %+v", st)
	}
	bad := append([]byte{}, recs[0]...)
	bad[len(bad)-1] ^= 0xff
	wantErr(t, s.Apply([][]byte{bad}), binlog.ErrCorrupt)

	if err := s.Apply(recs[:3]); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Apply(recs[:3]), ErrGap) // replayed
	// A record from an older generation than the slave's is stale.
	newer := binlog.Record{Seq: 4, Gen: 5, TimeMs: c.Now(), Effects: []binlog.Effect{{Kind: binlog.EffectSet, Key: []byte("x"), Value: []byte("y")}}}
	if err := s.Apply([][]byte{newer.AppendEncode(nil)}); err != nil {
		t.Fatal(err)
	}
	older := binlog.Record{Seq: 5, Gen: 4, TimeMs: c.Now(), Effects: []binlog.Effect{{Kind: binlog.EffectDelete, Key: []byte("x")}}}
	wantErr(t, s.Apply([][]byte{older.AppendEncode(nil)}), ErrStaleGen)
	st := s.State()
	if st.Seq != 4 || st.Gen != 5 || fmt.Sprint(st.History) != "[{1 1} {5 4}]" {
		t.Fatalf("state %+v", st)
	}
	wantValue(t, s, "x", "y")

	// A master refuses Apply; an empty Apply is a no-op.
	if err := m.Apply(recs[:1]); err == nil || !strings.Contains(err.Error(), "master") {
		t.Fatalf("Apply on master: %v", err)
	}
	if err := s.Apply(nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	wantErr(t, s.Apply(recs[3:]), ErrClosed)
}

func TestApplySplitsLargeBatches(t *testing.T) {
	c := newClock()
	ms, m := newMaster(t, c)
	ss := openStore(t, testOptions(t, t.TempDir(), c))
	s := replica(t, ss, 1, 0)
	// Enough records that together they exceed one transaction.
	ops := make([]wire.Op, 500)
	for g := range 30 {
		for i := range ops {
			ops[i] = set(fmt.Sprintf("{t}g%d-%d", g, i), "value-value-value")
		}
		write(t, m, ops...)
	}
	recs, err := m.ReadLog(1, 1<<30)
	if err != nil || len(recs) != 30 {
		t.Fatalf("ReadLog: %d %v", len(recs), err)
	}
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	sameReplica(t, ms, m, ss, s, c.Now())
}

func TestReadLogAndWaitSeq(t *testing.T) {
	c := newClock()
	_, m := newMaster(t, c)
	recs, err := m.ReadLog(1, 100)
	if err != nil || len(recs) != 0 {
		t.Fatalf("ReadLog on empty log: %d %v", len(recs), err)
	}
	if _, err := m.ReadLog(0, 100); err == nil {
		t.Fatalf("ReadLog(0) succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- m.WaitSeq(ctx, 2) }()
	write(t, m, set("a", "1"))
	write(t, m, set("b", "1"))
	select {
	case err := <-waited:
		t.Fatalf("WaitSeq(2) returned %v at seq 2", err)
	default:
	}
	write(t, m, set("c", "1"))
	if err := <-waited; err != nil {
		t.Fatalf("WaitSeq: %v", err)
	}
	go func() { waited <- m.WaitSeq(ctx, 10) }()
	cancel()
	wantErr(t, <-waited, context.Canceled)
	go func() { waited <- m.WaitSeq(context.Background(), 10) }()
	m.Close()
	wantErr(t, <-waited, ErrClosed)

	// The first record comes back even when larger than maxBytes.
	_, m2 := newMaster(t, c)
	for i := range 4 {
		write(t, m2, set(fmt.Sprint(i), strings.Repeat("x", 1000)))
	}
	recs, err = m2.ReadLog(2, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ReadLog with tiny budget: %d %v", len(recs), err)
	}
	if seq, _, _, _ := binlog.Peek(recs[0]); seq != 2 {
		t.Fatalf("first record seq %d", seq)
	}
	recs, _ = m2.ReadLog(2, 2100)
	if len(recs) != 2 {
		t.Fatalf("ReadLog(2, 2100) = %d records, want 2", len(recs))
	}
	if recs, _ = m2.ReadLog(5, 1<<20); len(recs) != 0 {
		t.Fatalf("ReadLog beyond the end = %d records", len(recs))
	}
}

func TestDecide(t *testing.T) {
	st := State{Gen: 3, Seq: 100, FirstSeq: 1, History: []GenStart{{Gen: 1, Seq: 1}, {Gen: 2, Seq: 40}, {Gen: 3, Seq: 80}}}
	purged := st
	purged.FirstSeq = 50
	empty := State{FirstSeq: 1}
	cases := []struct {
		name             string
		st               State
		lastGen, lastSeq uint64
		want             wire.ReplAction
	}{
		{"empty slave, full log: a snapshot is cheaper", st, 0, 0, wire.ReplFullSync},
		{"empty slave, empty master", empty, 0, 0, wire.ReplContinue},
		{"empty slave, purged log", purged, 0, 0, wire.ReplFullSync},
		{"prefix in gen 1", st, 1, 39, wire.ReplContinue},
		{"prefix at gen boundary", st, 2, 40, wire.ReplContinue},
		{"caught up", st, 3, 100, wire.ReplContinue},
		{"ahead", st, 3, 101, wire.ReplFullSync},
		{"ahead of empty master", empty, 1, 1, wire.ReplFullSync},
		{"diverged: same seq, other gen", st, 2, 85, wire.ReplFullSync},
		{"diverged: old master's gen beyond its end", st, 1, 45, wire.ReplFullSync},
		{"purged", purged, 2, 45, wire.ReplFullSync},
		{"just retained", purged, 2, 49, wire.ReplContinue},
		{"gen at seq 0", st, 1, 0, wire.ReplFullSync},
		{"incomplete master", State{Incomplete: true, FirstSeq: 1}, 0, 0, wire.ReplRefuse},
	}
	r := &Replica{}
	for _, tc := range cases {
		r.st = tc.st
		got, reason := r.Decide(tc.lastGen, tc.lastSeq)
		if got != tc.want {
			t.Errorf("%s: Decide(%d, %d) = %v (%s), want %v", tc.name, tc.lastGen, tc.lastSeq, got, reason, tc.want)
		}
		if reason == "" {
			t.Errorf("%s: no reason", tc.name)
		}
	}
	gens := map[uint64]uint64{0: 0, 1: 1, 39: 1, 40: 2, 79: 2, 80: 3, 100: 3}
	for seq, want := range gens {
		if g, ok := st.GenAt(seq); !ok || g != want {
			t.Errorf("GenAt(%d) = %d %v, want %d", seq, g, ok, want)
		}
	}
	if _, ok := st.GenAt(101); ok {
		t.Errorf("GenAt beyond Seq succeeded")
	}
	if _, ok := (State{Seq: 5, History: []GenStart{{Gen: 2, Seq: 3}}}).GenAt(2); ok {
		t.Errorf("GenAt before the history succeeded")
	}
}

// TestDivergedSlave replays a failover: the old master wrote records its
// slave never got; a new master took over. The old master must full-sync.
func TestDivergedSlave(t *testing.T) {
	c := newClock()
	as, a := newMaster(t, c) // old master
	bs := openStore(t, testOptions(t, t.TempDir(), c))
	b := replica(t, bs, 1, 0)
	for i := range 10 {
		write(t, a, set(fmt.Sprint("k", i), "a"))
	}
	catchUp(t, a, b, 1<<20)
	write(t, a, set("lost", "x")) // never replicated
	a.Demote()
	if err := b.Promote(2); err != nil {
		t.Fatal(err)
	}
	write(t, b, set("k1", "b"))
	ast := a.State()
	action, reason := b.Decide(ast.Gen, ast.Seq)
	if action != wire.ReplFullSync {
		t.Fatalf("Decide for diverged slave = %v (%s)", action, reason)
	}
	if !strings.Contains(reason, "diverged") {
		t.Fatalf("reason %q", reason)
	}
	fullSync(t, b, a)
	wantAbsent(t, a, "lost")
	wantValue(t, a, "k1", "b")
	sameReplica(t, bs, b, as, a, c.Now())
	write(t, b, set("k2", "b"))
	catchUp(t, b, a, 1<<20)
	sameReplica(t, bs, b, as, a, c.Now())
}

// fullSync copies master's snapshot into slave.
func fullSync(t testing.TB, master, slave *Replica) {
	t.Helper()
	sn, err := master.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer sn.Close()
	if err := slave.BeginLoad(); err != nil {
		t.Fatalf("BeginLoad: %v", err)
	}
	for {
		entries, done, err := sn.Next(512)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if err := slave.LoadChunk(entries); err != nil {
			t.Fatalf("LoadChunk: %v", err)
		}
		if done {
			break
		}
	}
	if err := slave.FinishLoad(sn.Gen, sn.Seq, sn.History); err != nil {
		t.Fatalf("FinishLoad: %v", err)
	}
}
