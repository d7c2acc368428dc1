package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/anishathalye/porcupine"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// cacheHits returns the store's read cache hits and entries.
func cacheHits(s *Store) (uint64, int) {
	h, _, n, _ := s.cache.stats()
	return h, n
}

// TestReadCacheBounded fills a small cache far past its size: it stays
// within its bytes, keeps answering what it holds, and refuses values
// larger than maxCachedValue.
func TestReadCacheBounded(t *testing.T) {
	c := newReadCache(256 << 10)
	always := func() bool { return true }
	v := make([]byte, 100)
	for i := range 20000 {
		c.fill(cacheKey(nil, 1, []byte("k"+strconv.Itoa(i))), cacheAnswer{value: v, found: true, seq: uint64(i)}, always)
	}
	_, _, n, bytes := c.stats()
	if bytes > 256<<10 || n == 0 {
		t.Fatalf("after 20000 fills of a 256 KiB cache: %d entries, %d bytes", n, bytes)
	}
	last := cacheKey(nil, 1, []byte("k19999"))
	if a, ok := c.get(last, nil); !ok || a.seq != 19999 || len(a.value) != 100 {
		t.Fatalf("the last fill: %+v, %v", a, ok)
	}
	c.remove(last)
	if _, ok := c.get(last, nil); ok {
		t.Fatal("a removed entry still answers")
	}
	// A removed entry refilled with a value of its size is rewritten in
	// place, and counts again.
	_, _, n0, _ := c.stats()
	c.fill(last, cacheAnswer{value: make([]byte, 100), found: true, seq: 20000}, always)
	if a, ok := c.get(last, nil); !ok || a.seq != 20000 {
		t.Fatalf("the refilled entry: %+v, %v", a, ok)
	}
	if _, _, n1, _ := c.stats(); n1 != n0+1 {
		t.Fatalf("entries %d after refilling a removed one, %d before", n1, n0)
	}
	// Refilling a key replaces its entry.
	k := cacheKey(nil, 2, []byte("x"))
	c.fill(k, cacheAnswer{value: []byte("a"), found: true}, always)
	c.fill(k, cacheAnswer{found: false, seq: 7}, always)
	if a, ok := c.get(k, nil); !ok || a.found || a.seq != 7 {
		t.Fatalf("refilled entry: %+v, %v", a, ok)
	}
	// A refused fill and an oversized value leave nothing.
	c.fill(cacheKey(nil, 2, []byte("no")), cacheAnswer{found: true}, func() bool { return false })
	c.fill(cacheKey(nil, 2, []byte("big")), cacheAnswer{value: make([]byte, maxCachedValue+1), found: true}, always)
	for _, k := range []string{"no", "big"} {
		if _, ok := c.get(cacheKey(nil, 2, []byte(k)), nil); ok {
			t.Errorf("%s was cached", k)
		}
	}
	// A hit's value is a copy.
	c.fill(k, cacheAnswer{value: []byte("abc"), found: true}, always)
	a, _ := c.get(k, nil)
	a.value[0] = 'X'
	if b, _ := c.get(k, nil); string(b.value) != "abc" {
		t.Fatalf("changing a hit's value changed the entry: %q", b.value)
	}
	if newReadCache(0) != nil || newReadCache(-1) != nil {
		t.Fatal("a cache of no size exists")
	}
}

// TestValueArena checks that the values an arena hands out are each
// their own: writing or appending to one leaves the others as they were,
// an empty value is not nil, and a large one gets its own allocation.
func TestValueArena(t *testing.T) {
	var a valueArena
	var vals [][]byte
	for i := range 40 { // several chunks' worth
		v := a.alloc(37)
		for j := range v {
			v[j] = byte(i)
		}
		vals = append(vals, v)
	}
	for i, v := range vals {
		if len(v) != 37 || cap(v) != 37 {
			t.Fatalf("value %d: len %d, cap %d", i, len(v), cap(v))
		}
		_ = append(v, 0xff) // must copy, not write into the next value
	}
	for i, v := range vals {
		for _, b := range v {
			if b != byte(i) {
				t.Fatalf("value %d was overwritten: %v", i, v)
			}
		}
	}
	if v := a.alloc(0); v == nil {
		t.Error("an empty value is nil")
	}
	if v := a.alloc(arenaMaxValue + 1); len(v) != arenaMaxValue+1 || cap(v) != arenaMaxValue+1 {
		t.Errorf("a large value: len %d, cap %d", len(v), cap(v))
	}
	// A chunk is sized for the values still to come.
	b := valueArena{left: 3}
	x, y, z := b.alloc(10), b.alloc(10), b.alloc(10)
	if cap(b.buf) != 30 || &b.buf[0] != &x[0] || &b.buf[20] != &z[0] || len(y) != 10 {
		t.Errorf("three values of 10 bytes took a chunk of %d bytes", cap(b.buf))
	}
	var none *valueArena
	if v := none.alloc(5); len(v) != 5 {
		t.Errorf("a nil arena's value: len %d", len(v))
	}
}

// TestReadCacheFollowsWrites reads keys through the cache across every
// kind of change: sets, deletes, expiry, flush, a slave's Apply, a full
// sync and a reopened replica. Every read answers what Badger holds.
func TestReadCacheFollowsWrites(t *testing.T) {
	c := newClock()
	s, m := newMaster(t, c)
	write(t, m, set("a", "1"), setTTL("t", "x", 600_000))
	wantValue(t, m, "a", "1")
	wantAbsent(t, m, "nope")
	h0, _ := cacheHits(s)
	wantValue(t, m, "a", "1")
	wantAbsent(t, m, "nope")
	if h, _ := cacheHits(s); h != h0+2 {
		t.Fatalf("second reads of a and nope: %d hits, want %d", h-h0, 2)
	}
	write(t, m, set("a", "2"), set("nope", "now"))
	wantValue(t, m, "a", "2")
	wantValue(t, m, "nope", "now")
	write(t, m, del("a"))
	wantAbsent(t, m, "a")
	write(t, m, incr("n", 5))
	wantValue(t, m, "n", "5")
	write(t, m, incr("n", 5))
	wantValue(t, m, "n", "10")
	// Expiry: a cached value stops answering when its time is up.
	wantValue(t, m, "t", "x")
	wantValue(t, m, "t", "x")
	c.Advance(600_000) // Badger also hides it by the wall clock: the TTL must outlast the test
	wantAbsent(t, m, "t")
	// A flush moves the replica to a new incarnation.
	wantValue(t, m, "n", "10")
	write(t, m, wire.Op{Type: wire.OpFlush})
	wantAbsent(t, m, "n")
	wantAbsent(t, m, "nope")
	write(t, m, set("n", "after"))
	wantValue(t, m, "n", "after")

	// A slave: Apply and a full sync keep its reads exact.
	ss := openStore(t, testOptions(t, t.TempDir(), c))
	sl := replica(t, ss, 1, 0)
	catchUp(t, m, sl, 1<<20)
	wantValue(t, sl, "n", "after")
	wantAbsent(t, sl, "a")
	write(t, m, set("n", "later"), set("a", "back"))
	catchUp(t, m, sl, 1<<20)
	wantValue(t, sl, "n", "later")
	wantValue(t, sl, "a", "back")
	write(t, m, set("n", "synced"), del("a"))
	fullSync(t, m, sl)
	wantValue(t, sl, "n", "synced")
	wantAbsent(t, sl, "a")
	// A reopened replica reads afresh.
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	sl = replica(t, ss, 1, 0)
	wantValue(t, sl, "n", "synced")

	// GetMany answers from the cache and from Badger alike.
	write(t, m, set("g1", "v1"), set("g2", "v2"))
	wantValue(t, m, "g1", "v1")
	keys := [][]byte{[]byte("g1"), []byte("g2"), []byte("g3")}
	want := []string{"v1", "v2", ""}
	for round := range 2 {
		n := 0
		s.GetMany([]*Replica{m, m, m}, keys, func(i int, v []byte, _ int64, found bool, _ uint64, err error) bool {
			n++
			if err != nil || string(v) != want[i] || found != (want[i] != "") {
				t.Errorf("round %d: GetMany key %s: %q, %v, %v", round, keys[i], v, found, err)
			}
			return true
		})
		if n != 3 {
			t.Fatalf("round %d: %d answers", round, n)
		}
	}
	// The values of one GetMany are the caller's, each on its own: the
	// second round answered from the cache, values sharing allocations.
	var got [][]byte
	s.GetMany([]*Replica{m, m}, keys[:2], func(_ int, v []byte, _ int64, _ bool, _ uint64, _ error) bool {
		got = append(got, v)
		return true
	})
	got[0] = append(got[0], "-appended"...)
	got[1][0] = 'X'
	if string(got[0]) != "v1-appended" || string(got[1]) != "X2" {
		t.Fatalf("changed GetMany values: %q, %q", got[0], got[1])
	}
	wantValue(t, m, "g1", "v1")
	wantValue(t, m, "g2", "v2")
}

// TestReadCacheStaleFill holds a read between its Badger read and its fill
// while a write to the same key commits: the fill must be refused, or the
// cache would answer the old value after the write was acknowledged.
func TestReadCacheStaleFill(t *testing.T) {
	for _, many := range []bool{false, true} {
		t.Run(fmt.Sprintf("GetMany=%v", many), func(t *testing.T) {
			s, m := newMaster(t, newClock())
			write(t, m, set("k", "old"))
			// The write left its answer in the cache: the read must go to
			// Badger for this test.
			forgetCached(m, "k")
			read, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			m.testHookFill = func() {
				once.Do(func() { close(read); <-release })
			}
			got := make(chan string, 1)
			go func() {
				if many {
					s.GetMany([]*Replica{m}, [][]byte{[]byte("k")}, func(_ int, v []byte, _ int64, _ bool, _ uint64, _ error) bool {
						got <- string(v)
						return true
					})
					return
				}
				v, _, _, _ := m.Get([]byte("k"))
				got <- string(v)
			}()
			<-read
			write(t, m, set("k", "new"))
			close(release)
			if v := <-got; v != "old" {
				t.Fatalf("the held read answered %q, want the value of its snapshot", v)
			}
			wantValue(t, m, "k", "new")
			wantValue(t, m, "k", "new")
		})
	}
}

// TestReadCacheCommitWindow reads while a commit is between Badger's
// commit and the replica's state: reads see the new value, nothing is
// cached meanwhile, and the value stays right afterwards.
func TestReadCacheCommitWindow(t *testing.T) {
	s, m := newMaster(t, newClock())
	write(t, m, set("k", "old"))
	wantValue(t, m, "k", "old") // cached
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.testHookCommitted = func() { once.Do(func() { close(in); <-out }) }
	done := make(chan error, 1)
	go func() {
		_, err := m.Write(context.Background(), []wire.Op{set("k", "new")})
		done <- err
	}()
	<-in
	_, n0 := cacheHits(s)
	for range 3 {
		wantValue(t, m, "k", "new")
	}
	if _, n := cacheHits(s); n > n0 {
		t.Fatalf("%d entries were cached during a commit", n-n0)
	}
	close(out)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.testHookCommitted = nil
	wantValue(t, m, "k", "new")
	wantValue(t, m, "k", "new")
}

// TestReadCacheLinearizable races readers against writers on a few keys
// of one replica, through Get and GetMany, and checks the history with
// porcupine: a cached answer must be one a read of Badger could give at
// some moment of the call.
func TestReadCacheLinearizable(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	s, m := newMaster(t, newClock())
	const keys, clients, opsEach = 3, 8, 400
	var (
		mu   sync.Mutex
		hist []porcupine.Operation
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			for range opsEach {
				k := "k" + strconv.Itoa(rng.IntN(keys))
				in := cacheLinInput{key: k}
				call := now()
				var out int64
				switch rng.IntN(4) {
				case 0:
					in.write, in.value = true, next.Add(1)
					if _, err := m.Write(context.Background(), []wire.Op{set(k, strconv.FormatInt(in.value, 10))}); err != nil {
						t.Error(err)
						return
					}
				case 1:
					s.GetMany([]*Replica{m, m}, [][]byte{[]byte(k), []byte(k)}, func(i int, v []byte, _ int64, _ bool, _ uint64, err error) bool {
						if err != nil {
							t.Error(err)
						}
						if i == 0 {
							out, _ = strconv.ParseInt(string(v), 10, 64)
						}
						return true
					})
				default:
					v, _, _, err := m.Get([]byte(k))
					if err != nil {
						t.Error(err)
						return
					}
					out, _ = strconv.ParseInt(string(v), 10, 64)
				}
				ret := now()
				mu.Lock()
				hist = append(hist, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if h, _ := cacheHits(s); h == 0 {
		t.Fatal("no read was answered by the cache")
	}
	if res := porcupine.CheckOperations(cacheLinModel, hist); !res {
		t.Fatalf("seed %d: the history of %d operations is not linearizable", seed, len(hist))
	}
}

type cacheLinInput struct {
	key   string
	write bool
	value int64
}

// cacheLinModel is a register per key holding the last value written (0
// for none).
var cacheLinModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(cacheLinInput).key
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(by))
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(cacheLinInput)
		if in.write {
			return true, in.value
		}
		return output.(int64) == state.(int64), state
	},
	Equal: func(a, b any) bool { return a == b },
}

// forgetCached drops key's entry from m's read cache, so that its next
// read goes to Badger.
func forgetCached(r *Replica, key string) {
	var buf [96]byte
	r.mu.Lock()
	tag := r.cacheTag
	r.mu.Unlock()
	r.s.cache.remove(cacheKey(buf[:0], tag, []byte(key)))
}

// TestReadCacheWriteThrough: a commit leaves its keys' answers in the
// cache, so reads and increments of keys just written hit it; a group
// reading a key an earlier group of its batch wrote sees that write, not
// the cache's answer from before the batch; a clear in the batch leaves
// the cache alone.
func TestReadCacheWriteThrough(t *testing.T) {
	s, m := newMaster(t, newClock())
	write(t, m, set("k", "1"), set("gone", "x"))
	write(t, m, del("gone"))
	h0, _ := cacheHits(s)
	wantValue(t, m, "k", "1")
	if _, _, found, _ := m.Get([]byte("gone")); found {
		t.Fatal("deleted key found")
	}
	if h, _ := cacheHits(s); h != h0+2 {
		t.Fatalf("%d cache hits reading two keys just written, want 2", h-h0)
	}
	for i := 2; i <= 50; i++ {
		if res := write(t, m, incr("k", 1)); res[0].Int != int64(i) {
			t.Fatalf("increment %d answered %d", i, res[0].Int)
		}
	}
	wantValue(t, m, "k", "50")

	// One batch of three groups: the second reads what the first wrote,
	// the third what the second wrote.
	batch := func(groups ...[]wire.Op) []outcome {
		t.Helper()
		reqs := make([]*request, len(groups))
		for i, ops := range groups {
			reqs[i] = &request{ops: ops}
		}
		m.writeMu.Lock()
		defer m.writeMu.Unlock()
		gen, _ := m.IsMaster()
		outs, err := m.commitGroups(reqs, gen)
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}
	outs := batch([]wire.Op{set("k", "5")}, []wire.Op{incr("k", 1)}, []wire.Op{incr("k", 10)})
	if outs[1].res[0].Int != 6 || outs[2].res[0].Int != 16 {
		t.Fatalf("increments in the batch answered %d and %d, want 6 and 16", outs[1].res[0].Int, outs[2].res[0].Int)
	}
	wantValue(t, m, "k", "16")
	outs = batch([]wire.Op{del("k")}, []wire.Op{incr("k", 3)})
	if outs[1].res[0].Int != 3 {
		t.Fatalf("increment after a delete in the batch answered %d, want 3", outs[1].res[0].Int)
	}
	wantValue(t, m, "k", "3")
	// A batch with more writes than cacheable scans: it indexes them,
	// and keeps indexing the later groups' writes.
	for k := range 20 {
		write(t, m, set(fmt.Sprint("m", k), "1")) // cached
	}
	write(t, m, set("late", "1"))
	var groups [][]wire.Op
	for k := range 20 {
		groups = append(groups, []wire.Op{set(fmt.Sprint("m", k), "100")})
	}
	groups = append(groups, []wire.Op{incr("m3", 1)}, []wire.Op{set("late", "7")}, []wire.Op{incr("late", 1)}, []wire.Op{incr("m3", 1)})
	outs = batch(groups...)
	if a, b, c := outs[20].res[0].Int, outs[22].res[0].Int, outs[23].res[0].Int; a != 101 || b != 8 || c != 102 {
		t.Fatalf("increments in a long batch answered %d, %d, %d, want 101, 8, 102", a, b, c)
	}
	wantValue(t, m, "m3", "102")
	// After a flush in the batch every key is gone, cached or not.
	outs = batch([]wire.Op{{Type: wire.OpFlush}}, []wire.Op{incr("k", 1)})
	if outs[1].res[0].Int != 1 {
		t.Fatalf("increment after a flush in the batch answered %d, want 1", outs[1].res[0].Int)
	}
	wantValue(t, m, "k", "1")
}

// TestReadCacheRingAgainstAModel drives one small cache with random fills,
// removes and gets of keys and values of varied sizes, so that entries wrap
// around the rings' ends and the oldest are dropped all the time: a get
// either misses or answers exactly the key's last fill, never a removed or
// another key's answer.
func TestReadCacheRingAgainstAModel(t *testing.T) {
	c := newReadCache(64 * 4 << 10) // the smallest rings
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	always := func() bool { return true }
	type ans struct {
		v     string
		found bool
		seq   uint64
	}
	model := map[string]ans{}
	hits := 0
	for i := range 50000 {
		k := fmt.Sprintf("key-%d-%s", rng.IntN(300), strings.Repeat("x", rng.IntN(40)))
		ck := cacheKey(nil, 1, []byte(k))
		switch op := rng.IntN(10); {
		case op < 5:
			size := rng.IntN(600)
			if rng.IntN(2) == 0 {
				size = 100 * rng.IntN(3) // often the size of the entry it replaces: rewritten in place
			}
			a := ans{v: strings.Repeat(string(rune('a'+rng.IntN(26))), size), found: rng.IntN(5) > 0, seq: uint64(i)}
			if !a.found {
				a.v = ""
			}
			c.fill(ck, cacheAnswer{value: []byte(a.v), found: a.found, seq: a.seq}, always)
			model[k] = a
		case op < 6:
			c.remove(ck)
			delete(model, k)
		default:
			got, ok := c.get(ck, nil)
			if !ok {
				continue
			}
			want, in := model[k]
			if !in || got.found != want.found || got.seq != want.seq || string(got.value) != want.v {
				t.Fatalf("op %d: %s answered %+v (value %d bytes), want %+v (in model: %v)", i, k, got, len(got.value), want, in)
			}
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("no get hit")
	}
	_, _, n, b := c.stats()
	if b > 64*4<<10 || n == 0 || n > len(model) {
		t.Fatalf("%d entries (the model has %d), %d bytes in a cache of %d", n, len(model), b, 64*4<<10)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		removed := 0
		for _, p := range sh.index {
			if sh.ring[(p+32)%uint64(len(sh.ring))] == entryRemoved {
				removed++
			}
		}
		if removed != sh.removed {
			t.Fatalf("shard %d counts %d removed entries, its index holds %d", i, sh.removed, removed)
		}
	}
}

// TestCacheShardsApart checks that each shard, its lock and its counters,
// fills whole cache lines, so shards do not share one.
func TestCacheShardsApart(t *testing.T) {
	if n := unsafe.Sizeof(cacheShard{}); n%64 != 0 {
		t.Fatalf("cacheShard is %d bytes, not a multiple of a 64-byte cache line", n)
	}
}

// TestReadCacheClosedOrIncomplete checks that a cached answer is not given
// once its replica is closed or marked incomplete (the read cache is
// consulted without the replica's lock).
func TestReadCacheClosedOrIncomplete(t *testing.T) {
	c := newClock()
	_, m := newMaster(t, c)
	write(t, m, set("{t}k", "v"))
	wantValue(t, m, "{t}k", "v") // a cache hit: the write wrote it through
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, errOf(m.Get([]byte("{t}k"))), ErrClosed)

	_, m = newMaster(t, c)
	write(t, m, set("{t}k", "v"))
	s := replica(t, openStore(t, testOptions(t, t.TempDir(), c)), 1, 0)
	catchUp(t, m, s, 1<<20)
	wantValue(t, s, "{t}k", "v")
	wantValue(t, s, "{t}k", "v") // now from the cache
	if err := s.BeginLoad(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, errOf(s.Get([]byte("{t}k"))), ErrIncomplete)
}
