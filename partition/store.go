package partition

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/zeppelin-kv/zeppelin/internal/fsutil"
	"github.com/zeppelin-kv/zeppelin/internal/run"
)

// Durability is a store's fsync policy.
type Durability int

// Durability policies.
const (
	// DurabilityInterval fsyncs at least every Options.SyncInterval from a
	// goroutine the Store owns (like Redis appendfsync everysec). A machine
	// crash can lose up to that much acknowledged data; a process crash
	// loses nothing. It is the default.
	DurabilityInterval Durability = iota
	// DurabilityAlways fsyncs every commit before it is acknowledged. Group
	// commit spreads the cost over many writes.
	DurabilityAlways
	// DurabilityNone leaves syncing to the operating system.
	DurabilityNone
)

// String returns the policy's name.
func (d Durability) String() string {
	switch d {
	case DurabilityInterval:
		return "interval"
	case DurabilityAlways:
		return "always"
	case DurabilityNone:
		return "none"
	}
	return fmt.Sprintf("durability(%d)", int(d))
}

// Default option values.
const (
	DefaultSyncInterval = time.Second
	DefaultMaxTagDelete = 10_000
	// DefaultMemoryBudget is Options.MemoryBudget's default: a 24 MiB
	// read cache, an 8 MiB block cache, four 8 MiB memtables, and the
	// buffers flushes and compactions build tables in.
	DefaultMemoryBudget = 128 << 20
	// SmallMemoryBudget is Options.MemoryBudget's default with Small, the
	// same as DefaultMemoryBudget (Small keeps value log files small).
	SmallMemoryBudget = 128 << 20
	// MinMemoryBudget is the smallest memory budget: four 4 MiB
	// memtables (and 6 MiB of caches). The largest group of writes a
	// replica commits at once is 15% of a memtable: about 600 KiB here,
	// 1.2 MiB at DefaultMemoryBudget (values past the value threshold are
	// kept in Badger's value log and count little).
	MinMemoryBudget = 24 << 20
)

// badgerSizing is what a memory budget buys in Badger.
type badgerSizing struct {
	// memtable is the size of each of memtables memtables.
	memtable  int64
	memtables int
	// blockCache is the block cache's size (0 with uncompressed tables).
	blockCache int64
	// readCache is the size of the store's own read cache (cache.go); 0
	// for none.
	readCache int64
	// baseTable is the target size of a table in Badger's base level
	// (BaseTableSize); deeper levels double it per level.
	baseTable int64
}

// sizeBadger splits a memory budget (at least MinMemoryBudget) into the
// store's read cache and Badger's block cache (a quarter between them:
// three sixteenths and one sixteenth by default, no block cache with
// uncompressed tables) and four memtables (one being filled, up to three
// waiting for their flush) of a twelfth of the rest each; what remains is
// for the buffers tables are built in. A flush builds its level-0 table
// from a whole memtable, and with compression a table builder holds every
// block twice (uncompressed, and a worst-case-sized buffer for its
// compressed copy), in buffers that double as they fill and that Badger
// pools (up to eight) and hands from flushes to compactions, so each
// pooled set settles at the size the largest level-0 table needed: about
// 15 MiB for an 8 MiB memtable of small values, 31 MiB for a 16 MiB one.
// The pool, not the memtables, is what the memtable size mostly buys:
// with 16 MiB memtables it held up to 250 MB, past the runtime's soft
// limit, and writes slowed to a quarter of their speed under the
// collector (docs/performance.md).
//
// readCache is Options.ReadCacheSize: 0 for the default, negative for no
// read cache (the block cache keeps the whole quarter), positive for that
// many bytes, of which up to three sixteenths of the budget come out of
// the block cache's share and the rest is on top of the budget. The read
// cache gets the larger part because a hit answers a point read outright,
// where a block cache hit still searches the memtables and every level's
// index (docs/storage.md has the measurements).
//
// Badger closes a compressed table when its compressed size reaches the
// level's table size, so the uncompressed data a builder holds is that
// size times the compression ratio: the base level's tables are a 256th of
// the budget (512 KiB at the default, between 256 KiB and Badger's default
// 2 MiB), or compactions of compressible values build tables in tens of
// megabytes of buffers each, several at once. docs/storage.md has the
// measurements.
func sizeBadger(budget int64, uncompressed bool, readCache int64) badgerSizing {
	budget = max(budget, MinMemoryBudget)
	readShare := budget * 3 / 16 // at most this much of the read cache is in the caches' quarter
	switch {
	case readCache == 0:
		readCache = readShare
	case readCache < 0:
		readCache = 0
	}
	share := budget / 4 // the caches'
	z := badgerSizing{memtables: 4, readCache: readCache, blockCache: share - min(readCache, readShare)}
	mem := budget - share
	if uncompressed {
		mem, z.blockCache = budget-min(readCache, readShare), 0
	}
	z.memtable = max(mem/12, 4<<20)
	z.baseTable = min(max(budget/256, 256<<10), 2<<20)
	return z
}

// valueLogMin is the size from which Badger keeps a value in its value
// log rather than in the LSM tree (docs/storage.md): a table then holds
// the key and a pointer, and compactions, which rewrite every table's
// entries several times on their way down the levels, move a few dozen
// bytes instead of the value. A bulk load of 1 KiB values (a full sync's)
// went from 37 to 161 MB/s with it.
const valueLogMin = 1 << 10

// valueThreshold is Badger's ValueThreshold for memtables of memtable
// bytes: valueLogMin, or less when a memtable is too small for it. A
// memtable's largest batch is 15% of it, and a write holds its value
// twice (the data and the binlog record), so values of more than half of
// that must go to the value log for any single write to fit one batch.
func valueThreshold(memtable int64) int64 {
	return min(valueLogMin, memtable*15/200-1024)
}

// Options configures a Store.
type Options struct {
	// Dir is the Badger directory. Required.
	Dir string
	// Durability is the fsync policy; the zero value is DurabilityInterval.
	Durability Durability
	// SyncInterval is the longest time between fsyncs with
	// DurabilityInterval; default DefaultSyncInterval.
	SyncInterval time.Duration
	// MemoryBudget is what the store keeps in memory on its own: Badger's
	// block cache, memtables (being filled, and waiting to be flushed) and
	// the buffers flushes and compactions build tables in. It sizes Badger
	// and is a target for the store's live heap, not a hard bound. Default
	// DefaultMemoryBudget; at least MinMemoryBudget. Tables on disk are read
	// through the operating system's page cache (mapped), which the budget
	// does not count and the kernel reclaims under pressure. See
	// docs/storage.md.
	MemoryBudget int64
	// Uncompressed stores tables without compression and reads them
	// straight from their mappings, with no block cache (the memtables get
	// the whole budget). By default tables are Snappy-compressed, with a
	// block cache of a quarter of MemoryBudget. Uncompressed saves the
	// decompression of a block on every block-cache miss, which makes
	// point reads of small values faster, but costs disk, page cache and
	// compaction bandwidth for compressible values, which can leave a
	// write-heavy store behind.
	Uncompressed bool
	// ReadCacheSize is the size of the store's cache of point-read
	// answers (value, expiry or "not found"), which serves a hot key's
	// read without searching Badger's memtables and levels. 0 means
	// three sixteenths of MemoryBudget, taken from the caches' quarter
	// (the block cache keeps a sixteenth); negative disables it. A
	// positive size counts against MemoryBudget up to three sixteenths of
	// it (the block cache shrinks by as much) and adds to it beyond.
	// Writes keep it exact: they never fill it and remove the keys they
	// change before their commit.
	ReadCacheSize int64
	// Small selects test and demo sizing: a SmallMemoryBudget unless
	// MemoryBudget says otherwise, small value log files and fewer
	// goroutines for Badger's batch operations.
	Small bool
	// Logger receives Badger's warnings and errors and the store's own;
	// nil discards them.
	Logger *slog.Logger
	// Now is the clock, in Unix milliseconds, used to turn relative TTLs
	// into absolute expiries and to decide what has expired; time.Now when
	// nil. Badger also hides keys by their expiry against the wall clock,
	// so Now must not run behind real time by more than the TTLs in use.
	Now func() int64
	// MaxTagDelete bounds the keys one OpDeleteTag deletes; default
	// DefaultMaxTagDelete.
	MaxTagDelete int

	// valueLogFileSize, when positive, sets Badger's value log file size
	// (tests: small files for the value log collector to rewrite).
	valueLogFileSize int64
}

// Store is a node's one Badger database. It holds every partition replica
// of the node as key ranges (docs/storage.md), runs the garbage collector
// that deletes abandoned incarnations and the one that reclaims the value
// log's garbage, and, with DurabilityInterval, the periodic fsync.
//
// All methods are safe for concurrent use.
type Store struct {
	db     *badger.DB
	opts   Options
	logger *slog.Logger

	// txnBytes and txnEntries are Badger's per-transaction limits.
	txnBytes, txnEntries int64
	// logs syncs Badger's logs (DurabilityInterval's periodic sync, and
	// the writes that must be durable at once).
	logs *logSyncer
	// batchBytes bounds the op bytes of one commit round (committer.go);
	// maxGroupBytes bounds the op bytes of one write group, whose record
	// must fit in a value log file.
	batchBytes, maxGroupBytes int

	mu       sync.Mutex // guards replicas and closed; taken before closeMu and Replica.mu
	replicas map[ReplicaID]*Replica
	closed   bool
	closeErr error

	// closeMu is held shared by every database access and exclusively by
	// Close around closing Badger, so no access races the close.
	closeMu  sync.RWMutex
	dbClosed bool

	// cache holds recent point-read answers; nil without one.
	cache *readCache

	// lanes are the committers' ready lists (committer.go).
	lanes []*lane

	gcWake chan struct{}
	// vlogRewrites counts the value log files rewritten (gc.go).
	vlogRewrites atomic.Uint64
	// group runs the collectors and the periodic fsync; its quit channel
	// closes when Close begins.
	group run.Group
	quit  <-chan struct{}
}

// Open opens (or creates) the store in o.Dir. Badger's conflict detection
// is disabled: every replica has a single writer.
func Open(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("partition: Options.Dir is required")
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MaxTagDelete <= 0 {
		o.MaxTagDelete = DefaultMaxTagDelete
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
		if o.Small {
			o.MemoryBudget = SmallMemoryBudget
		}
	}
	z, compression := sizeBadger(o.MemoryBudget, o.Uncompressed, o.ReadCacheSize), options.Snappy
	if o.Uncompressed {
		compression = options.None
	}
	// With Uncompressed, blocks are read straight from the mapped tables
	// and there is no block cache; otherwise a block is decompressed into
	// the cache on a miss. Table indexes and Bloom filters stay in memory
	// (IndexCacheSize 0), so a lookup touches one data block per level at
	// most. Level 0 takes eight tables before compacting them into the
	// base level (small memtables make small level-0 tables, and each
	// level-0 compaction rewrites the overlapping base level) and stalls
	// writes at twenty. Two compactors run at once: each holds up to about
	// ten table builders while their tables are written.
	bo := badger.DefaultOptions(o.Dir).
		WithLogger(badgerLogger{logger}).
		WithDetectConflicts(false).
		WithSyncWrites(o.Durability == DurabilityAlways).
		WithMetricsEnabled(false).
		WithCompression(compression).
		WithBlockCacheSize(z.blockCache).
		WithIndexCacheSize(0).
		WithMemTableSize(z.memtable).
		WithNumMemtables(z.memtables).
		WithBaseTableSize(z.baseTable).
		WithNumLevelZeroTables(8).
		WithNumLevelZeroTablesStall(20).
		WithNumCompactors(2).
		WithValueThreshold(valueThreshold(z.memtable))
	if o.Small {
		bo = bo.WithValueLogFileSize(64 << 20).
			WithNumGoroutines(2)
	}
	if o.valueLogFileSize > 0 {
		bo = bo.WithValueLogFileSize(o.valueLogFileSize)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("partition: open store %s: %w", o.Dir, err)
	}
	s := &Store{
		db:         db,
		opts:       o,
		logger:     logger,
		txnBytes:   db.MaxBatchSize(),
		txnEntries: db.MaxBatchCount(),
		replicas:   make(map[ReplicaID]*Replica),
		gcWake:     make(chan struct{}, 1),
		cache:      newReadCache(z.readCache),
		logs:       newLogSyncer(bo.Dir, bo.ValueDir),
	}
	s.quit = s.group.Done()
	s.batchBytes = int(min(s.txnBytes/4, 4<<20))
	s.maxGroupBytes = int(bo.ValueLogFileSize / 3)
	for range committerLanes() {
		l := &lane{kick: make(chan struct{}, 1)}
		s.lanes = append(s.lanes, l)
		s.group.Go(func() { s.runCommitter(l) })
	}
	s.group.Go(s.runGC)
	s.group.Go(s.runValueLogGC)
	if o.Durability == DurabilityInterval {
		s.group.Go(s.runSync)
	}
	s.wakeGC() // crash leftovers
	return s, nil
}

// Close closes every open replica, stops the store's goroutines and closes
// Badger. It is idempotent: later calls return the first call's result.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.closeErr
	}
	s.closed = true
	reps := make([]*Replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		reps = append(reps, r)
	}
	clear(s.replicas)
	s.mu.Unlock()

	for _, r := range reps {
		r.shutdown()
	}
	s.group.Stop()
	s.group.Wait()

	s.closeMu.Lock()
	s.dbClosed = true
	err := s.db.Close()
	s.closeMu.Unlock()
	if err != nil {
		err = fmt.Errorf("partition: close store: %w", err)
	}
	s.mu.Lock()
	s.closeErr = err
	s.mu.Unlock()
	return err
}

// DB returns the underlying Badger database. It is an escape hatch for
// tests and tools; writing to it bypasses every invariant of the store.
func (s *Store) DB() *badger.DB { return s.db }

// acquire takes the shared close lock; it fails once Badger is closed.
// Callers must not hold it while taking Store.mu.
func (s *Store) acquire() error {
	s.closeMu.RLock()
	if s.dbClosed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.closeMu.RUnlock() }

func (s *Store) now() int64 { return s.opts.Now() }

// Replica opens the replica of partition part of table table, creating its
// state on first use, and caches it: while it is open every call returns the
// same *Replica.
func (s *Store) Replica(table, part uint32) (*Replica, error) {
	r, _, err := s.Open(table, part)
	return r, err
}

// Open is Replica that also reports whether the replica did not exist in
// the store before (its state was created now).
func (s *Store) Open(table, part uint32) (r *Replica, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	id := ReplicaID{table, part}
	if r := s.replicas[id]; r != nil {
		return r, false, nil
	}
	if err := s.acquire(); err != nil {
		return nil, false, err
	}
	r, created, err = s.openReplica(id)
	s.release()
	if err != nil {
		return nil, false, err
	}
	s.replicas[id] = r
	return r, created, nil
}

// openReplica loads or creates the state of id. Called with s.mu held and
// the store acquired.
func (s *Store) openReplica(id ReplicaID) (*Replica, bool, error) {
	key := stateKey(id.Table, id.Partition)
	var st State
	created := false
	err := s.db.Update(func(txn *badger.Txn) error {
		created = false
		item, err := txn.Get(key)
		if err == nil {
			b, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			st, err = unmarshalState(b)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		// A new replica: its incarnations must not collide with garbage a
		// dropped predecessor left behind.
		var top uint32
		err = iterKeys(txn, garbagePartPrefix(id.Table, id.Partition), nil, func(k []byte) (bool, error) {
			if m, ok := parseGarbageKey(k); ok {
				top = max(top, m.inc)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		st = State{FirstSeq: 1, DataInc: top + 1, LogInc: top + 1}
		created = true
		b, err := st.marshal()
		if err != nil {
			return err
		}
		return txn.Set(key, b)
	})
	if err != nil {
		return nil, false, fmt.Errorf("partition: open replica %v: %w", id, err)
	}
	r := newReplica(s, id, st)
	if err := r.countLogBytes(); err != nil {
		return nil, false, fmt.Errorf("partition: open replica %v: %w", id, err)
	}
	return r, created, nil
}

// forget removes r from the cache if it is still the cached replica.
func (s *Store) forget(r *Replica) {
	s.mu.Lock()
	if s.replicas[r.id] == r {
		delete(s.replicas, r.id)
	}
	s.mu.Unlock()
}

// Replicas returns every replica that has a state key in the store, open or
// not, in key order.
func (s *Store) Replicas() ([]ReplicaID, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	var ids []ReplicaID
	err := s.db.View(func(txn *badger.Txn) error {
		return iterKeys(txn, []byte{prefixState}, nil, func(k []byte) (bool, error) {
			if t, p, ok := parseStateKey(k); ok {
				ids = append(ids, ReplicaID{t, p})
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("partition: list replicas: %w", err)
	}
	return ids, nil
}

// Drop closes the replica of partition part of table table if it is open,
// and in one transaction marks all its incarnations as garbage and deletes
// its state. The collector then deletes its keys in the background. Dropping
// a replica that does not exist is not an error.
func (s *Store) Drop(table, part uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	id := ReplicaID{table, part}
	if r := s.replicas[id]; r != nil {
		delete(s.replicas, id)
		r.shutdown()
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	key := stateKey(table, part)
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		st, err := unmarshalState(b)
		if err != nil {
			return err
		}
		if err := txn.Set(garbageKey(table, part, garbageData, st.DataInc), nil); err != nil {
			return err
		}
		if err := txn.Set(garbageKey(table, part, garbageLog, st.LogInc), nil); err != nil {
			return err
		}
		return txn.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("partition: drop replica %v: %w", id, err)
	}
	s.wakeGC()
	return nil
}

// GetMeta returns the node-level metadata value name (key n name), or nil
// and no error when it is not set. The returned slice is the caller's.
func (s *Store) GetMeta(name string) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		if v == nil {
			v = []byte{}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("partition: get meta %q: %w", name, err)
	}
	return v, nil
}

// PutMeta stores the node-level metadata value name (key n name). The
// write is synced to disk before PutMeta returns, whatever the durability
// policy.
func (s *Store) PutMeta(name string, v []byte) error {
	return s.metaUpdate(name, func(txn *badger.Txn, k []byte) error {
		return txn.Set(k, bytes.Clone(v))
	})
}

// DeleteMeta deletes the node-level metadata value name; deleting a missing
// name is not an error. Like PutMeta it syncs before returning.
func (s *Store) DeleteMeta(name string) error {
	return s.metaUpdate(name, func(txn *badger.Txn, k []byte) error {
		return txn.Delete(k)
	})
}

// PutMetaFile stores the node-level value name in a small file of its own
// beside the store, replaced atomically and synced before PutMetaFile
// returns. Unlike PutMeta its sync does not flush the store's write-ahead
// log, so it takes a fraction of the time under a write load: it is for
// values that sit on a latency-critical path (the node's current map). name
// must be a plain file name.
func (s *Store) PutMetaFile(name string, v []byte) error {
	p, err := s.metaFile(name)
	if err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := fsutil.WriteFileSync(p, v); err != nil {
		return fmt.Errorf("partition: write meta file %q: %w", name, err)
	}
	return nil
}

// GetMetaFile returns the value PutMetaFile last stored under name, or nil
// (and no error) if there is none.
func (s *Store) GetMetaFile(name string) ([]byte, error) {
	p, err := s.metaFile(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("partition: read meta file %q: %w", name, err)
	case b == nil:
		b = []byte{}
	}
	return b, nil
}

// metaFile is the path of the meta file name. The prefix keeps it apart
// from Badger's own files, which Badger finds by their suffixes.
func (s *Store) metaFile(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("partition: bad meta file name %q", name)
	}
	return filepath.Join(s.opts.Dir, "ZEPPELIN-"+name), nil
}

func (s *Store) metaUpdate(name string, fn func(*badger.Txn, []byte) error) error {
	if name == "" {
		return errors.New("partition: empty meta name")
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	err := s.db.Update(func(txn *badger.Txn) error { return fn(txn, metaKey(name)) })
	if err == nil && s.opts.Durability != DurabilityAlways {
		err = s.logs.sync()
	}
	if err != nil {
		return fmt.Errorf("partition: write meta %q: %w", name, err)
	}
	return nil
}

// every calls fn every d until the store closes or fn returns false.
func (s *Store) every(d time.Duration, fn func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}

// runSync fsyncs the store every SyncInterval (DurabilityInterval).
func (s *Store) runSync() {
	s.every(s.opts.SyncInterval, func() bool {
		if err := s.acquire(); err != nil {
			return false
		}
		err := s.logs.sync()
		s.release()
		if err != nil {
			s.logger.Error("partition: periodic sync failed", "err", err)
		}
		return true
	})
}

// iterKeys calls fn with every key under prefix, starting at start when it is
// not nil, in key order, until fn returns false. Keys are valid only during
// the call.
func iterKeys(txn *badger.Txn, prefix, start []byte, fn func(k []byte) (bool, error)) error {
	return iterItems(txn, prefix, start, func(item *badger.Item) (bool, error) { return fn(item.Key()) })
}

// iterItems is iterKeys that passes the item: its key, version and expiry
// without reading the value, which item.Value reads on demand.
func iterItems(txn *badger.Txn, prefix, start []byte, fn func(item *badger.Item) (bool, error)) error {
	o := badger.DefaultIteratorOptions
	o.Prefix = prefix
	o.PrefetchValues = false
	it := txn.NewIterator(o)
	defer it.Close()
	if start == nil {
		start = prefix
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		more, err := fn(it.Item())
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// badgerLogger routes Badger's warnings and errors to slog.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, args ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, args...)))
}

func (b badgerLogger) Warningf(f string, args ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, args...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
