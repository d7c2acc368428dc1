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
	// seq is the replica's last seq once the group was evaluated: its own
	// record's when it wrote one, else the last record it could observe.
	seq uint64
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

// Pending is a write group Submit queued with the replica's sequencer.
type Pending struct{ req *request }

// Submit queues ops as one atomic group, as WriteSeq does, and returns
// without waiting for the commit: Wait on the result does, and returns
// what WriteSeq would have. A caller writing to several replicas submits
// to each before waiting, so their sequencers commit in parallel without
// a goroutine per group. Errors before the group is queued (invalid ops,
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
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return Pending{req: req}, nil
}

// Wait waits for the group to be applied and returns its results and seq
// as WriteSeq does. If ctx ends first, Wait returns ctx.Err(): a group
// still queued then is never applied, one the sequencer has taken is
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
	a := r.newAppender(ws)
	defer a.discard()
	outs := make([]outcome, len(reqs))
	for i, req := range reqs {
		ev := evaluator{r: r, txn: a.txn, now: now, dp: r.dataPrefix(a.ws.DataInc), ip: r.indexPrefix(a.ws.DataInc), batch: &a}
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
	if err := a.commit(); err != nil {
		return nil, err
	}
	return outs, nil
}
