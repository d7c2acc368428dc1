package partition

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/poll"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// clock is a settable clock in Unix ms. It starts at the wall clock so that
// Badger, which hides expired keys by the wall clock, agrees with it.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

func (c *clock) Now() int64          { return c.ms.Load() }
func (c *clock) Advance(d int64)     { c.ms.Add(d) }
func (c *clock) Set(ms int64)        { c.ms.Store(ms) }
func (c *clock) fn() func() int64    { return c.Now }
func (c *clock) after(d int64) int64 { return c.Now() + d }

// testWriter sends the store's log to the test log while the test runs.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func testOptions(t testing.TB, dir string, c *clock) Options {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	o := Options{Dir: dir, Small: true, Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if c != nil {
		o.Now = c.fn()
	}
	return o
}

func openStore(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newMaster opens a fresh store with one promoted replica 1/0.
func newMaster(t testing.TB, c *clock) (*Store, *Replica) {
	t.Helper()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	r := replica(t, s, 1, 0)
	if err := r.Promote(1); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	return s, r
}

func replica(t testing.TB, s *Store, table, part uint32) *Replica {
	t.Helper()
	r, err := s.Replica(table, part)
	if err != nil {
		t.Fatalf("Replica(%d, %d): %v", table, part, err)
	}
	return r
}

func write(t testing.TB, r *Replica, ops ...wire.Op) []wire.OpResult {
	t.Helper()
	res, err := r.Write(context.Background(), ops)
	if err != nil {
		t.Fatalf("Write(%v): %v", describe(ops), err)
	}
	return res
}

func describe(ops []wire.Op) string {
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v %q", op.Type, op.Key)
	}
	return b.String()
}

func set(k, v string) wire.Op {
	return wire.Op{Type: wire.OpSet, Key: []byte(k), Value: []byte(v)}
}

func setTTL(k, v string, ttl int64) wire.Op {
	return wire.Op{Type: wire.OpSet, Key: []byte(k), Value: []byte(v), TTL: ttl}
}

func del(k string) wire.Op { return wire.Op{Type: wire.OpDelete, Key: []byte(k)} }

func incr(k string, d int64) wire.Op { return wire.Op{Type: wire.OpIncr, Key: []byte(k), Delta: d} }

func get(t testing.TB, r *Replica, k string) (string, int64, bool) {
	t.Helper()
	v, exp, found, err := r.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return string(v), exp, found
}

func wantValue(t testing.TB, r *Replica, k, want string) {
	t.Helper()
	v, _, found := get(t, r, k)
	if !found || v != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", k, v, found, want)
	}
}

func wantAbsent(t testing.TB, r *Replica, k string) {
	t.Helper()
	if v, _, found := get(t, r, k); found {
		t.Fatalf("Get(%q) = %q; want absent", k, v)
	}
}

// entry is a key's stored value and absolute expiry.
type entry struct {
	Value    string
	ExpireAt int64
}

// model replays binlog effects.
type model map[string]entry

func (m model) apply(effects []binlog.Effect) {
	for _, e := range effects {
		switch e.Kind {
		case binlog.EffectSet:
			m[string(e.Key)] = entry{string(e.Value), e.ExpireAt}
		case binlog.EffectDelete:
			delete(m, string(e.Key))
		case binlog.EffectClear:
			clear(m)
		}
	}
}

// live drops the entries expired at now.
func (m model) live(now int64) model {
	out := model{}
	for k, e := range m {
		if live(e.ExpireAt, now) {
			out[k] = e
		}
	}
	return out
}

// dump reads a replica's current data incarnation straight from Badger,
// keeping the entries live at now, and checks the hashtag index against it.
func dump(t testing.TB, s *Store, id ReplicaID, st State, now int64) model {
	t.Helper()
	m := model{}
	index := map[string]bool{}
	dp := incPrefix(prefixData, id.Table, id.Partition, st.DataInc)
	ip := incPrefix(prefixIndex, id.Table, id.Partition, st.DataInc)
	err := s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: dp, PrefetchValues: true, PrefetchSize: 100})
		for it.Seek(dp); it.ValidForPrefix(dp); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			exp, val, err := decodeValue(v)
			if err != nil {
				it.Close()
				return err
			}
			if want := badgerExpiry(exp); it.Item().ExpiresAt() != want {
				it.Close()
				return fmt.Errorf("key %q: badger ExpiresAt %d, want %d", it.Item().Key(), it.Item().ExpiresAt(), want)
			}
			if live(exp, now) {
				m[string(it.Item().Key()[len(dp):])] = entry{string(val), exp}
			}
		}
		it.Close()
		return iterKeys(txn, ip, nil, func(k []byte) (bool, error) {
			rest := k[len(ip):]
			n, tag, uk, ok := splitIndex(rest)
			if !ok {
				return false, fmt.Errorf("malformed index key %x", k)
			}
			if got := placement.Hashtag(uk); !bytes.Equal(got, tag) || n != len(tag) {
				return false, fmt.Errorf("index key %q under tag %q", uk, tag)
			}
			index[string(uk)] = true
			return true, nil
		})
	})
	if err != nil {
		t.Fatalf("dump %v: %v", id, err)
	}
	for k := range m {
		if placement.Hashtag([]byte(k)) != nil && !index[k] {
			t.Fatalf("dump %v: key %q has no index entry", id, k)
		}
	}
	for k := range index {
		if _, ok := m[k]; !ok {
			// The index entry of an expired key may linger like the key.
			if _, _, found, err := s.rawGet(dp, []byte(k)); err != nil || !found {
				t.Fatalf("dump %v: index entry %q without data (%v)", id, k, err)
			}
		}
	}
	return m
}

func splitIndex(rest []byte) (n int, tag, uk []byte, ok bool) {
	l, w := binary.Uvarint(rest)
	if w <= 0 || uint64(len(rest)-w) < l {
		return 0, nil, nil, false
	}
	return int(l), rest[w : w+int(l)], rest[w+int(l):], true
}

// rawGet reads a data key regardless of our clock.
func (s *Store) rawGet(dp, k []byte) ([]byte, int64, bool, error) {
	var v []byte
	var exp int64
	var found bool
	err := s.DB().View(func(txn *badger.Txn) error {
		var err error
		v, exp, found, err = getLive(txn, dp, k, 0)
		return err
	})
	return v, exp, found, err
}

// readLog returns every record of the replica's current log incarnation,
// straight from Badger, and checks they are exactly FirstSeq..Seq.
func readLog(t testing.TB, s *Store, id ReplicaID, st State) []binlog.Record {
	t.Helper()
	var recs []binlog.Record
	lp := binlog.LogPrefix(id.Table, id.Partition, st.LogInc)
	err := s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: lp, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(lp); it.ValidForPrefix(lp); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := binlog.Decode(v)
			if err != nil {
				return err
			}
			if seq, _ := binlog.SeqOfKey(it.Item().Key()); seq != rec.Seq {
				return fmt.Errorf("record %d stored under seq %d", rec.Seq, seq)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("readLog %v: %v", id, err)
	}
	for i, rec := range recs {
		if want := st.FirstSeq + uint64(i); rec.Seq != want {
			t.Fatalf("readLog %v: record %d has seq %d, want %d (state %+v)", id, i, rec.Seq, want, st)
		}
		gen, ok := st.GenAt(rec.Seq)
		if !ok || gen != rec.Gen {
			t.Fatalf("readLog %v: record %d has gen %d, history says %d %v", id, rec.Seq, rec.Gen, gen, ok)
		}
	}
	if n := uint64(len(recs)); st.FirstSeq+n != st.Seq+1 {
		t.Fatalf("readLog %v: %d records from %d, state seq %d", id, n, st.FirstSeq, st.Seq)
	}
	if len(recs) > 0 && recs[len(recs)-1].Gen != st.Gen {
		t.Fatalf("readLog %v: last record gen %d, state gen %d", id, recs[len(recs)-1].Gen, st.Gen)
	}
	return recs
}

// replay applies records to a model.
func replay(recs []binlog.Record) model {
	m := model{}
	for _, r := range recs {
		m.apply(r.Effects)
	}
	return m
}

func equalModels(t testing.TB, what string, got, want model) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	keys := slices.Sorted(maps.Keys(got))
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if g != w || gok != wok {
			t.Errorf("%s: key %q: got %+v (%v), want %+v (%v)", what, k, g, gok, w, wok)
			if n++; n > 10 {
				break
			}
		}
	}
	t.Fatalf("%s: contents differ (%d vs %d keys)", what, len(got), len(want))
}

// waitFor polls cond (poll.Until) until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if err := poll.Until(timeout, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	}); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// countPrefix counts the keys under prefix, straight from Badger.
func countPrefix(t testing.TB, s *Store, prefix []byte) int {
	t.Helper()
	n := 0
	err := s.DB().View(func(txn *badger.Txn) error {
		return iterKeys(txn, prefix, nil, func([]byte) (bool, error) { n++; return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t testing.TB, err error, code wire.Code) {
	t.Helper()
	if got := wire.CodeOf(err); got != code {
		t.Fatalf("error %v: code %v, want %v", err, got, code)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func decode(t testing.TB, b []byte) binlog.Record {
	t.Helper()
	rec, err := binlog.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// errOf returns the error of a Get.
func errOf(_ []byte, _ int64, _ bool, err error) error { return err }

// errOf3 returns the error of a List.
func errOf3(_, _ [][]byte, _ bool, err error) error { return err }

func binlogPrefix(table, part, inc uint32) []byte { return binlog.LogPrefix(table, part, inc) }

func mStore(r *Replica) *Store { return r.s }
