package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// sameLane returns n promoted replicas of table 1 that share one
// committer, so that their groups can meet in one round.
func sameLane(t *testing.T, s *Store, n int) []*Replica {
	t.Helper()
	var reps []*Replica
	want := -1
	for p := uint32(0); len(reps) < n; p++ {
		lane := laneOf(ReplicaID{1, p}, len(s.lanes))
		if want >= 0 && lane != want {
			continue
		}
		want = lane
		r := replica(t, s, 1, p)
		if err := r.Promote(1); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, r)
	}
	return reps
}

// TestCommitterManyReplicas writes from many goroutines to many replicas
// of one store at once, so that rounds carry several replicas' groups, and
// checks that every replica's log is its own: one seq per acknowledged
// write, counters that add up, and data as the log says.
func TestCommitterManyReplicas(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	const parts, writers, each = 12, 4, 60
	reps := make([]*Replica, parts)
	for p := range reps {
		reps[p] = replica(t, s, 1, uint32(p))
		if err := reps[p].Promote(1); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, parts*writers)
	for p, r := range reps {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					ops := []wire.Op{incr("count", 1), set(fmt.Sprintf("w%d-%d", w, i), fmt.Sprint(p))}
					if _, err := r.Write(context.Background(), ops); err != nil {
						errs <- fmt.Errorf("replica %d writer %d write %d: %w", p, w, i, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for p, r := range reps {
		if st := r.State(); st.Seq != writers*each {
			t.Fatalf("replica %d: seq %d, want %d", p, st.Seq, writers*each)
		}
		wantValue(t, r, "count", fmt.Sprint(writers*each))
		wantValue(t, r, fmt.Sprintf("w%d-%d", writers-1, each-1), fmt.Sprint(p))
		st := r.State()
		equalModels(t, fmt.Sprintf("replica %d", p), dump(t, s, r.id, st, c.Now()), replay(readLog(t, s, r.id, st)))
	}
}

// TestCommitterRoundTooBig puts two replicas' groups in one round whose
// transaction is too big for Badger although each fits alone: both commit,
// each in a transaction of its own.
func TestCommitterRoundTooBig(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	reps := sameLane(t, s, 3)
	hold, a, b := reps[0], reps[1], reps[2]
	taken, release := make(chan struct{}), make(chan struct{})
	hold.testHookCommit = func() { taken <- struct{}{}; <-release }

	// A set of a key with a hashtag writes two entries (the data and the
	// tag's index entry): a's and b's groups take just over half of
	// Badger's entry limit each, and both fit in one round's budget of ops.
	group := func(prefix string, n int) []wire.Op {
		ops := make([]wire.Op, n)
		for i := range ops {
			ops[i] = set(fmt.Sprintf("{%s}%06d", prefix, i), "v")
		}
		return ops
	}
	na, nb := int(s.txnEntries/4)-100, int(s.txnEntries/2)-int(s.txnEntries/4)+200
	held := make(chan error, 1)
	go func() { _, err := hold.Write(context.Background(), []wire.Op{set("x", "1")}); held <- err }()
	<-taken
	pa, err := a.Submit(context.Background(), group("a", na))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.Submit(context.Background(), group("b", nb))
	if err != nil {
		t.Fatal(err)
	}
	hold.testHookCommit = nil
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for _, p := range []Pending{pa, pb} {
		if _, _, err := p.Wait(context.Background()); err != nil {
			t.Fatalf("a group that fits alone: %v", err)
		}
	}
	wantValue(t, a, "{a}000000", "v")
	wantValue(t, b, fmt.Sprintf("{b}%06d", nb-1), "v")
	if a.State().Seq != 1 || b.State().Seq != 1 {
		t.Fatalf("seqs %d and %d, want 1 and 1", a.State().Seq, b.State().Seq)
	}
}

// TestCommitterDemoteOne demotes one replica while others of its lane keep
// writing: its queued groups fail with ErrNotMaster, the others' succeed.
func TestCommitterDemoteOne(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	reps := sameLane(t, s, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	fails := make([]error, len(reps))
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				// The demoted replica's writer runs until its write is
				// refused, however late the scheduler lets it see that.
				if i > 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				if _, err := r.Write(context.Background(), []wire.Op{incr("n", 1)}); err != nil {
					fails[i] = err
					return
				}
			}
		}()
	}
	waitFor(t, "writes on every replica", 5e9, func() bool {
		for _, r := range reps {
			if r.State().Seq < 20 {
				return false
			}
		}
		return true
	})
	reps[0].Demote()
	seq := reps[0].State().Seq
	waitFor(t, "more writes on the others", 5e9, func() bool { return reps[1].State().Seq > seq+20 && reps[2].State().Seq > seq+20 })
	close(stop)
	wg.Wait()
	if !errors.Is(fails[0], ErrNotMaster) {
		t.Fatalf("the demoted replica's writer: %v, want ErrNotMaster", fails[0])
	}
	if fails[1] != nil || fails[2] != nil {
		t.Fatalf("the others' writers: %v, %v", fails[1], fails[2])
	}
	if got := reps[0].State().Seq; got != seq {
		t.Fatalf("the demoted replica committed after Demote returned: seq %d → %d", seq, got)
	}
	for _, r := range reps {
		wantValue(t, r, "n", fmt.Sprint(r.State().Seq))
	}
}
