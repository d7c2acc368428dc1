package partition

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// DefaultListLimit is the page size List uses when limit ≤ 0.
const DefaultListLimit = 1000

// Replica is one partition replica in a Store: its data, its binlog and its
// state. It is a master after Promote (Write assigns seqs and logs records)
// and a slave otherwise (Apply and the full-sync load methods feed it).
// Reads work in any role; callers decide who may read.
//
// All methods are safe for concurrent use. Obtain a Replica from
// Store.Replica; Close it, or close the Store, when done.
type Replica struct {
	s         *Store
	id        ReplicaID
	stKey     []byte
	dataBase  []byte // d T P, the data prefix without incarnation
	indexBase []byte // x T P
	maxTagDel int
	roleMu    sync.Mutex // serializes Promote, Demote and shutdown
	writeMu   sync.Mutex // held by every transaction that writes the state
	purgeMu   sync.Mutex // one Purge at a time
	purged    logMark    // where the log's keys are known deleted up to; guarded by purgeMu
	closeOnce sync.Once
	snapsMu   sync.Mutex
	snaps     map[*Snapshot]struct{}
	snapsShut bool

	// testHookCommit, when set before Promote, runs in the committer once
	// it has taken the replica's groups, before it commits them. Tests use
	// it to hold the committer.
	testHookCommit func()
	// testHookCommitted, when set, runs after a record transaction commits
	// in Badger and before the replica's state follows it.
	testHookCommitted func()
	// testHookFill, when set, runs in a read between reading Badger and
	// filling the read cache with the answer.
	testHookFill func()

	// committing is the seq of the last record of the transaction being
	// committed, stored before Badger's commit starts and cleared after the
	// state follows it. A reader whose snapshot opened during the commit may
	// already see the records, so it reports at least this seq.
	committing atomic.Uint64

	// lane is the replica's committer (committer.go); lined reports it in
	// that lane's ready list, guarded by the lane's mu.
	lane  int
	lined bool

	// cacheGen and cacheWriting are the replica's side of the read
	// cache's protocol (cache.go): the commits that have finished, and
	// whether one is in progress.
	cacheGen     atomic.Uint64
	cacheWriting atomic.Int32
	// incomplete is st.Incomplete, for readers that want only it (every
	// read checks it) without taking mu; stored with st.
	incomplete atomic.Bool
	// lookupTag is cacheTag while the replica is open and complete, else
	// 0, and lastSeq is st.Seq: a cached read loads them without taking
	// mu (cachedGet). Both are stored with mu held, beside the fields they
	// mirror.
	lookupTag atomic.Uint64
	lastSeq   atomic.Uint64

	mu sync.Mutex // guards the fields below
	st State      // written with writeMu and mu held
	// incVer changes whenever DataInc, LogInc or FirstSeq change, or the
	// replica closes; readers use it to detect a concurrent switch.
	incVer   uint64
	logBytes int64 // approximate bytes of the retained log
	closed   bool
	master   bool
	gen      uint64 // generation of new records while master
	pending  []*request
	seqCh    chan struct{} // closed and replaced when Seq changes or on close
	// cacheTag keys the replica's entries in the store's read cache; it
	// changes with DataInc and Incomplete. Written with writeMu and mu
	// held.
	cacheTag uint64
}

func newReplica(s *Store, id ReplicaID, st State) *Replica {
	r := &Replica{
		s:         s,
		id:        id,
		stKey:     stateKey(id.Table, id.Partition),
		dataBase:  stateKeyLike(prefixData, id),
		indexBase: stateKeyLike(prefixIndex, id),
		maxTagDel: s.opts.MaxTagDelete,
		snaps:     make(map[*Snapshot]struct{}),
		st:        st,
		seqCh:     make(chan struct{}),
		cacheTag:  s.cache.newTag(),
		lane:      laneOf(id, len(s.lanes)),
	}
	r.publish()
	return r
}

// publish stores the mirrors of st, closed and cacheTag that readers load
// without mu; called with mu held (or before the replica is shared).
func (r *Replica) publish() {
	r.incomplete.Store(r.st.Incomplete)
	r.lastSeq.Store(r.st.Seq)
	tag := r.cacheTag
	if r.closed || r.st.Incomplete {
		tag = 0
	}
	r.lookupTag.Store(tag)
}

func stateKeyLike(kind byte, id ReplicaID) []byte {
	k := make([]byte, partPrefixLen)
	putTP(k, kind, id.Table, id.Partition)
	return k
}

// ID returns the replica's table and partition.
func (r *Replica) ID() ReplicaID { return r.id }

func (r *Replica) dataPrefix(inc uint32) []byte {
	return incPrefix(prefixData, r.id.Table, r.id.Partition, inc)
}
func (r *Replica) indexPrefix(inc uint32) []byte {
	return incPrefix(prefixIndex, r.id.Table, r.id.Partition, inc)
}
func (r *Replica) logPrefix(inc uint32) []byte {
	return binlog.LogPrefix(r.id.Table, r.id.Partition, inc)
}

// State returns a copy of the replica's state as of its last commit.
func (r *Replica) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.clone()
}

// Incomplete reports whether the replica's state is marked Incomplete (a
// full sync has begun and not finished). It is State().Incomplete without
// copying the state or taking the replica's lock.
func (r *Replica) Incomplete() bool { return r.incomplete.Load() }

// Close stops the replica taking writes (queued ones fail with ErrClosed),
// closes its snapshots, waits for writes in progress and removes it from the
// store's cache; Store.Replica opens it afresh afterwards. It is idempotent.
func (r *Replica) Close() error {
	r.shutdown()
	r.s.forget(r)
	return nil
}

// shutdown does Close's work without touching the store's cache.
func (r *Replica) shutdown() {
	r.closeOnce.Do(func() {
		r.roleMu.Lock()
		r.mu.Lock()
		r.closed = true
		r.master = false
		r.incVer++
		r.publish()
		close(r.seqCh)
		r.mu.Unlock()
		r.failPending()
		r.roleMu.Unlock()

		r.snapsMu.Lock()
		r.snapsShut = true
		snaps := make([]*Snapshot, 0, len(r.snaps))
		for sn := range r.snaps {
			snaps = append(snaps, sn)
		}
		r.snapsMu.Unlock()
		for _, sn := range snaps {
			sn.Close()
		}
		// Wait for Apply, loads and purges in progress; the closed flag
		// stops new ones.
		r.writeMu.Lock()
		//lint:ignore SA2001 waiting for the holder is the point
		r.writeMu.Unlock()
		r.purgeMu.Lock()
		//lint:ignore SA2001 waiting for the holder is the point
		r.purgeMu.Unlock()
	})
}

// setState installs a committed state; called with writeMu held.
func (r *Replica) setState(st State, logDelta int64) {
	r.mu.Lock()
	old := r.st
	r.st = st
	r.logBytes = max(0, r.logBytes+logDelta)
	if st.DataInc != old.DataInc || st.LogInc != old.LogInc || st.FirstSeq != old.FirstSeq {
		r.incVer++
	}
	if st.DataInc != old.DataInc || st.Incomplete != old.Incomplete {
		r.cacheTag = r.s.cache.newTag()
	}
	r.publish()
	if st.Seq != old.Seq && !r.closed {
		close(r.seqCh)
		r.seqCh = make(chan struct{})
	}
	r.mu.Unlock()
	if st.DataInc != old.DataInc || st.LogInc != old.LogInc {
		r.s.wakeGC()
	}
}

// liveState returns the state for a writer holding writeMu, or an error
// when the replica is closed or incomplete.
func (r *Replica) liveState(allowIncomplete bool) (State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return State{}, ErrClosed
	}
	if r.st.Incomplete && !allowIncomplete {
		return State{}, ErrIncomplete
	}
	return r.st.clone(), nil
}

// putState adds the state key to txn.
func (r *Replica) putState(txn *badger.Txn, st State) error {
	b, err := st.marshal()
	if err != nil {
		return err
	}
	return txn.Set(r.stKey, b)
}

// countLogBytes computes the retained log size from the log range.
func (r *Replica) countLogBytes() error {
	st := r.st
	var n int64
	err := r.s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		o.Prefix = r.logPrefix(st.LogInc)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Seek(binlog.LogKey(o.Prefix, st.FirstSeq)); it.ValidForPrefix(o.Prefix); it.Next() {
			n += recordSize(it.Item())
		}
		return nil
	})
	r.logBytes = n
	return err
}

// recordSize is the accounting size of one stored record.
func recordSize(item *badger.Item) int64 {
	return int64(len(item.Key())) + item.ValueSize()
}

// view runs fn in a read transaction whose snapshot matches st's
// incarnations and FirstSeq: if they change while the transaction opens, it
// retries. st.Seq is at least the seq of the last record the snapshot can
// see (it may name a record whose commit is still in flight), so a reader
// that waits for st.Seq to replicate never returns a record it has not
// waited for. The collector only deletes an incarnation after the replica's
// in-memory state has moved off it, so the snapshot never sees a
// half-deleted incarnation.
func (r *Replica) view(fn func(txn *badger.Txn, st *State) error) error {
	return r.viewTicket(func(txn *badger.Txn, st *State, _ cacheTicket) error { return fn(txn, st) })
}

// viewTicket is view that also hands fn the ticket to fill the read cache
// with what it reads.
func (r *Replica) viewTicket(fn func(txn *badger.Txn, st *State, t cacheTicket) error) error {
	if err := r.s.acquire(); err != nil {
		return err
	}
	defer r.s.release()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		if r.st.Incomplete {
			r.mu.Unlock()
			return ErrIncomplete
		}
		st, ver, tag := r.st, r.incVer, r.cacheTag
		r.mu.Unlock()
		t := cacheTicket{tag: tag, gen: r.cacheGen.Load()}
		txn := r.s.db.NewTransaction(false)
		// The snapshot sees every record whose commit started before it
		// opened: those that finished are in the state now, and the one in
		// flight is in committing. Read committing first, once the
		// snapshot is open: it is cleared only after the state has moved
		// past it. The state is then read under the same lock that checks
		// the incarnations.
		seq := r.committing.Load()
		r.mu.Lock()
		same, closed, last := ver == r.incVer, r.closed, r.st.Seq
		r.mu.Unlock()
		if closed {
			txn.Discard()
			return ErrClosed
		}
		if !same {
			txn.Discard()
			continue
		}
		st.Seq = max(st.Seq, last, seq)
		err := fn(txn, &st, t)
		txn.Discard()
		return err
	}
}

// getLive reads userKey from the data incarnation of prefix; found is false
// when the key is missing or expired at now. The value is a copy.
func getLive(txn *badger.Txn, prefix, userKey []byte, now int64) (value []byte, expireAt int64, found bool, err error) {
	a, err := getAnswer(txn, prefix, userKey)
	if err != nil || !a.found || !live(a.exp, now) {
		return nil, 0, false, err
	}
	return a.value, a.exp, true, nil
}

// getAnswer reads userKey from the data incarnation of prefix as it is
// stored, expired or not; found is false when it is missing. The value is
// a copy.
func getAnswer(txn *badger.Txn, prefix, userKey []byte) (cacheAnswer, error) {
	item, err := txn.Get(withSuffix(prefix, userKey))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return cacheAnswer{}, nil
	}
	if err != nil {
		return cacheAnswer{}, err
	}
	b, err := item.ValueCopy(nil)
	if err != nil {
		return cacheAnswer{}, err
	}
	exp, v, err := decodeValue(b)
	if err != nil {
		return cacheAnswer{}, err
	}
	return cacheAnswer{value: v, exp: exp, found: true}, nil
}

// getCaching reads key as getLive does from the snapshot t was taken for,
// whose state is st, and fills the read cache with the answer.
func (r *Replica) getCaching(txn *badger.Txn, st *State, t cacheTicket, key []byte, now int64) (value []byte, expireAt int64, found bool, err error) {
	a, err := getAnswer(txn, r.dataPrefix(st.DataInc), key)
	if err != nil {
		return nil, 0, false, err
	}
	a.seq = st.Seq
	if h := r.testHookFill; h != nil {
		h()
	}
	r.cacheFill(t, key, a)
	if !a.found || !live(a.exp, now) {
		return nil, 0, false, nil
	}
	return a.value, a.exp, true, nil
}

// Get returns key's value and absolute expiry (Unix ms, 0 = none). found is
// false when the key does not exist or has expired. The value is the
// caller's.
func (r *Replica) Get(key []byte) (value []byte, expireAt int64, found bool, err error) {
	value, expireAt, found, _, err = r.GetSeq(key)
	return value, expireAt, found, err
}

// GetSeq is Get that also returns the seq of the replica's last record as
// of the snapshot it read: the answer reflects exactly the records up to
// seq.
func (r *Replica) GetSeq(key []byte) (value []byte, expireAt int64, found bool, seq uint64, err error) {
	now := r.s.now()
	if value, expireAt, found, seq, ok := r.cachedGet(key, now, nil); ok {
		return value, expireAt, found, seq, nil
	}
	err = r.viewTicket(func(txn *badger.Txn, st *State, t cacheTicket) error {
		seq = st.Seq
		value, expireAt, found, err = r.getCaching(txn, st, t, key, now)
		return err
	})
	if err != nil {
		return nil, 0, false, 0, r.wrapRead("get", err)
	}
	return value, expireAt, found, seq, nil
}

// GetMany reads keys[i] from reps[i] for every i, as GetSeq would, but
// from one snapshot of the store (one Badger read transaction) for all
// of them rather than one per key. Every replica must belong to s; one
// may appear many times. fn gets each key's answer, seq being that of its
// replica as of the snapshot, and reports whether to go on: it is called
// once per key until it returns false, first for the keys the read cache
// answers, then for the others in the order of keys, except that the keys
// of a replica whose incarnations changed while the snapshot opened come
// last, each read afresh by GetSeq. fn runs while the snapshot is open and
// must not block.
func (s *Store) GetMany(reps []*Replica, keys [][]byte, fn func(i int, value []byte, expireAt int64, found bool, seq uint64, err error) bool) {
	now := s.now()
	miss := make([]int, 0, len(keys)) // the keys the cache did not answer
	var arena *valueArena
	if len(keys) > 1 {
		arena = new(valueArena)
	}
	for i, key := range keys {
		if arena != nil {
			arena.left = len(keys) - i
		}
		if v, exp, found, seq, ok := reps[i].cachedGet(key, now, arena); ok {
			if !fn(i, v, exp, found, seq, nil) {
				return
			}
			continue
		}
		miss = append(miss, i)
	}
	if len(miss) > 0 {
		s.getSnapshot(reps, keys, miss, now, fn)
	}
}

// getSnapshot is GetMany's read of keys[i] for every i in miss, from one
// snapshot.
func (s *Store) getSnapshot(reps []*Replica, keys [][]byte, miss []int, now int64, fn func(i int, value []byte, expireAt int64, found bool, seq uint64, err error) bool) {
	type snap struct {
		r     *Replica
		st    State
		ver   uint64
		t     cacheTicket
		err   error
		stale bool // the incarnations changed: read on its own
	}
	snaps := make([]snap, 0, 16)
	slot := make([]int, len(miss)) // miss[n]'s replica is snaps[slot[n]]
	var index map[*Replica]int     // once there are many replicas
	for n, i := range miss {
		r := reps[i]
		j := -1
		if index != nil {
			if k, ok := index[r]; ok {
				j = k
			}
		} else {
			for k := range snaps {
				if snaps[k].r == r {
					j = k
					break
				}
			}
		}
		if j < 0 {
			j = len(snaps)
			snaps = append(snaps, snap{r: r})
			if index != nil {
				index[r] = j
			} else if len(snaps) > 16 {
				index = make(map[*Replica]int, 2*len(snaps))
				for k := range snaps {
					index[snaps[k].r] = k
				}
			}
		}
		slot[n] = j
	}
	more, stale := func() (more, stale bool) {
		if err := s.acquire(); err != nil {
			for _, i := range miss {
				if !fn(i, nil, 0, false, 0, err) {
					return false, false
				}
			}
			return false, false
		}
		defer s.release()
		for j := range snaps {
			sn := &snaps[j]
			r := sn.r
			r.mu.Lock()
			switch {
			case r.closed:
				sn.err = ErrClosed
			case r.st.Incomplete:
				sn.err = ErrIncomplete
			}
			sn.st, sn.ver, sn.t.tag = r.st, r.incVer, r.cacheTag
			r.mu.Unlock()
			// As in viewTicket: the generation before the snapshot opens.
			sn.t.gen = r.cacheGen.Load()
		}
		txn := s.db.NewTransaction(false)
		defer txn.Discard()
		for j := range snaps {
			// As in view: committing once the snapshot is open, then the
			// state under the lock that checks the incarnations.
			sn := &snaps[j]
			if sn.err != nil {
				continue
			}
			r := sn.r
			seq := r.committing.Load()
			r.mu.Lock()
			same, closed, last := sn.ver == r.incVer, r.closed, r.st.Seq
			r.mu.Unlock()
			switch {
			case closed:
				sn.err = ErrClosed
			case !same:
				sn.stale = true
			default:
				sn.st.Seq = max(sn.st.Seq, last, seq)
			}
		}
		more = true
		for n, i := range miss {
			sn := &snaps[slot[n]]
			switch {
			case sn.err != nil:
				more = fn(i, nil, 0, false, 0, sn.err)
			case sn.stale:
				stale = true
			default:
				v, exp, found, err := sn.r.getCaching(txn, &sn.st, sn.t, keys[i], now)
				if err != nil {
					v, exp, found, err = nil, 0, false, sn.r.wrapRead("get", err)
				}
				more = fn(i, v, exp, found, sn.st.Seq, err)
			}
			if !more {
				break
			}
		}
		return more, stale
	}()
	if !more || !stale {
		return
	}
	for n, i := range miss {
		if sn := &snaps[slot[n]]; sn.stale {
			v, exp, found, seq, err := sn.r.GetSeq(keys[i])
			if !fn(i, v, exp, found, seq, err) {
				return
			}
		}
	}
}

// TTL returns key's remaining time to live in milliseconds, -1 when it has
// no expiry; found is false when the key does not exist or has expired.
func (r *Replica) TTL(key []byte) (ttl int64, found bool, err error) {
	now := r.s.now()
	_, exp, found, err := r.Get(key)
	if err != nil || !found {
		return 0, found, err
	}
	if exp == 0 {
		return -1, true, nil
	}
	return exp - now, true, nil
}

// Exists reports whether key exists and has not expired.
func (r *Replica) Exists(key []byte) (bool, error) {
	_, _, found, err := r.Get(key)
	return found, err
}

// List returns, in key order, up to limit live keys whose hashtag is tag
// and that sort after after (all when after is empty), with their values
// when values is true. more reports whether further keys follow. limit ≤ 0
// means DefaultListLimit. The returned slices are the caller's.
func (r *Replica) List(tag, after []byte, limit int, values bool) (keys, vals [][]byte, more bool, err error) {
	keys, vals, more, _, err = r.ListSeq(tag, after, limit, values)
	return keys, vals, more, err
}

// ListSeq is List that also returns the seq of the replica's last record
// as of the snapshot it read.
func (r *Replica) ListSeq(tag, after []byte, limit int, values bool) (keys, vals [][]byte, more bool, seq uint64, err error) {
	if len(tag) == 0 {
		return nil, nil, false, 0, wire.Errorf(wire.CodeInvalid, "empty hashtag")
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	now := r.s.now()
	err = r.view(func(txn *badger.Txn, st *State) error {
		keys, vals, more, seq = nil, nil, false, st.Seq
		dp := r.dataPrefix(st.DataInc)
		tp := tagPrefix(r.indexPrefix(st.DataInc), tag)
		var start []byte
		if len(after) > 0 {
			start = append(withSuffix(tp, after), 0)
		}
		return iterKeys(txn, tp, start, func(k []byte) (bool, error) {
			uk := k[len(tp):]
			v, _, found, err := getLive(txn, dp, uk, now)
			if err != nil || !found {
				return true, err
			}
			if len(keys) == limit {
				more = true
				return false, nil
			}
			keys = append(keys, bytes.Clone(uk))
			if values {
				vals = append(vals, v)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, nil, false, 0, r.wrapRead("list", err)
	}
	return keys, vals, more, seq, nil
}

func (r *Replica) wrapRead(op string, err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrIncomplete) {
		return err
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return err
	}
	return fmt.Errorf("partition: %s on %v: %w", op, r.id, err)
}

// SizeEstimate returns Badger's estimate of the bytes the replica's data
// takes on disk (0 when it cannot tell, e.g. closed or incomplete). It
// looks at the store's table index, not at the data: cheap, but it misses
// what is still in memtables.
func (r *Replica) SizeEstimate() int64 {
	r.mu.Lock()
	closed, inc := r.closed, r.st.DataInc
	r.mu.Unlock()
	if closed {
		return 0
	}
	if err := r.s.acquire(); err != nil {
		return 0
	}
	defer r.s.release()
	onDisk, _ := r.s.db.EstimateSize(r.dataPrefix(inc))
	return int64(onDisk)
}

// Now returns the store's clock in Unix milliseconds: the clock expiries
// are decided by.
func (r *Replica) Now() int64 { return r.s.now() }
