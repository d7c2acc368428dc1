package partition

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestGarbageCollectionAfterFlush(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	// More keys than one collector batch.
	for g := range 6 {
		ops := make([]wire.Op, 400)
		for i := range ops {
			ops[i] = set(fmt.Sprintf("{t}%d-%d", g, i), "v")
		}
		write(t, r, ops...)
	}
	old := r.State().DataInc
	dp, ip := incPrefix(prefixData, 1, 0, old), incPrefix(prefixIndex, 1, 0, old)
	if n := countPrefix(t, s, dp); n != 2400 {
		t.Fatalf("%d data keys, want 2400", n)
	}
	write(t, r, wire.Op{Type: wire.OpFlush}, set("{t}new", "v"))
	waitFor(t, "old incarnation collected", 10*time.Second, func() bool {
		return countPrefix(t, s, dp) == 0 && countPrefix(t, s, ip) == 0 && countPrefix(t, s, []byte{prefixGarbage}) == 0
	})
	wantValue(t, r, "{t}new", "v")
	if keys, _, _, _ := r.List([]byte("t"), nil, 0, false); len(keys) != 1 {
		t.Fatalf("List after flush: %q", keys)
	}
}

func TestDropAndRecreate(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	s := openStore(t, testOptions(t, dir, c))
	r := replica(t, s, 3, 1)
	other := replica(t, s, 3, 2)
	for _, x := range []*Replica{r, other} {
		if err := x.Promote(1); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			write(t, x, set(fmt.Sprintf("{t}%d", i), "v"))
		}
	}
	write(t, r, wire.Op{Type: wire.OpFlush}, set("{t}x", "v")) // two data incarnations
	st := r.State()
	ids, err := s.Replicas()
	if err != nil || !reflect.DeepEqual(ids, []ReplicaID{{3, 1}, {3, 2}}) {
		t.Fatalf("Replicas = %v %v", ids, err)
	}
	if err := s.Drop(3, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(3, 1); err != nil {
		t.Fatalf("second Drop: %v", err)
	}
	if _, _, _, err := r.Get([]byte("{t}x")); err != ErrClosed {
		t.Fatalf("Get on dropped replica: %v", err)
	}
	if ids, _ := s.Replicas(); !reflect.DeepEqual(ids, []ReplicaID{{3, 2}}) {
		t.Fatalf("Replicas after Drop = %v", ids)
	}
	part := []byte{prefixData, 0, 0, 0, 3, 0, 0, 0, 1}
	waitFor(t, "dropped replica collected", 10*time.Second, func() bool {
		return countPrefix(t, s, part) == 0 &&
			countPrefix(t, s, []byte{prefixIndex, 0, 0, 0, 3, 0, 0, 0, 1}) == 0 &&
			countPrefix(t, s, binlogPrefix(3, 1, st.LogInc)) == 0 &&
			countPrefix(t, s, []byte{prefixGarbage}) == 0
	})
	// The neighbour is untouched.
	if n := countPrefix(t, s, []byte{prefixData, 0, 0, 0, 3, 0, 0, 0, 2}); n != 100 {
		t.Fatalf("neighbour has %d keys", n)
	}
	// Re-created, the replica starts empty.
	r2 := replica(t, s, 3, 1)
	if st2 := r2.State(); st2.Seq != 0 || st2.Gen != 0 {
		t.Fatalf("re-created state %+v", st2)
	}
	wantAbsent(t, r2, "{t}x")
}

// TestRecreateAvoidsGarbage checks that a replica created while garbage
// markers of a dropped predecessor remain picks incarnations above them.
func TestRecreateAvoidsGarbage(t *testing.T) {
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	// Holding s.mu keeps the collector from finishing a marker (it checks
	// open replicas under s.mu before deleting anything).
	s.mu.Lock()
	err := s.DB().Update(func(txn *badger.Txn) error {
		if err := txn.Set(garbageKey(1, 0, garbageData, 7), nil); err != nil {
			return err
		}
		return txn.Set(garbageKey(1, 0, garbageLog, 4), nil)
	})
	if err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	if err := s.acquire(); err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	r, _, err := s.openReplica(ReplicaID{1, 0})
	s.release()
	if err == nil {
		s.replicas[r.id] = r
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if st := r.State(); st.DataInc != 8 || st.LogInc != 8 {
		t.Fatalf("new replica incarnations %d/%d, want 8/8", st.DataInc, st.LogInc)
	}
	if err := r.Promote(1); err != nil {
		t.Fatal(err)
	}
	write(t, r, set("b", "2"))
	s.wakeGC()
	waitFor(t, "markers collected", 10*time.Second, func() bool {
		return countPrefix(t, s, []byte{prefixGarbage}) == 0
	})
	wantValue(t, r, "b", "2")
}

func TestMeta(t *testing.T) {
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	if v, err := s.GetMeta("id"); err != nil || v != nil {
		t.Fatalf("GetMeta of missing = %q %v", v, err)
	}
	if err := s.PutMeta("id", []byte("node-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetMeta("id"); string(v) != "node-1" {
		t.Fatalf("GetMeta = %q", v)
	}
	if v, _ := s.GetMeta("empty"); v == nil || len(v) != 0 {
		t.Fatalf("GetMeta of empty value = %v", v)
	}
	if err := s.DeleteMeta("id"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetMeta("id"); v != nil {
		t.Fatalf("GetMeta after delete = %q", v)
	}
	if err := s.PutMeta("", nil); err == nil {
		t.Fatalf("PutMeta with empty name succeeded")
	}
	if ids, err := s.Replicas(); err != nil || len(ids) != 0 {
		t.Fatalf("meta keys listed as replicas: %v %v", ids, err)
	}
	s.Close()
	if _, err := s.GetMeta("id"); err != ErrClosed {
		t.Fatalf("GetMeta after Close: %v", err)
	}
	if _, err := s.Replica(1, 1); err != ErrClosed {
		t.Fatalf("Replica after Close: %v", err)
	}
}

func TestDurabilityModes(t *testing.T) {
	for _, d := range []Durability{DurabilityAlways, DurabilityInterval, DurabilityNone} {
		t.Run(d.String(), func(t *testing.T) {
			o := testOptions(t, t.TempDir(), nil)
			o.Durability = d
			o.SyncInterval = 5 * time.Millisecond
			s := openStore(t, o)
			r := replica(t, s, 1, 0)
			if err := r.Promote(1); err != nil {
				t.Fatal(err)
			}
			write(t, r, set("a", "1"))
			wantValue(t, r, "a", "1")
		})
	}
}
