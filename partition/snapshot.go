package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Snapshot is a consistent export of a replica's data for a full sync: one
// Badger read transaction that read the state and iterates the data
// incarnation in force, so its entries are exactly the data after record Seq.
// Read it with Next and release it with Close. A Snapshot is not safe for
// concurrent use, except that Close may be called at any time.
type Snapshot struct {
	// Gen and Seq are the generation and seq of the last record the
	// snapshot reflects; History is the generation history up to Seq.
	Gen     uint64
	Seq     uint64
	History []GenStart

	r      *Replica
	now    int64
	mu     sync.Mutex
	txn    *badger.Txn
	it     *badger.Iterator
	prefix []byte
	closed bool
}

// Snapshot opens a consistent export of the replica's data. The caller must
// Close it; closing the replica closes it too. Writes go on meanwhile.
func (r *Replica) Snapshot() (*Snapshot, error) {
	if err := r.s.acquire(); err != nil {
		return nil, err
	}
	defer r.s.release()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	txn := r.s.db.NewTransaction(false)
	item, err := txn.Get(r.stKey)
	var st State
	if err == nil {
		var b []byte
		if b, err = item.ValueCopy(nil); err == nil {
			st, err = unmarshalState(b)
		}
	}
	if err != nil {
		txn.Discard()
		return nil, fmt.Errorf("partition: snapshot of %v: read state: %w", r.id, err)
	}
	if st.Incomplete {
		txn.Discard()
		return nil, ErrIncomplete
	}
	if !slices.IsSortedFunc(st.History, func(a, b GenStart) int { return cmpU64(a.Seq, b.Seq) }) {
		txn.Discard()
		return nil, fmt.Errorf("partition: snapshot of %v: history out of order", r.id)
	}
	hist := st.History
	for len(hist) > 0 && hist[len(hist)-1].Seq > st.Seq {
		hist = hist[:len(hist)-1]
	}
	sn := &Snapshot{
		Gen:     st.Gen,
		Seq:     st.Seq,
		History: slices.Clone(hist),
		r:       r,
		now:     r.s.now(),
		txn:     txn,
		prefix:  r.dataPrefix(st.DataInc),
	}
	o := badger.DefaultIteratorOptions
	o.Prefix = sn.prefix
	// Next copies each value once, straight into its chunk; prefetching
	// would copy every value that sits in the LSM tree once more.
	o.PrefetchValues = false
	sn.it = txn.NewIterator(o)
	sn.it.Seek(sn.prefix)

	r.snapsMu.Lock()
	if r.snapsShut {
		r.snapsMu.Unlock()
		sn.it.Close()
		txn.Discard()
		return nil, ErrClosed
	}
	r.snaps[sn] = struct{}{}
	r.snapsMu.Unlock()
	return sn, nil
}

// snapBufBytes bounds each buffer Next allocates for a chunk's keys and
// values (a larger entry gets a buffer of its own).
const snapBufBytes = 1 << 20

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Next returns the next entries, in key order, whose keys and values total
// about maxBytes (at least one entry while any remain). Keys expired when
// the snapshot was taken are skipped; ExpireAt stays absolute. done is true
// once the last entry has been returned. The entries are the caller's; their
// keys and values share a few large buffers, each slice capped at its own
// length.
func (sn *Snapshot) Next(maxBytes int) (entries []wire.SnapEntry, done bool, err error) {
	var buf []byte
	size := 0
	done, err = sn.scan(maxBytes, func(k []byte, exp int64, v []byte) {
		need := len(k) + len(v)
		if cap(buf)-len(buf) < need {
			buf = make([]byte, 0, max(need, min(maxBytes-size, snapBufBytes)))
		}
		size += need
		start := len(buf)
		buf = append(buf, k...)
		buf = append(buf, v...)
		e := wire.SnapEntry{ExpireAt: exp}
		e.Key = buf[start : start+len(k) : start+len(k)]
		e.Value = buf[start+len(k) : len(buf) : len(buf)]
		buf = buf[len(buf):]
		entries = append(entries, e)
	})
	if err != nil {
		return nil, false, err
	}
	return entries, done, nil
}

// NextPacked is Next returning the entries in the packed form of
// wire.SnapChunkReply.Packed (wire.AppendSnapEntry), all in one buffer,
// and their number: each value is copied once, from the store into the
// buffer that goes to the network.
func (sn *Snapshot) NextPacked(maxBytes int) (packed []byte, n int, done bool, err error) {
	// One entry's framing is at most 3 uvarints; a chunk usually ends
	// within an entry of maxBytes.
	packed = make([]byte, 0, maxBytes+maxBytes/16+64<<10)
	done, err = sn.scan(maxBytes, func(k []byte, exp int64, v []byte) {
		packed = wire.AppendSnapEntry(packed, k, exp, v)
		n++
	})
	if err != nil {
		return nil, 0, false, err
	}
	return packed, n, done, nil
}

// scan passes add the next live entries, in key order, until their keys
// and values total maxBytes or more (at least one while any remain), and
// reports whether the last one has been passed. The slices add gets are
// valid only during the call.
func (sn *Snapshot) scan(maxBytes int, add func(k []byte, exp int64, v []byte)) (done bool, err error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return false, ErrClosed
	}
	if err := sn.r.s.acquire(); err != nil {
		return false, err
	}
	defer sn.r.s.release()
	size, n := 0, 0
	for ; sn.it.ValidForPrefix(sn.prefix); sn.it.Next() {
		if size >= maxBytes && n > 0 {
			return false, nil
		}
		item := sn.it.Item()
		k := item.Key()[len(sn.prefix):]
		// The stored value is uvarint(expireAt) ‖ value.
		err := item.Value(func(b []byte) error {
			exp, v, err := decodeValue(b)
			if err != nil || !live(exp, sn.now) {
				return err
			}
			add(k, exp, v)
			size += len(k) + len(v)
			n++
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("partition: snapshot of %v: %w", sn.r.id, err)
		}
	}
	return true, nil
}

// Close releases the snapshot's transaction. It is idempotent.
func (sn *Snapshot) Close() {
	sn.mu.Lock()
	if !sn.closed {
		sn.closed = true
		sn.it.Close()
		sn.txn.Discard()
	}
	sn.mu.Unlock()
	sn.r.snapsMu.Lock()
	delete(sn.r.snaps, sn)
	sn.r.snapsMu.Unlock()
}

// BeginLoad starts loading a full-sync snapshot into a slave replica. In one
// transaction it marks the current data and log incarnations as garbage,
// switches to fresh ones and resets the state to empty and Incomplete: the
// old copy is discarded at once, since a diverged replica must never keep
// data the cluster lost. It may be called again at any time, which restarts
// the load.
func (r *Replica) BeginLoad() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	old, err := r.liveState(true)
	if err != nil {
		return err
	}
	if _, master := r.IsMaster(); master {
		return fmt.Errorf("partition: load into %v, which is a master", r.id)
	}
	if err := r.s.acquire(); err != nil {
		return err
	}
	defer r.s.release()
	inc := old.nextInc()
	ws := State{FirstSeq: 1, DataInc: inc, LogInc: inc, Incomplete: true}
	txn := r.s.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(garbageKey(r.id.Table, r.id.Partition, garbageData, old.DataInc), nil); err != nil {
		return fmt.Errorf("partition: begin load of %v: %w", r.id, err)
	}
	if err := txn.Set(garbageKey(r.id.Table, r.id.Partition, garbageLog, old.LogInc), nil); err != nil {
		return fmt.Errorf("partition: begin load of %v: %w", r.id, err)
	}
	if err := r.putState(txn, ws); err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("partition: begin load of %v: %w", r.id, err)
	}
	r.mu.Lock()
	r.logBytes = 0
	r.mu.Unlock()
	r.setState(ws, 0)
	return nil
}

// LoadChunk writes snapshot entries into the replica being loaded (between
// BeginLoad and FinishLoad), with their hashtag index entries and Badger
// expiry. Entries that have already expired are skipped. A chunk holding an
// invalid entry is refused before anything is written. LoadChunk does not
// keep entries.
func (r *Replica) LoadChunk(entries []wire.SnapEntry) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	st, err := r.liveState(true)
	if err != nil {
		return err
	}
	if !st.Incomplete {
		return fmt.Errorf("partition: load chunk into %v without BeginLoad", r.id)
	}
	if err := r.s.acquire(); err != nil {
		return err
	}
	defer r.s.release()
	now := r.s.now()
	dp, ip := r.dataPrefix(st.DataInc), r.indexPrefix(st.DataInc)
	// Every key and value of the chunk is built in one buffer and every
	// Badger entry in one slice: the write batch holds them until Flush.
	n, tags := 0, 0
	for i := range entries {
		e := &entries[i]
		if len(e.Key) == 0 || incPrefixLen+len(e.Key) > maxBadgerKey {
			return fmt.Errorf("partition: load chunk into %v: entry %d has an invalid key of %d bytes", r.id, i, len(e.Key))
		}
		if e.ExpireAt < 0 {
			return fmt.Errorf("partition: load chunk into %v: entry %d has a negative expiry", r.id, i)
		}
		n += len(dp) + len(e.Key) + binary.MaxVarintLen64 + len(e.Value)
		if placement.Hashtag(e.Key) != nil {
			tags++
		}
	}
	buf := make([]byte, 0, n)
	ents := make([]badger.Entry, 0, len(entries)+tags)
	wb := r.s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range entries {
		e := &entries[i]
		if !live(e.ExpireAt, now) {
			continue
		}
		exp := badgerExpiry(e.ExpireAt)
		start := len(buf)
		buf = append(buf, dp...)
		buf = append(buf, e.Key...)
		mid := len(buf)
		buf = binary.AppendUvarint(buf, uint64(e.ExpireAt))
		buf = append(buf, e.Value...)
		ents = append(ents, badger.Entry{Key: buf[start:mid:mid], Value: buf[mid:len(buf):len(buf)], ExpiresAt: exp})
		if err := wb.SetEntry(&ents[len(ents)-1]); err != nil {
			return fmt.Errorf("partition: load chunk into %v: %w", r.id, err)
		}
		if tag := placement.Hashtag(e.Key); tag != nil {
			ents = append(ents, badger.Entry{Key: withSuffix(tagPrefix(ip, tag), e.Key), ExpiresAt: exp})
			if err := wb.SetEntry(&ents[len(ents)-1]); err != nil {
				return fmt.Errorf("partition: load chunk into %v: %w", r.id, err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("partition: load chunk into %v: %w", r.id, err)
	}
	return nil
}

// FinishLoad completes a full sync: in one transaction the state becomes the
// snapshot's (gen, seq) with its history, FirstSeq = seq+1 and no longer
// Incomplete. Replication then continues from seq+1. FinishLoad syncs the
// store before it returns, whatever the durability policy, so that a
// migration that hands the partition over once the copy is complete does
// not depend on the next periodic sync. The state is written after the
// last entry, and Badger replays a memtable's write-ahead log only up to
// its first damaged entry, so a crash never leaves the state without the
// entries of its own memtable. (Badger's sync covers the active memtable's
// log only: entries in a memtable waiting for its flush are on disk once
// it is flushed.)
func (r *Replica) FinishLoad(gen, seq uint64, history []wire.GenStart) error {
	if err := checkHistory(gen, seq, history); err != nil {
		return fmt.Errorf("partition: finish load of %v: %w", r.id, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	ws, err := r.liveState(true)
	if err != nil {
		return err
	}
	if !ws.Incomplete {
		return fmt.Errorf("partition: finish load of %v without BeginLoad", r.id)
	}
	if err := r.s.acquire(); err != nil {
		return err
	}
	defer r.s.release()
	ws.Gen, ws.Seq, ws.FirstSeq, ws.Incomplete = gen, seq, seq+1, false
	ws.History = slices.Clone(history)
	txn := r.s.db.NewTransaction(true)
	defer txn.Discard()
	if err := r.putState(txn, ws); err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("partition: finish load of %v: %w", r.id, err)
	}
	if r.s.opts.Durability != DurabilityAlways {
		if err := r.s.logs.sync(); err != nil {
			// The state in memory stays Incomplete; the copy is loaded
			// again, or found complete after a restart.
			return fmt.Errorf("partition: finish load of %v: sync: %w", r.id, err)
		}
	}
	r.setState(ws, 0)
	return nil
}

// checkHistory validates a snapshot's generation history against its
// position.
func checkHistory(gen, seq uint64, h []wire.GenStart) error {
	for i := range h {
		if h[i].Seq == 0 || h[i].Seq > seq {
			return fmt.Errorf("history entry %d (gen %d, seq %d) outside 1..%d", i, h[i].Gen, h[i].Seq, seq)
		}
		if i > 0 && (h[i].Seq <= h[i-1].Seq || h[i].Gen <= h[i-1].Gen) {
			return errors.New("history not strictly increasing")
		}
	}
	if seq > 0 && (len(h) == 0 || h[len(h)-1].Gen != gen) {
		return fmt.Errorf("history does not end with generation %d", gen)
	}
	return nil
}
