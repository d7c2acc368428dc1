package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// ReadLog returns encoded records, consecutive from seq from, whose total
// size stays within maxBytes, except that the first record is returned even
// when it alone is larger. It returns no records when from is beyond the
// last one, and an error wrapping ErrPurged when from is below FirstSeq (the
// reader needs a full sync). The returned slices are the caller's.
func (r *Replica) ReadLog(from uint64, maxBytes int) ([][]byte, error) {
	if from == 0 {
		return nil, fmt.Errorf("partition: read log of %v from seq 0: seqs start at 1", r.id)
	}
	var recs [][]byte
	err := r.view(func(txn *badger.Txn, st *State) error {
		if from < st.FirstSeq {
			return fmt.Errorf("partition: read log of %v from %d: the oldest retained record is %d: %w", r.id, from, st.FirstSeq, ErrPurged)
		}
		prefix := r.logPrefix(st.LogInc)
		o := badger.DefaultIteratorOptions
		o.Prefix = prefix
		o.PrefetchValues = false
		it := txn.NewIterator(o)
		defer it.Close()
		size, want := 0, from
		for it.Seek(binlog.LogKey(prefix, from)); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			if seq, ok := binlog.SeqOfKey(item.Key()); !ok || seq != want {
				break
			}
			if len(recs) > 0 && size+int(item.ValueSize()) > maxBytes {
				break
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			recs = append(recs, v)
			size += len(v)
			want++
		}
		return nil
	})
	if err != nil {
		return nil, r.wrapRead("read log", err)
	}
	return recs, nil
}

// WaitSeq returns nil once State().Seq > after, ctx.Err() when ctx ends
// first, and ErrClosed when the replica closes.
func (r *Replica) WaitSeq(ctx context.Context, after uint64) error {
	for {
		r.mu.Lock()
		seq, closed, ch := r.st.Seq, r.closed, r.seqCh
		r.mu.Unlock()
		if seq > after {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Decide answers a slave's replication handshake exactly, as Raft's log
// matching does: ReplContinue when the slave's last record (lastGen,
// lastSeq) is a point of this replica's log from which the retained records
// continue (both empty, or lastSeq ≤ Seq with the same generation at
// lastSeq and lastSeq+1 ≥ FirstSeq), ReplFullSync otherwise (the slave is
// empty while the master is not, ahead, diverged or too far behind), with
// a human reason.
// An incomplete replica refuses.
func (r *Replica) Decide(lastGen, lastSeq uint64) (wire.ReplAction, string) {
	st := r.State()
	switch {
	case st.Incomplete:
		return wire.ReplRefuse, "master replica is incomplete (its own full sync has not finished)"
	case lastSeq == 0 && lastGen != 0:
		return wire.ReplFullSync, fmt.Sprintf("slave reports generation %d at seq 0", lastGen)
	case lastSeq == 0 && st.Seq == 0:
		return wire.ReplContinue, "slave and master are both empty"
	case lastSeq == 0:
		// A snapshot holds each key once; the log may hold it many times.
		return wire.ReplFullSync, fmt.Sprintf("slave is empty and the master holds %d records: copy a snapshot", st.Seq)
	case lastSeq > st.Seq:
		return wire.ReplFullSync, fmt.Sprintf("slave is ahead: its last seq %d is beyond the master's %d (diverged)", lastSeq, st.Seq)
	}
	gen, ok := st.GenAt(lastSeq)
	switch {
	case !ok:
		return wire.ReplFullSync, fmt.Sprintf("generation of seq %d is unknown to the master", lastSeq)
	case gen != lastGen:
		return wire.ReplFullSync, fmt.Sprintf("slave diverged: seq %d has generation %d on the slave and %d on the master", lastSeq, lastGen, gen)
	case lastSeq+1 < st.FirstSeq:
		return wire.ReplFullSync, fmt.Sprintf("slave is behind the retained log: needs %d, oldest retained is %d", lastSeq+1, st.FirstSeq)
	}
	return wire.ReplContinue, fmt.Sprintf("slave's log is a prefix of the master's (gen %d, seq %d)", lastGen, lastSeq)
}

// Retention bounds a replica's binlog. Zero fields are unlimited.
type Retention struct {
	// MaxRecords, MaxBytes and MaxAge are soft limits: Purge removes the
	// oldest records while any is exceeded, but never a record a slave
	// still needs (seq ≥ keepFrom).
	MaxRecords int
	MaxBytes   int64
	MaxAge     time.Duration
	// HardMaxRecords and HardMaxBytes are hard caps: Purge enforces them
	// even against keepFrom; the slaves concerned then need a full sync.
	HardMaxRecords int
	HardMaxBytes   int64
	// SoloMaxBytes, when positive, is the soft byte limit (instead of a
	// larger or unlimited MaxBytes) for the log of a master that no slave
	// can continue from: the master of a partition of a table of
	// replication factor 1 that has no slave or learner. Its log serves
	// only slaves added later (a raised replication factor, a move), and
	// those start with a full sync whose snapshot's successors are kept
	// for them; MaxAge and the hard caps apply as usual. Purge does not
	// look at it: the data node passes Solo() for such a master.
	SoloMaxBytes int64
}

// Solo returns the retention of a master no slave can continue from: p with
// MaxBytes lowered to SoloMaxBytes when that is set and smaller.
func (p Retention) Solo() Retention {
	if p.SoloMaxBytes > 0 && (p.MaxBytes <= 0 || p.SoloMaxBytes < p.MaxBytes) {
		p.MaxBytes = p.SoloMaxBytes
	}
	return p
}

// Purge removes the oldest records while the log exceeds a soft limit of p,
// never removing records ≥ keepFrom (pass math.MaxUint64 when no slave
// needs any) unless a hard cap is exceeded. It first moves FirstSeq in its
// own transaction, then deletes the records below it in bounded
// transactions; leftovers of an interrupted purge are deleted by the next
// one. It returns the number of records removed from the retained log.
// Byte sizes are those Badger reports for the stored records, approximate
// for records kept in its value log.
func (r *Replica) Purge(p Retention, keepFrom uint64) (int, error) {
	r.purgeMu.Lock()
	defer r.purgeMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, ErrClosed
	}
	st, total := r.st.clone(), r.logBytes
	r.mu.Unlock()
	if st.Incomplete {
		return 0, ErrIncomplete
	}

	// Decide the new FirstSeq from the records' sizes and times.
	newFirst, removedBytes := st.FirstSeq, int64(0)
	count := int64(st.Seq + 1 - st.FirstSeq)
	cutoff := int64(0)
	if p.MaxAge > 0 {
		cutoff = r.s.now() - p.MaxAge.Milliseconds()
	}
	if count > 0 {
		err := r.view(func(txn *badger.Txn, cur *State) error {
			if cur.LogInc != st.LogInc {
				return nil // a full sync replaced the log meanwhile
			}
			prefix := r.logPrefix(st.LogInc)
			o := badger.DefaultIteratorOptions
			o.Prefix = prefix
			o.PrefetchValues = false
			it := txn.NewIterator(o)
			defer it.Close()
			for it.Seek(binlog.LogKey(prefix, st.FirstSeq)); it.ValidForPrefix(prefix); it.Next() {
				item := it.Item()
				seq, ok := binlog.SeqOfKey(item.Key())
				if !ok || seq != newFirst || seq > st.Seq {
					break
				}
				hard := (p.HardMaxRecords > 0 && count > int64(p.HardMaxRecords)) ||
					(p.HardMaxBytes > 0 && total > p.HardMaxBytes)
				soft := (p.MaxRecords > 0 && count > int64(p.MaxRecords)) ||
					(p.MaxBytes > 0 && total > p.MaxBytes)
				if !soft && !hard && p.MaxAge > 0 && seq < keepFrom {
					var ts int64
					err := item.Value(func(v []byte) error {
						var err error
						_, _, ts, err = binlog.Peek(v)
						return err
					})
					if err != nil {
						return err
					}
					soft = ts < cutoff
				}
				if !hard && !(soft && seq < keepFrom) {
					break
				}
				sz := recordSize(item)
				count--
				total -= sz
				removedBytes += sz
				newFirst++
			}
			return nil
		})
		if err != nil {
			return 0, r.wrapRead("purge", err)
		}
	}
	removed := int(newFirst - st.FirstSeq)
	if removed > 0 {
		moved, err := r.moveFirstSeq(st, newFirst, removedBytes)
		if err != nil {
			return 0, err
		}
		if !moved {
			removed = 0
		}
	}
	// Delete everything below FirstSeq, including leftovers of earlier
	// purges that a crash interrupted. The first purge of an incarnation
	// scans it from its start; later ones start where the last one
	// finished: the tombstones below stay in the LSM tree until compaction
	// drops them, and skipping them costs a read of every block that held
	// the deleted records.
	r.mu.Lock()
	cur := r.st
	r.mu.Unlock()
	if cur.LogInc == st.LogInc {
		prefix := r.logPrefix(cur.LogInc)
		start := prefix
		if r.purged.inc == cur.LogInc && r.purged.seq > 0 {
			if r.purged.seq >= cur.FirstSeq {
				return removed, nil
			}
			start = binlog.LogKey(prefix, r.purged.seq)
		}
		if err := r.s.deleteRange(prefix, start, binlog.LogKey(prefix, cur.FirstSeq)); err != nil {
			return removed, fmt.Errorf("partition: purge %v: %w", r.id, err)
		}
		r.purged = logMark{inc: cur.LogInc, seq: cur.FirstSeq}
	}
	return removed, nil
}

// logMark is a position in one incarnation of a replica's log.
type logMark struct {
	inc uint32
	seq uint64
}

// moveFirstSeq commits FirstSeq = newFirst unless the log changed meanwhile;
// it reports whether it did.
func (r *Replica) moveFirstSeq(old State, newFirst uint64, removedBytes int64) (bool, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	ws, err := r.liveState(false)
	if err != nil {
		return false, err
	}
	if ws.LogInc != old.LogInc || ws.FirstSeq != old.FirstSeq || newFirst > ws.Seq+1 {
		return false, nil // a full sync got there first
	}
	if err := r.s.acquire(); err != nil {
		return false, err
	}
	defer r.s.release()
	ws.FirstSeq = newFirst
	txn := r.s.db.NewTransaction(true)
	defer txn.Discard()
	if err := r.putState(txn, ws); err != nil {
		return false, err
	}
	if err := txn.Commit(); err != nil {
		return false, fmt.Errorf("partition: purge %v: %w", r.id, err)
	}
	r.setState(ws, -removedBytes)
	return true, nil
}
