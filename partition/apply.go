package partition

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/placement"
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

// applyTxn commits records in one transaction, storing each one's bytes as
// received.
func (r *Replica) applyTxn(raw [][]byte, recs []binlog.Record) error {
	ws, err := r.liveState(false)
	if err != nil {
		return err
	}
	a := r.newAppender(ws)
	defer a.discard()
	for i := range recs {
		if err := a.append(recs[i], raw[i]); err != nil {
			return wrapTxn(r, err)
		}
	}
	if err := a.commit(); err != nil {
		return wrapTxn(r, err)
	}
	return nil
}

func wrapTxn(r *Replica, err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	return fmt.Errorf("partition: apply to %v: %w", r.id, err)
}

// appender appends records to a replica's log in one write transaction.
// It is the one definition of committing a record, shared by the master's
// committer and the slave's Apply: the record's effects, its log entry and
// the replica's State change together, and the State becomes the replica's
// only when the transaction commits. The caller holds writeMu.
type appender struct {
	r     *Replica
	txn   *badger.Txn
	ws    State // the State as of the records appended so far
	n     int   // records appended
	added int64 // log bytes appended
	// effects are, record by record, the sets and deletes of the
	// replica's current data incarnation, for the read cache: the commit
	// removes their keys first and writes their answers through after.
	// Once a record clears the incarnation (cleared), the rest go to a new
	// one no reader has seen. nEffects counts them; written indexes
	// their keys once there are more than a scan should look through.
	effects  [][]binlog.Effect
	nEffects int
	written  map[string]struct{}
	cleared  bool
}

// scanWritten is how many effects cacheable looks through one by one
// before it indexes them.
const scanWritten = 16

// cacheable reports whether a read of key within the batch may be answered
// by the read cache: the store has one, no record of the batch so far has
// cleared the data or written key.
func (a *appender) cacheable(key []byte) bool {
	if a == nil || a.r.s.cache == nil || a.cleared {
		return false
	}
	if a.nEffects <= scanWritten {
		for _, es := range a.effects {
			for i := range es {
				if bytes.Equal(es[i].Key, key) {
					return false
				}
			}
		}
		return true
	}
	if a.written == nil {
		a.written = make(map[string]struct{}, 2*a.nEffects)
		for _, es := range a.effects {
			a.index(es)
		}
	}
	_, w := a.written[string(key)]
	return !w
}

func (a *appender) index(es []binlog.Effect) {
	for i := range es {
		a.written[string(es[i].Key)] = struct{}{}
	}
}

// newAppender starts a transaction that appends to a replica whose state is
// ws, a copy the appender may change (liveState's). The caller must discard
// the appender.
func (r *Replica) newAppender(ws State) appender {
	return appender{r: r, txn: r.s.db.NewTransaction(true), ws: ws}
}

// append adds rec, which must be the record after the working state's last:
// it extends the History when rec starts a generation, applies rec's
// effects and puts its log entry. raw is rec's encoding as received, stored
// unchanged; nil encodes rec. After an error the appender must only be
// discarded.
func (a *appender) append(rec binlog.Record, raw []byte) error {
	ws := &a.ws
	if rec.Gen != ws.Gen || len(ws.History) == 0 {
		ws.History = append(ws.History, GenStart{Gen: rec.Gen, Seq: rec.Seq})
		ws.Gen = rec.Gen
	}
	if a.r.s.cache != nil && !a.cleared {
		es := rec.Effects
		for i := range es {
			if es[i].Kind == binlog.EffectClear {
				es, a.cleared = es[:i], true
				break
			}
		}
		if len(es) > 0 {
			a.effects = append(a.effects, es)
			a.nEffects += len(es)
			if a.written != nil {
				a.index(es)
			}
		}
	}
	if err := a.r.applyEffects(a.txn, ws, rec.Effects); err != nil {
		return err
	}
	if raw == nil {
		raw = rec.AppendEncode(make([]byte, 0, rec.EncodedSize()))
	}
	key := binlog.LogKey(a.r.logPrefix(ws.LogInc), rec.Seq)
	if err := a.txn.Set(key, raw); err != nil {
		return err
	}
	ws.Seq = rec.Seq
	a.n++
	a.added += int64(len(key) + len(raw))
	return nil
}

// commit puts the working state and commits the transaction, then makes the
// working state the replica's. With no record appended it commits nothing.
func (a *appender) commit() error {
	if a.n == 0 {
		return nil
	}
	if err := a.prepare(); err != nil {
		return err
	}
	err := a.txn.Commit()
	a.finish(err == nil)
	return err
}

// prepare puts the working state in the transaction and begins the
// commit's side of the read cache's protocol: the cache forgets the keys
// before Badger's commit and counts the commit until the state is
// installed (cache.go). The transaction's commit follows (it may carry
// other replicas' appenders too), then finish, whether it succeeded or
// not. After an error nothing was begun.
func (a *appender) prepare() error {
	if err := a.r.putState(a.txn, a.ws); err != nil {
		return err
	}
	a.r.committing.Store(a.ws.Seq)
	a.r.cacheBeginCommit(a.effects)
	return nil
}

// finish ends what prepare began: once the transaction has committed
// (committed), it makes the working state the replica's and writes the
// records' answers through to the read cache.
func (a *appender) finish(committed bool) {
	if committed {
		if h := a.r.testHookCommitted; h != nil {
			h()
		}
		a.r.setState(a.ws, a.added)
		a.writeThrough()
	}
	a.r.cacheEndCommit()
	a.r.committing.Store(0)
}

// writeThrough caches the answers the committed records left, while the
// commit is still counted (no reader can fill meanwhile): a read, or the
// next write's evaluation, of a key just written finds it without going
// to Badger. After a clear the keys belong to a new incarnation; they are
// left to readers.
func (a *appender) writeThrough() {
	c := a.r.s.cache
	if c == nil || a.cleared || a.ws.Incomplete {
		return
	}
	var buf [96]byte
	yes := func() bool { return true }
	for _, es := range a.effects {
		for i := range es {
			e := &es[i]
			ans := cacheAnswer{seq: a.ws.Seq}
			if e.Kind == binlog.EffectSet {
				ans.value, ans.exp, ans.found = e.Value, e.ExpireAt, true
			}
			c.fill(cacheKey(buf[:0], a.r.cacheTag, e.Key), ans, yes)
		}
	}
}

// discard ends the transaction; after commit it does nothing.
func (a *appender) discard() { a.txn.Discard() }

// applyEffects writes effects into txn at the replica's current data
// incarnation, exactly as every replica does for the same record: sets with
// their absolute expiry (and the hashtag index entry), deletes, and clear,
// which moves ws to a fresh data incarnation and marks the old one as
// garbage.
func (r *Replica) applyEffects(txn *badger.Txn, ws *State, effects []binlog.Effect) error {
	dp, ip := r.dataPrefix(ws.DataInc), r.indexPrefix(ws.DataInc)
	for i := range effects {
		e := &effects[i]
		switch e.Kind {
		case binlog.EffectSet:
			exp := badgerExpiry(e.ExpireAt)
			ent := badger.NewEntry(withSuffix(dp, e.Key), encodeValue(e.ExpireAt, e.Value))
			ent.ExpiresAt = exp
			if err := txn.SetEntry(ent); err != nil {
				return err
			}
			if tag := placement.Hashtag(e.Key); tag != nil {
				ie := badger.NewEntry(withSuffix(tagPrefix(ip, tag), e.Key), nil)
				ie.ExpiresAt = exp
				if err := txn.SetEntry(ie); err != nil {
					return err
				}
			}
		case binlog.EffectDelete:
			if err := txn.Delete(withSuffix(dp, e.Key)); err != nil {
				return err
			}
			if tag := placement.Hashtag(e.Key); tag != nil {
				if err := txn.Delete(withSuffix(tagPrefix(ip, tag), e.Key)); err != nil {
					return err
				}
			}
		case binlog.EffectClear:
			if err := txn.Set(garbageKey(r.id.Table, r.id.Partition, garbageData, ws.DataInc), nil); err != nil {
				return err
			}
			ws.DataInc = ws.nextInc()
			dp, ip = r.dataPrefix(ws.DataInc), r.indexPrefix(ws.DataInc)
		default:
			return fmt.Errorf("partition: unknown effect kind %v", e.Kind)
		}
	}
	return nil
}
