package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestSnapshotConsistentUnderWrites(t *testing.T) {
	c := newClock()
	ms, m := newMaster(t, c)
	ss := openStore(t, testOptions(t, t.TempDir(), c))
	s := replica(t, ss, 1, 0)
	for i := range 300 {
		write(t, m, set(fmt.Sprintf("{t%d}pre%d", i%5, i), "v"))
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for ctx.Err() == nil {
				ops := randomGroup(rng, 200)
				if rng.IntN(200) == 0 {
					ops = append(ops, wire.Op{Type: wire.OpFlush})
				}
				if _, err := m.Write(ctx, ops); err != nil && wire.CodeOf(err) != wire.CodeNotInteger && ctx.Err() == nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		}()
	}
	// Take snapshots while the writers run, and read each slowly.
	for round := range 3 {
		m.WaitSeq(context.Background(), m.State().Seq+50)
		sn, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		got := model{}
		for {
			entries, done, err := sn.Next(700)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				got[string(e.Key)] = entry{string(e.Value), e.ExpireAt}
			}
			if done {
				break
			}
		}
		// The log up to the snapshot's seq, replayed, is the snapshot.
		recs, err := m.ReadLog(1, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		want := model{}
		for _, b := range recs {
			rec := decode(t, b)
			if rec.Seq > sn.Seq {
				break
			}
			want.apply(rec.Effects)
		}
		equalModels(t, fmt.Sprintf("snapshot %d at seq %d", round, sn.Seq), got, want.live(c.Now()))
		if g, _ := m.State().GenAt(sn.Seq); g != sn.Gen {
			t.Fatalf("snapshot gen %d, log says %d", sn.Gen, g)
		}

		// Load it into the slave, then catch up from its seq.
		sn.Close()
		sn.Close()
		if _, _, err := sn.Next(1); err != ErrClosed {
			t.Fatalf("Next after Close: %v", err)
		}
	}
	fullSync(t, m, s)
	if st := s.State(); st.FirstSeq != st.Seq+1 || st.Incomplete {
		t.Fatalf("slave after load: %+v", st)
	}
	catchUp(t, m, s, 1<<16)
	cancel()
	wg.Wait()
	// A cancelled Write may return while its group is still committing;
	// Demote waits for that commit.
	m.Demote()
	catchUp(t, m, s, 1<<16)
	sameReplica(t, ms, m, ss, s, c.Now())
	if m.State().Seq < 300+150 {
		t.Fatalf("writers made little progress: seq %d", m.State().Seq)
	}
}

func TestSnapshotSkipsExpired(t *testing.T) {
	c := newClock()
	_, m := newMaster(t, c)
	at := c.after(60_000)
	write(t, m, setTTL("a", "1", 60_000), setTTL("b", "2", 10), set("c", "3"))
	c.Advance(10)
	sn, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	entries, done, err := sn.Next(1 << 20)
	if err != nil || !done {
		t.Fatalf("Next: %v %v", done, err)
	}
	want := []wire.SnapEntry{{Key: []byte("a"), Value: []byte("1"), ExpireAt: at}, {Key: []byte("c"), Value: []byte("3")}}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Fatalf("entries %v, want %v", entries, want)
	}
	if sn.Gen != 1 || sn.Seq != 1 || len(sn.History) != 1 {
		t.Fatalf("snapshot position %d %d %v", sn.Gen, sn.Seq, sn.History)
	}
}

func TestInterruptedLoad(t *testing.T) {
	c := newClock()
	_, m := newMaster(t, c)
	for i := range 50 {
		write(t, m, set(fmt.Sprintf("{t}k%d", i), "master"))
	}
	dir := t.TempDir()
	ss, err := Open(testOptions(t, dir, c))
	if err != nil {
		t.Fatal(err)
	}
	s := replica(t, ss, 1, 0)
	catchUp(t, m, s, 1<<20)
	old := s.State()

	if err := s.BeginLoad(); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	if !st.Incomplete || st.Seq != 0 || st.Gen != 0 || st.History != nil || st.FirstSeq != 1 {
		t.Fatalf("after BeginLoad: %+v", st)
	}
	if st.DataInc <= old.DataInc || st.LogInc <= old.LogInc {
		t.Fatalf("BeginLoad kept incarnations: %+v → %+v", old, st)
	}
	wantErr(t, errOf(s.Get([]byte("{t}k1"))), ErrIncomplete)
	wantErr(t, errOf3(s.List([]byte("t"), nil, 10, false)), ErrIncomplete)
	wantErr(t, s.Promote(1), ErrIncomplete)
	wantErr(t, s.Apply([][]byte{{1}}), ErrIncomplete)
	if _, err := s.Snapshot(); err != ErrIncomplete {
		t.Fatalf("Snapshot of incomplete replica: %v", err)
	}
	if a, _ := s.Decide(0, 0); a != wire.ReplRefuse {
		t.Fatalf("incomplete replica decided %v", a)
	}
	if err := s.LoadChunk([]wire.SnapEntry{{Key: []byte("{t}partial"), Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	// "Crash" before FinishLoad.
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	ss = openStore(t, testOptions(t, dir, c))
	s = replica(t, ss, 1, 0)
	if st := s.State(); !st.Incomplete {
		t.Fatalf("reopened replica not incomplete: %+v", st)
	}
	wantErr(t, errOf(s.Get([]byte("{t}k1"))), ErrIncomplete)
	// The old copy is garbage and goes away.
	waitFor(t, "old incarnation collected", 10*time.Second, func() bool {
		return countPrefix(t, ss, incPrefix(prefixData, 1, 0, old.DataInc)) == 0 &&
			countPrefix(t, ss, incPrefix(prefixIndex, 1, 0, old.DataInc)) == 0 &&
			countPrefix(t, ss, binlogPrefix(1, 0, old.LogInc)) == 0 &&
			countPrefix(t, ss, []byte{prefixGarbage}) == 0
	})

	// Starting over discards the partial load too.
	fullSync(t, m, s)
	sameReplica(t, mStore(m), m, ss, s, c.Now())
	wantAbsent(t, s, "{t}partial")
	if err := s.LoadChunk(nil); err == nil {
		t.Fatalf("LoadChunk after FinishLoad succeeded")
	}
	if err := s.FinishLoad(1, 1, nil); err == nil {
		t.Fatalf("FinishLoad without BeginLoad succeeded")
	}
	if err := m.BeginLoad(); err == nil {
		t.Fatalf("BeginLoad on a master succeeded")
	}
}

func TestFinishLoadValidatesHistory(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	r := replica(t, s, 1, 0)
	if err := r.BeginLoad(); err != nil {
		t.Fatal(err)
	}
	bad := [][]wire.GenStart{
		nil,                                  // seq > 0 needs a history
		{{Gen: 2, Seq: 1}},                   // does not end with gen 3
		{{Gen: 3, Seq: 11}},                  // beyond seq
		{{Gen: 3, Seq: 1}, {Gen: 2, Seq: 5}}, // not increasing
	}
	for _, h := range bad {
		if err := r.FinishLoad(3, 10, h); err == nil {
			t.Errorf("FinishLoad(3, 10, %v) succeeded", h)
		}
	}
	if err := r.FinishLoad(3, 10, []wire.GenStart{{Gen: 1, Seq: 1}, {Gen: 3, Seq: 4}}); err != nil {
		t.Fatal(err)
	}
	if st := r.State(); st.Seq != 10 || st.FirstSeq != 11 || st.Gen != 3 {
		t.Fatalf("state %+v", st)
	}
}
