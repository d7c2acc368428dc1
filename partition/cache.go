package partition

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"

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
// age out. Each shard drops its oldest entries first (readCache).

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 64

// cacheHeader is the size of an entry's header in a shard's ring: the key's
// hash, the key's and the value's lengths, the expiry, the seq and whether
// the key was found.
const cacheHeader = 8 + 4 + 4 + 8 + 8 + 1

// The kinds of entry, in the header's last byte: a "not found" answer, a
// value, or an entry removed by a write and not yet filled again.
const (
	entryAbsent  = 0
	entryFound   = 1
	entryRemoved = 2
)

// maxCachedValue is the largest value the cache keeps; larger reads go to
// Badger every time.
const maxCachedValue = 16 << 10

// readCache is a store's cache of point-read answers.
//
// It holds no pointers the garbage collector would have to follow: each
// shard writes its entries one after another into a ring of bytes and
// indexes them by the hash of their key (a map of integers). Positions are
// absolute (they only grow); the ring's oldest entries are dropped, first
// in first out, as new ones need their room, and dropping one takes it out
// of the index if the index still points at it. A lookup compares the
// whole key, so two keys of one hash never answer for each other (the
// later fill replaces the earlier one's index entry). A write's removal
// only marks its key's entry, and the write through that follows rewrites
// it in place when the new answer has the old one's size (an overwrite by
// a value of the same length): an overwrite load neither churns the ring
// nor evicts other keys.
type readCache struct {
	seed   maphash.Seed
	tags   atomic.Uint64 // the last cache tag handed out
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	index map[uint64]uint64 // key hash → absolute position of its entry
	ring  []byte
	head  uint64 // where the next entry goes
	tail  uint64 // the oldest entry still in the ring
	// hits and misses count lookups, under mu: counters shared by every
	// shard would put one contended cache line on every read.
	hits, misses uint64
	removed      int      // indexed entries marked removed
	_            [48]byte // keep shards on separate cache lines (128 bytes each)
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
		c.shards[i].index = make(map[uint64]uint64)
		c.shards[i].ring = make([]byte, max(size/cacheShards, 4<<10))
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

// locate returns k's hash and shard.
func (c *readCache) locate(k []byte) (uint64, *cacheShard) {
	h := maphash.Bytes(c.seed, k)
	return h, &c.shards[h%cacheShards]
}

// get returns the answer cached under k; its value is a copy, taken from
// arena (which may be nil).
func (c *readCache) get(k []byte, arena *valueArena) (cacheAnswer, bool) {
	h, sh := c.locate(k)
	sh.mu.Lock()
	a, ok := sh.lookup(h, k, arena)
	if ok {
		sh.hits++
	} else {
		sh.misses++
	}
	sh.mu.Unlock()
	return a, ok
}

// remove drops k. The entry stays indexed, marked removed, so that the
// next fill of k with an answer of the same size (a write through of an
// overwrite, typically) rewrites it where it is.
func (c *readCache) remove(k []byte) {
	h, sh := c.locate(k)
	sh.mu.Lock()
	if p, ok := sh.find(h, k); ok && sh.ring[(p+32)%uint64(len(sh.ring))] != entryRemoved {
		sh.put(p+32, []byte{entryRemoved})
		sh.removed++
	}
	sh.mu.Unlock()
}

// fill caches a under k if allowed, checked under the shard's lock, says
// so. a.value is copied.
func (c *readCache) fill(k []byte, a cacheAnswer, allowed func() bool) {
	if len(a.value) > maxCachedValue {
		return
	}
	if !a.found {
		a.value = nil
	}
	n := uint64(cacheHeader + len(k) + len(a.value))
	h, sh := c.locate(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	size := uint64(len(sh.ring))
	if 2*n > size || !allowed() {
		return
	}
	var hdr [cacheHeader]byte
	binary.LittleEndian.PutUint64(hdr[0:], h)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(k)))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(a.value)))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(a.exp))
	binary.LittleEndian.PutUint64(hdr[24:], a.seq)
	if a.found {
		hdr[32] = entryFound
	}
	if p, ok := sh.find(h, k); ok {
		var old [cacheHeader]byte
		sh.read(old[:], p)
		if sh.ring[(p+32)%size] == entryRemoved {
			sh.removed--
		}
		if binary.LittleEndian.Uint32(old[12:]) == uint32(len(a.value)) {
			// Same size: rewrite the entry in place (its key is k already).
			sh.put(p, hdr[:])
			sh.put(p+cacheHeader+uint64(len(k)), a.value)
			return
		}
		// The old entry's bytes age out of the ring unindexed.
		delete(sh.index, h)
	}
	for sh.head+n-sh.tail > size {
		sh.dropOldest()
	}
	p := sh.head
	sh.put(p, hdr[:])
	sh.put(p+cacheHeader, k)
	sh.put(p+cacheHeader+uint64(len(k)), a.value)
	sh.head += n
	sh.index[h] = p
}

// find returns the absolute position of k's entry, removed or not.
func (sh *cacheShard) find(h uint64, k []byte) (uint64, bool) {
	p, ok := sh.index[h]
	if !ok || p < sh.tail {
		return 0, false
	}
	var lens [8]byte
	sh.read(lens[:], p+8)
	if uint64(binary.LittleEndian.Uint32(lens[:])) != uint64(len(k)) || !sh.equal(p+cacheHeader, k) {
		return 0, false
	}
	return p, true
}

// lookup returns the answer of the entry the index holds for hash h if its
// key is k and it was not removed, with a copy of its value taken from
// arena.
func (sh *cacheShard) lookup(h uint64, k []byte, arena *valueArena) (cacheAnswer, bool) {
	p, ok := sh.index[h]
	if !ok || p < sh.tail {
		return cacheAnswer{}, false
	}
	var hdr [cacheHeader]byte
	sh.read(hdr[:], p)
	klen := uint64(binary.LittleEndian.Uint32(hdr[8:]))
	if hdr[32] == entryRemoved || klen != uint64(len(k)) || !sh.equal(p+cacheHeader, k) {
		return cacheAnswer{}, false
	}
	a := cacheAnswer{
		exp:   int64(binary.LittleEndian.Uint64(hdr[16:])),
		seq:   binary.LittleEndian.Uint64(hdr[24:]),
		found: hdr[32] == entryFound,
	}
	if a.found {
		a.value = arena.alloc(int(binary.LittleEndian.Uint32(hdr[12:])))
		sh.read(a.value, p+cacheHeader+klen)
	}
	return a, true
}

// dropOldest drops the ring's oldest entry, and its index entry if the
// index still points at it.
func (sh *cacheShard) dropOldest() {
	var hdr [cacheHeader]byte
	sh.read(hdr[:], sh.tail)
	h := binary.LittleEndian.Uint64(hdr[0:])
	if p, ok := sh.index[h]; ok && p == sh.tail {
		delete(sh.index, h)
		if hdr[32] == entryRemoved {
			sh.removed--
		}
	}
	sh.tail += uint64(cacheHeader) + uint64(binary.LittleEndian.Uint32(hdr[8:])) + uint64(binary.LittleEndian.Uint32(hdr[12:]))
}

// put copies b into the ring at absolute position p, wrapping at its end.
func (sh *cacheShard) put(p uint64, b []byte) {
	i := p % uint64(len(sh.ring))
	n := copy(sh.ring[i:], b)
	copy(sh.ring, b[n:])
}

// read copies len(b) bytes of the ring from absolute position p into b.
func (sh *cacheShard) read(b []byte, p uint64) {
	i := p % uint64(len(sh.ring))
	n := copy(b, sh.ring[i:])
	copy(b[n:], sh.ring)
}

// equal reports whether the ring holds k at absolute position p.
func (sh *cacheShard) equal(p uint64, k []byte) bool {
	i := p % uint64(len(sh.ring))
	first := min(uint64(len(k)), uint64(len(sh.ring))-i)
	return bytes.Equal(sh.ring[i:i+first], k[:first]) && bytes.Equal(sh.ring[:uint64(len(k))-first], k[first:])
}

// stats returns the cache's hits, misses, entries and bytes.
func (c *readCache) stats() (hits, misses uint64, entries int, bytes int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		entries += len(sh.index) - sh.removed
		bytes += int64(sh.head - sh.tail)
		hits += sh.hits
		misses += sh.misses
		sh.mu.Unlock()
	}
	return hits, misses, entries, bytes
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
func (r *Replica) cachedGet(key []byte, now int64, arena *valueArena) (value []byte, exp int64, found bool, seq uint64, ok bool) {
	c := r.s.cache
	if c == nil {
		return nil, 0, false, 0, false
	}
	// No lock: a tag loaded just before a commit changes it answers as a
	// read at that moment would have, because entries under a retired tag
	// never change again (writers and fills use the new one, and a fill
	// from an older snapshot is refused once a commit has begun).
	tag := r.lookupTag.Load()
	if tag == 0 {
		return nil, 0, false, 0, false
	}
	var buf [96]byte
	a, hit := c.get(cacheKey(buf[:0], tag, key), arena)
	if !hit {
		return nil, 0, false, 0, false
	}
	last := r.lastSeq.Load()
	if !a.found || !live(a.exp, now) {
		return nil, 0, false, max(a.seq, last), true
	}
	return a.value, a.exp, true, max(a.seq, last), true
}

// valueArena hands out the values one read copies out of the cache. A
// multi-key read takes small values from shared chunks, one allocation
// for several values instead of one each; a nil arena allocates each on
// its own. Each value is a slice of its own bytes whose capacity ends
// where it does, so appending to one copies it rather than overwrite the
// next; a value kept keeps at most one chunk alive.
type valueArena struct {
	buf []byte
	// left is how many values the read may still take, this one
	// included: a chunk is sized for that many of the value asked for,
	// up to arenaChunk, so that a run of same-size values fills its
	// chunks exactly.
	left int
}

const (
	// arenaChunk bounds an arena's shared allocations.
	arenaChunk = 1 << 10
	// arenaMaxValue is the largest value an arena puts in a chunk.
	arenaMaxValue = arenaChunk / 4
)

// alloc returns n bytes for a value (non-nil even when n is 0).
func (a *valueArena) alloc(n int) []byte {
	if a == nil || n == 0 || n > arenaMaxValue {
		return make([]byte, n)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, min(n*max(a.left, 1), arenaChunk))
	}
	i := len(a.buf)
	a.buf = a.buf[:i+n]
	return a.buf[i : i+n : i+n]
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
		st.Limit += int64(len(c.shards[i].ring))
	}
	return st, true
}
