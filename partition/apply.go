package partition

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
)

// Apply appends encoded records, received from the master, to a slave
// replica: it applies their effects exactly as the master did, stores the
// record bytes unchanged, extends the History when the generation changes and
// updates the state, all in one transaction (several, each with its own state
// update, only when the records do not fit in one).
//
// The records must continue the replica's log: the first one's seq must be
// State().Seq+1 and the rest consecutive, else the error wraps ErrGap. A
// record from a generation older than the replica's is rejected with an
// error wrapping ErrStaleGen, a malformed one with an error wrapping
// binlog.ErrCorrupt. When any record is rejected none is applied.
//
// Apply fails on a master (demote it first), on an incomplete replica
// (ErrIncomplete) and after Close (ErrClosed).
func (r *Replica) Apply(records [][]byte) error {
	if len(records) == 0 {
		return nil
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	st, err := r.liveState(false)
	if err != nil {
		return err
	}
	if _, master := r.IsMaster(); master {
		return fmt.Errorf("partition: apply to %v, which is a master", r.id)
	}
	recs := make([]binlog.Record, len(records))
	next, gen := st.Seq+1, st.Gen
	for i, b := range records {
		rec, err := binlog.Decode(b)
		if err != nil {
			return fmt.Errorf("partition: apply to %v: record %d of %d: %w", r.id, i, len(records), err)
		}
		if rec.Seq != next {
			return fmt.Errorf("partition: apply to %v: record seq %d, want %d: %w", r.id, rec.Seq, next, ErrGap)
		}
		if rec.Gen < gen {
			return fmt.Errorf("partition: apply to %v: record %d has generation %d, below %d: %w", r.id, rec.Seq, rec.Gen, gen, ErrStaleGen)
		}
		recs[i] = rec
		next, gen = next+1, rec.Gen
	}
	if err := r.s.acquire(); err != nil {
		return err
	}
	defer r.s.release()
	return r.applyRecords(records, recs)
}

// applyRecords commits records in one transaction, halving the range while
// it is too big for one.
func (r *Replica) applyRecords(raw [][]byte, recs []binlog.Record) error {
	err := r.applyTxn(raw, recs)
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	if len(recs) == 1 {
		return fmt.Errorf("partition: apply to %v: record %d exceeds the store's transaction limit (%d bytes, %d entries): %w",
			r.id, recs[0].Seq, r.s.txnBytes, r.s.txnEntries, err)
	}
	h := len(recs) / 2
	if err := r.applyRecords(raw[:h], recs[:h]); err != nil {
		return err
	}
	return r.applyRecords(raw[h:], recs[h:])
}

func (r *Replica) applyTxn(raw [][]byte, recs []binlog.Record) error {
	ws, err := r.liveState(false)
	if err != nil {
		return err
	}
	txn := r.s.db.NewTransaction(true)
	defer txn.Discard()
	var added int64
	for i := range recs {
		rec := &recs[i]
		if rec.Gen != ws.Gen || len(ws.History) == 0 {
			ws.History = append(ws.History, GenStart{Gen: rec.Gen, Seq: rec.Seq})
			ws.Gen = rec.Gen
		}
		if err := r.applyEffects(txn, &ws, rec.Effects); err != nil {
			return wrapTxn(r, err)
		}
		key := binlog.LogKey(r.logPrefix(ws.LogInc), rec.Seq)
		if err := txn.Set(key, raw[i]); err != nil {
			return wrapTxn(r, err)
		}
		ws.Seq = rec.Seq
		added += int64(len(key) + len(raw[i]))
	}
	if err := r.putState(txn, ws); err != nil {
		return wrapTxn(r, err)
	}
	if err := txn.Commit(); err != nil {
		return wrapTxn(r, err)
	}
	r.setState(ws, added)
	return nil
}

func wrapTxn(r *Replica, err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	return fmt.Errorf("partition: apply to %v: %w", r.id, err)
}
