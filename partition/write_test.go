package partition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// randomGroup builds a group of 1–4 ops over a small key space, mixing sets
// with and without TTL, increments, deletes and hashtag keys.
func randomGroup(rng *rand.Rand, keys int) []wire.Op {
	n := 1 + rng.IntN(4)
	ops := make([]wire.Op, 0, n)
	for range n {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		if rng.IntN(3) == 0 {
			k = fmt.Sprintf("{h%d}%s", rng.IntN(4), k)
		}
		switch rng.IntN(10) {
		case 0, 1, 2:
			ops = append(ops, set(k, fmt.Sprint(rng.Int64())))
		case 3:
			ops = append(ops, setTTL(k, fmt.Sprint(rng.Int64()), int64(3_600_000+rng.IntN(1000))))
		case 4, 5, 6:
			ops = append(ops, incr("n"+k, int64(rng.IntN(100)-50)))
		case 7, 8:
			ops = append(ops, del(k))
		case 9:
			ops = append(ops, wire.Op{Type: wire.OpSet, Key: []byte(k), Value: []byte("nx"), Cond: wire.CondIfAbsent})
		}
	}
	return ops
}

func TestGroupCommitConcurrent(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	const nrep = 4
	reps := make([]*Replica, nrep)
	for i := range reps {
		reps[i] = replica(t, s, 7, uint32(i))
		if err := reps[i].Promote(1); err != nil {
			t.Fatal(err)
		}
	}
	const writers, perWriter = 64, 60
	var wg sync.WaitGroup
	var effectful [nrep]atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWriter {
				// Half the writers hammer replica 0, the rest spread out.
				i := 0
				if w%2 == 1 {
					i = rng.IntN(nrep)
				}
				if _, err := reps[i].Write(context.Background(), randomGroup(rng, 50)); err != nil && wire.CodeOf(err) != wire.CodeNotInteger {
					t.Errorf("Write: %v", err)
					return
				}
				effectful[i].Add(1)
			}
		}()
	}
	wg.Wait()
	total := uint64(0)
	for _, r := range reps {
		st := r.State()
		recs := readLog(t, s, r.ID(), st) // checks 1..Seq consecutive
		total += st.Seq
		got := dump(t, s, r.ID(), st, c.Now())
		equalModels(t, fmt.Sprintf("replica %v vs its log", r.ID()), got, replay(recs).live(c.Now()))
		if st.Seq == 0 || st.Seq > uint64(effectful[r.ID().Partition].Load()) {
			t.Fatalf("replica %v: seq %d for %d groups", r.ID(), st.Seq, effectful[r.ID().Partition].Load())
		}
		// Through ReadLog, with small pages.
		var n uint64
		for from := uint64(1); from <= st.Seq; {
			page, err := r.ReadLog(from, 2000)
			if err != nil || len(page) == 0 {
				t.Fatalf("ReadLog(%d): %d records, %v", from, len(page), err)
			}
			from += uint64(len(page))
			n += uint64(len(page))
		}
		if n != st.Seq {
			t.Fatalf("ReadLog returned %d records, want %d", n, st.Seq)
		}
	}
	t.Logf("%d groups, %d records", writers*perWriter, total)
}

// TestGroupCommitModel checks the outcome of concurrent groups against a
// model: unique keys per writer make the final contents predictable.
func TestGroupCommitModel(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	const writers, perWriter = 64, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				k := fmt.Sprintf("w%d-%d", w, i)
				ops := []wire.Op{set(k, "v"), incr(fmt.Sprintf("count-%d", w), 1)}
				if i%5 == 4 {
					ops = append(ops, del(fmt.Sprintf("w%d-%d", w, i-1)))
				}
				if _, err := r.Write(context.Background(), ops); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := model{}
	for w := range writers {
		for i := range perWriter {
			if i%5 != 3 {
				want[fmt.Sprintf("w%d-%d", w, i)] = entry{"v", 0}
			}
		}
		want[fmt.Sprintf("count-%d", w)] = entry{fmt.Sprint(perWriter), 0}
	}
	st := r.State()
	if st.Seq != writers*perWriter {
		t.Fatalf("seq %d, want %d", st.Seq, writers*perWriter)
	}
	equalModels(t, "contents", dump(t, s, r.ID(), st, c.Now()), want)
	equalModels(t, "log replay", replay(readLog(t, s, r.ID(), st)), want)
}

func TestConcurrentIncrAndSetIfAbsent(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	const n, each = 32, 100
	var wg sync.WaitGroup
	var done atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := r.Write(context.Background(), []wire.Op{incr("counter", 1)}); err != nil {
					t.Errorf("incr: %v", err)
					return
				}
			}
			res, err := r.Write(context.Background(), []wire.Op{{Type: wire.OpSet, Key: []byte("lock"), Value: []byte("me"), Cond: wire.CondIfAbsent}})
			if err != nil {
				t.Errorf("setnx: %v", err)
				return
			}
			if res[0].Done {
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	wantValue(t, r, "counter", fmt.Sprint(n*each))
	if done.Load() != 1 {
		t.Fatalf("%d set-if-absent succeeded, want 1", done.Load())
	}
	if st := r.State(); st.Seq != n*each+1 {
		t.Fatalf("seq %d, want %d", st.Seq, n*each+1)
	}
}

func TestWriteContextCancelledWhileQueued(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	r := replica(t, s, 1, 0)
	// The hook holds the sequencer at the start of each group commit until
	// the test releases it, so later groups stay queued.
	taken, release := make(chan struct{}), make(chan struct{})
	r.testHookCommit = func() { taken <- struct{}{}; <-release }
	if err := r.Promote(1); err != nil {
		t.Fatal(err)
	}
	queued := func(n int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d queued groups", n), 5*time.Second, func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return len(r.pending) == n
		})
	}
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { _, err := r.Write(context.Background(), []wire.Op{set("first", "1")}); first <- err }()
	<-taken
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, err := r.Write(ctx, []wire.Op{set("second", "2")}); second <- err }()
	queued(1)
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Write: %v", err)
	}
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatalf("first Write: %v", err)
	}
	go func() { <-taken; release <- struct{}{} }()
	write(t, r, set("third", "3"))
	wantValue(t, r, "first", "1")
	wantAbsent(t, r, "second")
	if st := r.State(); st.Seq != 2 {
		t.Fatalf("seq %d, want 2", st.Seq)
	}

	// Demote waits for the commit in progress and fails queued groups with
	// ErrNotMaster.
	go func() { _, err := r.Write(context.Background(), []wire.Op{set("a", "1")}); first <- err }()
	<-taken
	go func() { _, err := r.Write(context.Background(), []wire.Op{set("b", "1")}); second <- err }()
	queued(1)
	demoted := make(chan struct{})
	go func() { r.Demote(); close(demoted) }()
	select {
	case <-demoted:
		t.Fatalf("Demote returned while a group commit was in progress")
	case <-time.After(20 * time.Millisecond):
	}
	release <- struct{}{}
	<-demoted
	if err := <-first; err != nil {
		t.Fatalf("taken group: %v", err)
	}
	if err := <-second; err != ErrNotMaster {
		t.Fatalf("queued group after Demote: %v", err)
	}
	wantValue(t, r, "a", "1")
	wantAbsent(t, r, "b")
}

// TestReadSeqCoversCommitInFlight: a read whose snapshot opens after a
// record's Badger commit, but before the replica's state follows it, sees
// the record; the seq it reports must cover that record, else a sync master
// would answer with a write it has not waited to replicate.
func TestReadSeqCoversCommitInFlight(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	write(t, r, set("k", "old"))
	committed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failure below must not leave the commit held
	r.testHookCommitted = func() { committed <- struct{}{}; <-release }
	done := make(chan error, 1)
	go func() { _, err := r.Write(context.Background(), []wire.Op{set("k", "new")}); done <- err }()
	<-committed
	v, _, found, seq, err := r.GetSeq([]byte("k"))
	if err != nil || !found {
		t.Fatalf("GetSeq: found %v, %v", found, err)
	}
	if string(v) == "new" && seq < 2 {
		t.Fatalf("read the value of record 2 but reported seq %d", seq)
	}
	if string(v) != "new" {
		t.Fatalf("read %q after the commit finished in the store, want \"new\"", v)
	}
	_, _, _, lseq, err := r.ListSeq([]byte("k"), nil, 0, false)
	if err != nil || lseq < 2 {
		t.Fatalf("ListSeq during the commit: seq %d, %v", lseq, err)
	}
	r.s.GetMany([]*Replica{r, r}, [][]byte{[]byte("k"), []byte("k")}, func(i int, v []byte, _ int64, found bool, seq uint64, err error) bool {
		if err != nil || !found || string(v) != "new" || seq < 2 {
			t.Errorf("GetMany key %d during the commit: %q, found %v, seq %d, %v", i, v, found, seq, err)
		}
		return true
	})
	r.testHookCommitted = nil
	unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, _, seq, err := r.GetSeq([]byte("k")); err != nil || seq != 2 {
		t.Fatalf("GetSeq after the commit: seq %d, %v", seq, err)
	}
}

// TestGetMany reads keys of several replicas from one snapshot: each
// answer is GetSeq's, in the order of the keys, until fn stops it.
func TestGetMany(t *testing.T) {
	c := newClock()
	s, a := newMaster(t, c)
	b := replica(t, s, 1, 1)
	if err := b.Promote(1); err != nil {
		t.Fatal(err)
	}
	closed := replica(t, s, 2, 0)
	write(t, a, set("x", "ax"), set("y", "ay"))
	write(t, a, setTTL("t", "soon", 10))
	write(t, b, set("x", "bx"))
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	c.Advance(10) // "t" expires
	// The writes left their answers in the read cache: this test reads
	// from the snapshot.
	for _, k := range []string{"x", "y", "t"} {
		forgetCached(a, k)
	}
	forgetCached(b, "x")
	reps := []*Replica{a, b, a, closed, b, a}
	keys := [][]byte{[]byte("x"), []byte("x"), []byte("y"), []byte("x"), []byte("nope"), []byte("t")}
	type answer struct {
		v     string
		found bool
		seq   uint64
		err   error
	}
	want := []answer{{"ax", true, 2, nil}, {"bx", true, 1, nil}, {"ay", true, 2, nil}, {"", false, 0, ErrClosed}, {"", false, 1, nil}, {"", false, 2, nil}}
	var got []answer
	var order []int
	s.GetMany(reps, keys, func(i int, v []byte, _ int64, found bool, seq uint64, err error) bool {
		order = append(order, i)
		got = append(got, answer{string(v), found, seq, err})
		return true
	})
	if !reflect.DeepEqual(order, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("answered keys in order %v", order)
	}
	for i := range want {
		if got[i].v != want[i].v || got[i].found != want[i].found || got[i].seq != want[i].seq || !errors.Is(got[i].err, want[i].err) {
			t.Errorf("key %d (%s of %v): got %+v, want %+v", i, keys[i], reps[i].ID(), got[i], want[i])
		}
	}
	n := 0
	s.GetMany(reps, keys, func(int, []byte, int64, bool, uint64, error) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("fn called %d times after asking to stop at the second key", n)
	}
}

// TestLongGroupSeesItsOwnWrites: a group longer than the overlay scan
// reads its own earlier writes through the index it builds, and a flush
// in it hides them.
func TestLongGroupSeesItsOwnWrites(t *testing.T) {
	_, m := newMaster(t, newClock())
	write(t, m, set("k3", "100"), set("k4", "100"))
	var ops []wire.Op
	for k := range 20 {
		ops = append(ops, set(fmt.Sprint("k", k), "5"))
	}
	ops = append(ops, incr("k3", 1), del("k4"), incr("k4", 1), incr("k3", 1),
		wire.Op{Type: wire.OpFlush}, incr("k3", 1), set("a", "1"), incr("a", 1))
	res := write(t, m, ops...)
	got := []int64{res[20].Int, res[22].Int, res[23].Int, res[25].Int, res[27].Int}
	if want := []int64{6, 1, 7, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("increments answered %v, want %v", got, want)
	}
	wantValue(t, m, "k3", "1")
	wantValue(t, m, "a", "2")
	if _, _, found, _ := m.Get([]byte("k5")); found {
		t.Fatal("k5 survived the group's flush")
	}
}
