package partition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// maxBatchGroups bounds the write groups of one sequencer commit.
const maxBatchGroups = 512

// Request states.
const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// request is one write group waiting for the sequencer.
type request struct {
	ops   []wire.Op
	size  int
	state atomic.Int32
	done  chan outcome // buffered: the sequencer never blocks on it
}

type outcome struct {
	res []wire.OpResult
	err error
}

// Promote makes the replica a master that stamps new records with gen, and
// starts its sequencer if it is not running. gen must be at least the
// generation of the replica's last record (else the error wraps
// ErrStaleGen); a new generation enters the History at the first record
// written under it. Promoting a master again changes the generation of the
// records that follow.
func (r *Replica) Promote(gen uint64) error {
	if gen == 0 {
		return errors.New("partition: promote to generation 0")
	}
	r.roleMu.Lock()
	defer r.roleMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.st.Incomplete:
		return ErrIncomplete
	case gen < r.st.Gen:
		return fmt.Errorf("partition: promote %v to generation %d below its last record's %d: %w", r.id, gen, r.st.Gen, ErrStaleGen)
	}
	r.gen = gen
	r.master = true
	if r.seqStop == nil {
		r.seqStop = make(chan struct{})
		r.seqStopped = make(chan struct{})
		go r.runSequencer(r.seqStop, r.seqStopped)
	}
	return nil
}

// Demote stops accepting writes: later Write calls fail with ErrNotMaster,
// and so do queued groups the sequencer has not taken. It returns once the
// group commit in progress, if any, has committed and the sequencer has
// exited. Demoting a replica that is not a master does nothing.
func (r *Replica) Demote() {
	r.roleMu.Lock()
	defer r.roleMu.Unlock()
	r.mu.Lock()
	r.master = false
	stop := r.seqStop
	r.seqStop = nil
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-r.seqStopped
	}
	r.failPending()
}

// IsMaster reports whether the replica accepts writes, and under which
// generation.
func (r *Replica) IsMaster() (gen uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen, r.master
}

// Write applies ops as one atomic group: either every op takes effect, in
// order, or (when one fails) none does and the error is returned. A group
// that changes anything gets the next seq and one binlog record, committed
// in the same transaction as its data. The sequencer commits many
// concurrent groups together.
//
// Relative TTLs are milliseconds and become absolute expiries (now+TTL) here;
// a key is live when it exists and its expiry is after now. Per op:
//
//   - OpSet: Cond IfAbsent/IfPresent test the live key; TTL > 0 sets an
//     expiry, TTL == 0 clears it unless KeepTTL keeps the live key's;
//     ReturnOld fills Found/Old; Done reports the write.
//   - OpDelete: Done when the key was live (only then is anything logged).
//   - OpIncr: the live value must be a Redis integer (CodeNotInteger) and the
//     sum must fit in int64 (CodeOverflow); a missing key counts as 0; the
//     expiry is kept; Int is the new value, logged as a set.
//   - OpExpire: on a live key, TTL > 0 sets a new expiry and TTL ≤ 0 deletes
//     it; Done when the key was live.
//   - OpPersist: Done when the live key had an expiry, which is removed.
//   - OpDeleteTag (Key = the hashtag): deletes up to Options.MaxTagDelete
//     live keys with that hashtag, fewer when their bytes would not fit in
//     one transaction; Int is how many (loop until 0).
//   - OpFlush: deletes every key (a fresh data incarnation); Done.
//
// Client-visible problems are *wire.Error values: CodeInvalid (bad op, limit
// exceeded), CodeNotInteger and CodeOverflow (OpIncr). Write fails with
// ErrNotMaster when the replica is not promoted, ErrClosed after Close.
//
// If ctx ends while the group is still queued, Write returns ctx.Err() and
// the group is not applied; if the sequencer has already taken it, the
// group is applied and Write returns ctx.Err() without its results.
//
// Write takes ownership of the byte slices in ops: the caller must not
// modify them afterwards. Returned slices are the caller's.
func (r *Replica) Write(ctx context.Context, ops []wire.Op) ([]wire.OpResult, error) {
	size, err := r.validate(ops)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := &request{ops: ops, size: size, done: make(chan outcome, 1)}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, ErrClosed
	case !r.master:
		r.mu.Unlock()
		return nil, ErrNotMaster
	}
	r.pending = append(r.pending, req)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case o := <-req.done:
		return o.res, o.err
	case <-ctx.Done():
		// Either the group was still queued and now never will be taken,
		// or it was taken and will be applied; its result is dropped.
		req.state.CompareAndSwap(reqQueued, reqCancelled)
		return nil, ctx.Err()
	}
}

// validate checks ops statically and returns their byte size.
func (r *Replica) validate(ops []wire.Op) (int, error) {
	size := 0
	for i := range ops {
		op := &ops[i]
		switch op.Type {
		case wire.OpSet, wire.OpDelete, wire.OpIncr, wire.OpExpire, wire.OpPersist, wire.OpDeleteTag:
			if len(op.Key) == 0 {
				return 0, wire.Errorf(wire.CodeInvalid, "op %d (%v): empty key", i, op.Type)
			}
		case wire.OpFlush:
		default:
			return 0, wire.Errorf(wire.CodeInvalid, "op %d: unknown op type %d", i, op.Type)
		}
		if op.Type == wire.OpSet && op.TTL < 0 {
			return 0, wire.Errorf(wire.CodeInvalid, "op %d (set): negative TTL %d", i, op.TTL)
		}
		if op.Type != wire.OpDeleteTag && op.Type != wire.OpFlush {
			if n := incPrefixLen + len(op.Key); n > maxBadgerKey {
				return 0, wire.Errorf(wire.CodeInvalid, "op %d: key of %d bytes exceeds the store's limit of %d", i, len(op.Key), maxBadgerKey-incPrefixLen)
			}
			if tag := placement.Hashtag(op.Key); tag != nil {
				if n := incPrefixLen + uvarintLen(uint64(len(tag))) + len(tag) + len(op.Key); n > maxBadgerKey {
					return 0, wire.Errorf(wire.CodeInvalid, "op %d: key of %d bytes with a %d-byte hashtag exceeds the store's index key limit of %d", i, len(op.Key), len(tag), maxBadgerKey)
				}
			}
		}
		size += len(op.Key) + len(op.Value) + 16
	}
	if limit := r.s.maxGroupBytes; size > limit {
		return 0, wire.Errorf(wire.CodeInvalid, "write group of %d bytes exceeds the store's limit of %d bytes", size, limit)
	}
	return size, nil
}

// failPending fails every queued, untaken group: ErrClosed after Close,
// ErrNotMaster otherwise.
func (r *Replica) failPending() {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	err := ErrNotMaster
	if r.closed {
		err = ErrClosed
	}
	r.mu.Unlock()
	for _, req := range pending {
		if req.state.CompareAndSwap(reqQueued, reqTaken) {
			req.done <- outcome{err: err}
		}
	}
}

// runSequencer is the replica's write sequencer: it takes the queued groups
// in batches and commits each batch in one transaction.
func (r *Replica) runSequencer(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	for {
		select {
		case <-stop:
			return
		case <-r.kick:
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			batch, gen := r.take()
			if len(batch) == 0 {
				break
			}
			r.commitBatch(batch, gen)
		}
	}
}

// take removes and returns the next batch of queued groups, bounded in count
// and bytes, skipping cancelled ones.
func (r *Replica) take() ([]*request, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.master || r.closed {
		return nil, 0
	}
	var batch []*request
	bytes, i := 0, 0
	for ; i < len(r.pending) && len(batch) < maxBatchGroups; i++ {
		req := r.pending[i]
		if len(batch) > 0 && bytes+req.size > r.s.batchBytes {
			break
		}
		if req.state.CompareAndSwap(reqQueued, reqTaken) {
			batch = append(batch, req)
			bytes += req.size
		}
	}
	n := copy(r.pending, r.pending[i:])
	clear(r.pending[n:])
	r.pending = r.pending[:n]
	return batch, r.gen
}

// commitBatch commits batch in one transaction, or one group per
// transaction when together they exceed Badger's transaction limit, and
// answers every group.
func (r *Replica) commitBatch(batch []*request, gen uint64) {
	if r.testHookCommit != nil {
		r.testHookCommit()
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	outs, err := r.commitGroups(batch, gen)
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		outs = make([]outcome, len(batch))
		for i := range batch {
			o, err := r.commitGroups(batch[i:i+1], gen)
			if err != nil {
				outs[i] = outcome{err: r.commitError(err)}
			} else {
				outs[i] = o[0]
			}
		}
		err = nil
	}
	for i, req := range batch {
		if err != nil {
			req.done <- outcome{err: r.commitError(err)}
		} else {
			req.done <- outs[i]
		}
	}
}

func (r *Replica) commitError(err error) error {
	switch {
	case errors.Is(err, badger.ErrTxnTooBig):
		return wire.Errorf(wire.CodeInvalid, "write group exceeds the store's transaction limit (%d bytes, %d entries)", r.s.txnBytes, r.s.txnEntries)
	case errors.Is(err, ErrClosed), errors.Is(err, ErrIncomplete), errors.Is(err, ErrStaleGen):
		return err
	}
	return fmt.Errorf("partition: commit on %v: %w", r.id, err)
}

// commitGroups evaluates reqs in order against the current data and commits
// every successful group that changed something, with its record, and the
// state in one transaction. A group that fails leaves no trace; its outcome
// carries the error. A non-nil error means nothing was committed.
func (r *Replica) commitGroups(reqs []*request, gen uint64) ([]outcome, error) {
	if err := r.s.acquire(); err != nil {
		return nil, err
	}
	defer r.s.release()
	ws, err := r.liveState(false)
	if err != nil {
		return nil, err
	}
	if gen < ws.Gen {
		return nil, fmt.Errorf("partition: %v: generation %d below its last record's %d: %w", r.id, gen, ws.Gen, ErrStaleGen)
	}
	now := r.s.now()
	txn := r.s.db.NewTransaction(true)
	defer txn.Discard()
	outs := make([]outcome, len(reqs))
	startSeq := ws.Seq
	var added int64
	for i, req := range reqs {
		ev := evaluator{r: r, txn: txn, now: now, dp: r.dataPrefix(ws.DataInc), ip: r.indexPrefix(ws.DataInc)}
		res, err := ev.eval(req.ops)
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				outs[i] = outcome{err: we}
				continue
			}
			return nil, err
		}
		outs[i] = outcome{res: res}
		if len(ev.effects) == 0 {
			continue
		}
		seq := ws.Seq + 1
		if ws.Gen != gen || len(ws.History) == 0 {
			ws.History = append(ws.History, GenStart{Gen: gen, Seq: seq})
			ws.Gen = gen
		}
		if err := r.applyEffects(txn, &ws, ev.effects); err != nil {
			return nil, err
		}
		rec := binlog.Record{Seq: seq, Gen: gen, TimeMs: now, Effects: ev.effects}
		key := binlog.LogKey(r.logPrefix(ws.LogInc), seq)
		val := rec.AppendEncode(make([]byte, 0, rec.EncodedSize()))
		if err := txn.Set(key, val); err != nil {
			return nil, err
		}
		ws.Seq = seq
		added += int64(len(key) + len(val))
	}
	if ws.Seq == startSeq {
		return outs, nil // nothing to commit
	}
	if err := r.putState(txn, ws); err != nil {
		return nil, err
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	r.setState(ws, added)
	return outs, nil
}

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

// cell is a key's value as a group sees it.
type cell struct {
	present bool
	value   []byte
	exp     int64
}

// evaluator runs one write group against the transaction, recording its
// writes in a group-local overlay (so a failing group leaves no trace) and
// its effects for the record.
type evaluator struct {
	r       *Replica
	txn     *badger.Txn
	now     int64
	dp, ip  []byte // data and index prefixes of the incarnation in force
	ov      map[string]cell
	cleared bool // the group flushed: keys outside ov are absent
	effects []binlog.Effect
}

// get returns key's live value as the group sees it.
func (e *evaluator) get(key []byte) (cell, error) {
	if c, ok := e.ov[string(key)]; ok {
		if c.present && !live(c.exp, e.now) {
			return cell{}, nil
		}
		return c, nil
	}
	if e.cleared {
		return cell{}, nil
	}
	v, exp, found, err := getLive(e.txn, e.dp, key, e.now)
	if err != nil || !found {
		return cell{}, err
	}
	return cell{present: true, value: v, exp: exp}, nil
}

func (e *evaluator) put(key, value []byte, exp int64) {
	if e.ov == nil {
		e.ov = make(map[string]cell)
	}
	e.ov[string(key)] = cell{present: true, value: value, exp: exp}
	e.effects = append(e.effects, binlog.Effect{Kind: binlog.EffectSet, Key: key, Value: value, ExpireAt: exp})
}

func (e *evaluator) del(key []byte) {
	if e.ov == nil {
		e.ov = make(map[string]cell)
	}
	e.ov[string(key)] = cell{}
	e.effects = append(e.effects, binlog.Effect{Kind: binlog.EffectDelete, Key: key})
}

func (e *evaluator) expiry(i int, ttl int64) (int64, error) {
	if ttl > math.MaxInt64-e.now {
		return 0, wire.Errorf(wire.CodeInvalid, "op %d: TTL %d ms out of range", i, ttl)
	}
	return e.now + ttl, nil
}

// eval evaluates a group; a *wire.Error fails the group, any other error the
// whole transaction.
func (e *evaluator) eval(ops []wire.Op) ([]wire.OpResult, error) {
	res := make([]wire.OpResult, len(ops))
	for i := range ops {
		op := &ops[i]
		out := &res[i]
		switch op.Type {
		case wire.OpSet:
			if op.Cond == wire.CondNone && !op.ReturnOld && !op.KeepTTL {
				// A plain set needs nothing of the old value: skip the read.
				var exp int64
				if op.TTL > 0 {
					var err error
					if exp, err = e.expiry(i, op.TTL); err != nil {
						return nil, err
					}
				}
				e.put(op.Key, op.Value, exp)
				out.Done = true
				continue
			}
			c, err := e.get(op.Key)
			if err != nil {
				return nil, err
			}
			if op.ReturnOld {
				out.Found = c.present
				out.Old = append([]byte(nil), c.value...)
				if c.present && out.Old == nil {
					out.Old = []byte{}
				}
			}
			if (op.Cond == wire.CondIfAbsent && c.present) || (op.Cond == wire.CondIfPresent && !c.present) {
				continue
			}
			var exp int64
			switch {
			case op.TTL > 0:
				if exp, err = e.expiry(i, op.TTL); err != nil {
					return nil, err
				}
			case op.KeepTTL && c.present:
				exp = c.exp
			}
			e.put(op.Key, op.Value, exp)
			out.Done = true

		case wire.OpDelete:
			c, err := e.get(op.Key)
			if err != nil {
				return nil, err
			}
			if c.present {
				e.del(op.Key)
				out.Done = true
			}

		case wire.OpIncr:
			c, err := e.get(op.Key)
			if err != nil {
				return nil, err
			}
			var n int64
			if c.present {
				var ok bool
				if n, ok = parseInt(c.value); !ok {
					return nil, wire.Errorf(wire.CodeNotInteger, "op %d: value is not an integer or out of range", i)
				}
			}
			if (op.Delta > 0 && n > math.MaxInt64-op.Delta) || (op.Delta < 0 && n < math.MinInt64-op.Delta) {
				return nil, wire.Errorf(wire.CodeOverflow, "op %d: increment or decrement would overflow", i)
			}
			n += op.Delta
			e.put(op.Key, strconv.AppendInt(nil, n, 10), c.exp)
			out.Int = n

		case wire.OpExpire:
			c, err := e.get(op.Key)
			if err != nil {
				return nil, err
			}
			if !c.present {
				continue
			}
			if op.TTL > 0 {
				exp, err := e.expiry(i, op.TTL)
				if err != nil {
					return nil, err
				}
				e.put(op.Key, c.value, exp)
			} else {
				e.del(op.Key)
			}
			out.Done = true

		case wire.OpPersist:
			c, err := e.get(op.Key)
			if err != nil {
				return nil, err
			}
			if c.present && c.exp != 0 {
				e.put(op.Key, c.value, 0)
				out.Done = true
			}

		case wire.OpDeleteTag:
			n, err := e.deleteTag(op.Key)
			if err != nil {
				return nil, err
			}
			out.Int = n

		case wire.OpFlush:
			e.ov = nil
			e.cleared = true
			e.effects = append(e.effects, binlog.Effect{Kind: binlog.EffectClear})
			out.Done = true
		}
	}
	return res, nil
}

// deleteTag deletes up to maxTagDel live keys whose hashtag is tag, and no
// more than fit in one transaction with their record: first those in the
// index, in key order, then those only this group created. It deletes at
// least one key when any is live.
func (e *evaluator) deleteTag(tag []byte) (int64, error) {
	limit := e.r.maxTagDel
	// Each victim costs a data and an index delete and an effect in the
	// record; a quarter of Badger's transaction limit leaves room for the
	// rest of the group.
	budget, spent := e.r.s.batchBytes, 0
	var victims [][]byte
	add := func(k []byte) bool {
		victims = append(victims, k)
		spent += 3*len(k) + 64
		return len(victims) < limit && spent < budget
	}
	more := true
	seen := make(map[string]bool)
	if !e.cleared {
		tp := tagPrefix(e.ip, tag)
		err := iterKeys(e.txn, tp, nil, func(k []byte) (bool, error) {
			uk := k[len(tp):]
			c, err := e.get(uk)
			if err != nil {
				return false, err
			}
			seen[string(uk)] = true
			if c.present {
				more = add(append([]byte(nil), uk...))
			}
			return more, nil
		})
		if err != nil {
			return 0, err
		}
	}
	var created []string
	for k, c := range e.ov {
		if c.present && !seen[k] && live(c.exp, e.now) && string(placement.Hashtag([]byte(k))) == string(tag) {
			created = append(created, k)
		}
	}
	slices.Sort(created)
	for _, k := range created {
		if !more {
			break
		}
		more = add([]byte(k))
	}
	for _, k := range victims {
		e.del(k)
	}
	return int64(len(victims)), nil
}

// parseInt parses b as Redis parses an integer: an optional '-', then "0"
// or a digit string without leading zeros, at most 20 bytes, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -int64(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
