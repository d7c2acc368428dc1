package partition

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Request states.
const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// request is one write group waiting for its committer.
type request struct {
	ops   []wire.Op
	size  int
	state atomic.Int32
	done  chan outcome // buffered: the committer never blocks on it
}

type outcome struct {
	res []wire.OpResult
	err error
	// seq is the replica's last seq once the group was evaluated: its own
	// record's when it wrote one, else the last record it could observe.
	seq uint64
}

// Promote makes the replica a master that stamps new records with gen: the
// store's committer takes its writes from then on. gen must be at least the
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
	return nil
}

// Demote stops accepting writes: later Write calls fail with ErrNotMaster,
// and so do queued groups the committer has not taken. It returns once the
// group commit in progress, if any, has committed. Demoting a replica that
// is not a master does nothing.
func (r *Replica) Demote() {
	r.roleMu.Lock()
	defer r.roleMu.Unlock()
	r.mu.Lock()
	r.master = false
	r.mu.Unlock()
	// The committer takes a replica's groups, and commits them, holding
	// its writeMu, and takes none once master is false.
	r.writeMu.Lock()
	//lint:ignore SA2001 waiting for the holder is the point
	r.writeMu.Unlock()
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
// in the same transaction as its data. The store's committer commits many
// concurrent groups together, of this replica and of others.
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
// the group is not applied; if the committer has already taken it, the
// group is applied and Write returns ctx.Err() without its results.
//
// Write takes ownership of the byte slices in ops: the caller must not
// modify them afterwards. Returned slices are the caller's.
func (r *Replica) Write(ctx context.Context, ops []wire.Op) ([]wire.OpResult, error) {
	res, _, err := r.WriteSeq(ctx, ops)
	return res, err
}

// WriteSeq is Write that also returns the replica's last seq once the group
// was applied: the seq of the group's own record when it wrote one, else
// that of the last record its results could depend on. A caller that must
// not answer before the group is replicated waits for that seq (and so
// does for a group that failed on its own terms, such as an increment of a
// value that is not an integer: its error reflects the data up to seq).
func (r *Replica) WriteSeq(ctx context.Context, ops []wire.Op) ([]wire.OpResult, uint64, error) {
	p, err := r.Submit(ctx, ops)
	if err != nil {
		return nil, 0, err
	}
	return p.Wait(ctx)
}

// Pending is a write group Submit queued for the store's committer.
type Pending struct{ req *request }

// Submit queues ops as one atomic group, as WriteSeq does, and returns
// without waiting for the commit: Wait on the result does, and returns
// what WriteSeq would have. A caller writing to several replicas submits
// to each before waiting, so that one commit takes them all, without a
// goroutine per group. Errors before the group is queued (invalid ops,
// ctx already done, ErrNotMaster, ErrClosed) are returned here.
func (r *Replica) Submit(ctx context.Context, ops []wire.Op) (Pending, error) {
	size, err := r.validate(ops)
	if err != nil {
		return Pending{}, err
	}
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	req := &request{ops: ops, size: size, done: make(chan outcome, 1)}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return Pending{}, ErrClosed
	case !r.master:
		r.mu.Unlock()
		return Pending{}, ErrNotMaster
	}
	r.pending = append(r.pending, req)
	r.mu.Unlock()
	r.s.ready(r)
	return Pending{req: req}, nil
}

// Wait waits for the group to be applied and returns its results and seq
// as WriteSeq does. If ctx ends first, Wait returns ctx.Err(): a group
// still queued then is never applied, one the committer has taken is
// applied without its results. Call it once.
func (p Pending) Wait(ctx context.Context) ([]wire.OpResult, uint64, error) {
	req := p.req
	select {
	case o := <-req.done:
		if o.err != nil {
			var we *wire.Error
			if !errors.As(o.err, &we) {
				return nil, 0, o.err
			}
		}
		return o.res, o.seq, o.err
	case <-ctx.Done():
		// Either the group was still queued and now never will be taken,
		// or it was taken and will be applied; its result is dropped.
		req.state.CompareAndSwap(reqQueued, reqCancelled)
		return nil, 0, ctx.Err()
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

// take removes and returns the next queued groups, skipping cancelled ones:
// at least one group when any is queued, then as many as fit in the
// budget's bytes and ops. more reports groups left queued. The caller
// holds writeMu.
func (r *Replica) take(b *budget) (batch []*request, gen uint64, more bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.master || r.closed {
		return nil, 0, false
	}
	i := 0
	for ; i < len(r.pending); i++ {
		req := r.pending[i]
		if len(batch) > 0 && !b.fits(req) {
			break
		}
		if req.state.CompareAndSwap(reqQueued, reqTaken) {
			batch = append(batch, req)
			b.take(req)
		}
	}
	n := copy(r.pending, r.pending[i:])
	clear(r.pending[n:])
	r.pending = r.pending[:n]
	return batch, r.gen, n > 0
}

// commitBatch commits batch alone, in one transaction, or one group per
// transaction when together they exceed Badger's transaction limit, and
// answers every group. The caller holds writeMu.
func (r *Replica) commitBatch(batch []*request, gen uint64) {
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
	answer(batch, outs, r.commitError(err))
}

// answer sends each group its outcome, or err to all when it is not nil.
func answer(batch []*request, outs []outcome, err error) {
	for i, req := range batch {
		if err != nil {
			req.done <- outcome{err: err}
		} else {
			req.done <- outs[i]
		}
	}
}

func (r *Replica) commitError(err error) error {
	switch {
	case err == nil:
		return nil
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
	ws, err := r.writableState(gen)
	if err != nil {
		return nil, err
	}
	a := r.newAppender(ws)
	defer a.discard()
	outs, err := r.evalGroups(&a, reqs, gen, r.s.now())
	if err != nil {
		return nil, err
	}
	if err := a.commit(); err != nil {
		return nil, err
	}
	return outs, nil
}

// writableState returns the state a master's commit under generation gen
// starts from, or why there can be none.
func (r *Replica) writableState(gen uint64) (State, error) {
	ws, err := r.liveState(false)
	if err != nil {
		return State{}, err
	}
	if gen < ws.Gen {
		return State{}, fmt.Errorf("partition: %v: generation %d below its last record's %d: %w", r.id, gen, ws.Gen, ErrStaleGen)
	}
	return ws, nil
}

// evalGroups evaluates reqs in order into a, appending one record per
// group that changed something, and returns each group's outcome. A group
// that fails on its own terms (a *wire.Error) leaves no trace in a; any
// other error means a must be discarded.
func (r *Replica) evalGroups(a *appender, reqs []*request, gen uint64, now int64) ([]outcome, error) {
	outs := make([]outcome, len(reqs))
	for i, req := range reqs {
		ev := evaluator{r: r, txn: a.txn, now: now, dp: r.dataPrefix(a.ws.DataInc), ip: r.indexPrefix(a.ws.DataInc), batch: a}
		res, err := ev.eval(req.ops)
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				outs[i] = outcome{err: we, seq: a.ws.Seq}
				continue
			}
			return nil, err
		}
		if len(ev.effects) > 0 {
			rec := binlog.Record{Seq: a.ws.Seq + 1, Gen: gen, TimeMs: now, Effects: ev.effects}
			if err := a.append(rec, nil); err != nil {
				return nil, err
			}
		}
		outs[i] = outcome{res: res, seq: a.ws.Seq}
	}
	return outs, nil
}
