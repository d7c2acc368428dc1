package partition

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/zeppelin-kv/zeppelin/binlog"
)

// The read cache keeps the answers of recent point reads and writes
// (value, expiry, or "not found") in memory, so that a hot key's read, or
// the read half of an increment, does not search Badger's memtables and
// levels. It holds what a read found in a snapshot and what a commit left.
//
// Staying exact is the whole point, and it rests on one protocol between
// the appender (the one place records commit) and the readers that fill:
//
//   - A commit first counts itself in the replica's cacheWriting, then
//     removes every key its records set or delete, then commits in Badger
//     and installs the state, then writes the keys' new answers through
//     (it is the replica's only writer, and no reader fills while it is
//     counted), then bumps cacheGen and only then uncounts itself.
//   - A reader loads cacheGen before it opens its snapshot and, after
//     reading, fills only if, under the entry's shard lock, no commit is
//     counted and cacheGen is unchanged.
//
// So a reader whose snapshot predates a commit's Badger commit cannot fill
// once that commit has begun: it either filled before the commit removed
// its keys (and the removal takes the entry out) or sees the commit
// counted, or sees the bumped generation. No entry ever holds a value older
// than the latest commit that became visible, and a read that hits is
// ordered exactly like one that had read Badger at that moment.
//
// Entries are keyed by the replica's cacheTag (a fresh one for every
// Replica value and whenever the replica's data incarnation or
// completeness changes) and the user key, so a flush, a full sync or a
// dropped and re-created replica leaves its old entries unreachable; they
// age out. Eviction is CLOCK per shard, bounded by bytes.

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 64

// cacheEntryOverhead approximates what an entry costs beyond its key and
// value: the slot, the map entry and the allocation's header.
const cacheEntryOverhead = 120

// maxCachedValue is the largest value the cache keeps; larger reads go to
// Badger every time.
const maxCachedValue = 16 << 10

// readCache is a store's cache of point-read answers.
type readCache struct {
	seed   maphash.Seed
	tags   atomic.Uint64 // the last cache tag handed out
	hits   atomic.Uint64
	misses atomic.Uint64
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[string]int32 // key → index in slots
	slots []cacheSlot
	free  []int32 // unused indexes in slots
	hand  int     // the CLOCK hand
	bytes int64
	limit int64
	_     [40]byte // keep shards' locks on separate cache lines
}

type cacheSlot struct {
	key   string
	value []byte
	exp   int64  // absolute expiry, Unix ms; 0 = none
	seq   uint64 // the replica's seq as of the snapshot the answer came from
	found bool
	ref   bool // read since the hand last passed
	used  bool
}

// cacheAnswer is one cached read.
type cacheAnswer struct {
	value []byte
	exp   int64
	seq   uint64
	found bool
}

// newReadCache returns a cache of about size bytes, or nil when size is
// not positive.
func newReadCache(size int64) *readCache {
	if size <= 0 {
		return nil
	}
	c := &readCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]int32)
		c.shards[i].limit = max(size/cacheShards, 4<<10)
	}
	return c
}

// newTag returns a tag no replica has used; 0 without a cache.
func (c *readCache) newTag() uint64 {
	if c == nil {
		return 0
	}
	return c.tags.Add(1)
}

// cacheKey appends tag ‖ key to b.
func cacheKey(b []byte, tag uint64, key []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, tag)
	return append(b, key...)
}

func (c *readCache) shard(k []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, k)%cacheShards]
}

// get returns the answer cached under k; its value is a copy.
func (c *readCache) get(k []byte) (cacheAnswer, bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	i, ok := sh.m[string(k)]
	if !ok {
		sh.mu.Unlock()
		c.misses.Add(1)
		return cacheAnswer{}, false
	}
	s := &sh.slots[i]
	s.ref = true
	a := cacheAnswer{exp: s.exp, seq: s.seq, found: s.found}
	if s.found {
		a.value = append(make([]byte, 0, len(s.value)), s.value...)
	}
	sh.mu.Unlock()
	c.hits.Add(1)
	return a, true
}

// remove drops k.
func (c *readCache) remove(k []byte) {
	sh := c.shard(k)
	sh.mu.Lock()
	if i, ok := sh.m[string(k)]; ok {
		sh.drop(i)
	}
	sh.mu.Unlock()
}

// fill caches a under k if allowed, checked under the shard's lock, says
// so. a.value is copied.
func (c *readCache) fill(k []byte, a cacheAnswer, allowed func() bool) {
	size := int64(len(k)+len(a.value)) + cacheEntryOverhead
	if len(a.value) > maxCachedValue {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if size > sh.limit || !allowed() {
		return
	}
	if i, ok := sh.m[string(k)]; ok {
		sh.drop(i)
	}
	for sh.bytes+size > sh.limit && len(sh.m) > 0 {
		sh.evict()
	}
	var i int32
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		i = int32(len(sh.slots))
		sh.slots = append(sh.slots, cacheSlot{})
	}
	// The key and the value share one allocation; neither is ever
	// written again, so the map's key may be a view of its bytes.
	buf := make([]byte, len(k)+len(a.value))
	copy(buf, k)
	s := &sh.slots[i]
	*s = cacheSlot{key: unsafe.String(unsafe.SliceData(buf), len(k)), exp: a.exp, seq: a.seq, found: a.found, used: true}
	if a.found {
		s.value = buf[len(k):len(buf):len(buf)]
		copy(s.value, a.value)
	}
	sh.m[s.key] = i
	sh.bytes += size
}

// drop frees slot i.
func (sh *cacheShard) drop(i int32) {
	s := &sh.slots[i]
	delete(sh.m, s.key)
	sh.bytes -= int64(len(s.key)+len(s.value)) + cacheEntryOverhead
	*s = cacheSlot{}
	sh.free = append(sh.free, i)
}

// evict frees one slot, giving every recently read one a second chance.
func (sh *cacheShard) evict() {
	for {
		if sh.hand >= len(sh.slots) {
			sh.hand = 0
		}
		s := &sh.slots[sh.hand]
		i := int32(sh.hand)
		sh.hand++
		switch {
		case !s.used:
		case s.ref:
			s.ref = false
		default:
			sh.drop(i)
			return
		}
	}
}

// stats returns the cache's hits, misses, entries and bytes.
func (c *readCache) stats() (hits, misses uint64, entries int, bytes int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		entries += len(sh.m)
		bytes += sh.bytes
		sh.mu.Unlock()
	}
	return c.hits.Load(), c.misses.Load(), entries, bytes
}

// cacheTicket is what a reader needs to fill the cache from one snapshot:
// the replica's tag and cacheGen as of before the snapshot opened.
type cacheTicket struct {
	tag uint64
	gen uint64
}

// cachedGet answers a point read of key from the cache. ok is false on a
// miss, when the store has no cache, or when the replica is closed or
// incomplete (the caller's read reports that). seq is at least that of
// the snapshot the answer came from and of the replica's last commit.
func (r *Replica) cachedGet(key []byte, now int64) (value []byte, exp int64, found bool, seq uint64, ok bool) {
	c := r.s.cache
	if c == nil {
		return nil, 0, false, 0, false
	}
	var buf [96]byte
	r.mu.Lock()
	if r.closed || r.st.Incomplete {
		r.mu.Unlock()
		return nil, 0, false, 0, false
	}
	a, hit := c.get(cacheKey(buf[:0], r.cacheTag, key))
	last := r.st.Seq
	r.mu.Unlock()
	if !hit {
		return nil, 0, false, 0, false
	}
	if !a.found || !live(a.exp, now) {
		return nil, 0, false, max(a.seq, last), true
	}
	return a.value, a.exp, true, max(a.seq, last), true
}

// cacheFill caches the answer a read of key got from the snapshot t was
// taken for, unless a commit has begun since.
func (r *Replica) cacheFill(t cacheTicket, key []byte, a cacheAnswer) {
	c := r.s.cache
	if c == nil {
		return
	}
	var buf [96]byte
	c.fill(cacheKey(buf[:0], t.tag, key), a, func() bool {
		return r.cacheWriting.Load() == 0 && r.cacheGen.Load() == t.gen
	})
}

// cacheBeginCommit starts the cache's side of a commit whose effects set
// or delete keys in the current data incarnation: it counts the commit and
// removes the keys. The caller holds writeMu and must call cacheEndCommit
// after installing the new state, whether the commit succeeded or not.
func (r *Replica) cacheBeginCommit(effects [][]binlog.Effect) {
	c := r.s.cache
	if c == nil {
		return
	}
	r.cacheWriting.Add(1)
	var buf [96]byte
	for _, es := range effects {
		for i := range es {
			c.remove(cacheKey(buf[:0], r.cacheTag, es[i].Key))
		}
	}
}

// cacheEndCommit ends what cacheBeginCommit started.
func (r *Replica) cacheEndCommit() {
	if r.s.cache == nil {
		return
	}
	r.cacheGen.Add(1)
	r.cacheWriting.Add(-1)
}

// ReadCacheStats are a store's read cache figures.
type ReadCacheStats struct {
	Hits, Misses uint64 // point reads it answered, and those it did not
	Entries      int    // answers held
	Bytes        int64  // what they take, approximately
	Limit        int64  // its size
}

// ReadCacheStats returns the read cache's figures; ok is false when the
// store has none.
func (s *Store) ReadCacheStats() (st ReadCacheStats, ok bool) {
	c := s.cache
	if c == nil {
		return ReadCacheStats{}, false
	}
	st.Hits, st.Misses, st.Entries, st.Bytes = c.stats()
	for i := range c.shards {
		st.Limit += c.shards[i].limit
	}
	return st, true
}
