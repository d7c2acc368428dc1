package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// sendFunc sends the items idxs (all mastered by the node at addr; parts[i]
// is the partition of idxs[i]) in one request and returns one error per
// item (or nil when every item succeeded), or a request-level error that
// applies to all of them.
type sendFunc func(ctx context.Context, addr string, m *placement.Map, tbl *placement.Table, idxs []int, parts []placement.PartitionID) ([]error, error)

// retryable reports whether an item that failed with err should be tried
// again in a later round.
func retryable(err error, idempotent bool) bool {
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.Code {
		case wire.CodeMoved, wire.CodeTableNotFound, wire.CodeWait, wire.CodeStaleEpoch,
			wire.CodeNotEnoughReplicas, wire.CodeClosed, wire.CodeUnavailable:
			return true
		case wire.CodeAmbiguous, wire.CodeTimeout:
			return idempotent
		}
		return false
	}
	if errors.Is(err, errNoMaster) || errors.Is(err, rpc.ErrNotSent) {
		return true
	}
	return idempotent && errors.Is(err, rpc.ErrConnLost)
}

// multi runs a multi-item operation: it groups the n items by the master
// of their partition, sends one request per node in parallel, and retries
// items that failed retryably, until every item has an outcome or ctx ends.
// keyOf names items in a MultiError. It returns nil or a *MultiError (or a
// table-level error such as ErrTableNotFound).
func (t *Table) multi(ctx context.Context, n int, partOf func(i, nparts int) placement.PartitionID,
	keyOf func(i int) []byte, idempotent bool, send sendFunc) error {
	if n == 0 {
		return nil
	}
	r := retrier{c: t.c, idempotent: idempotent}
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	failed := make(map[int]error)
	for len(pending) > 0 {
		m, err := t.c.mapFor(ctx)
		if err != nil {
			return t.multiFailed(n, keyOf, pending, failed, r.finalErr(err))
		}
		tbl := m.Table(t.name)
		if tbl == nil {
			if _, terminal := r.classify(ctx, m, tableErr{t.name}); terminal != nil {
				return terminal
			}
			continue
		}
		type nodeBatch struct {
			idxs  []int
			parts []placement.PartitionID
		}
		batches := make(map[string]*nodeBatch)
		errs := make(map[int]error)
		for _, i := range pending {
			part := partOf(i, len(tbl.Partitions))
			_, addr, err := route(m, t.name, part)
			if err != nil {
				errs[i] = err
				continue
			}
			b := batches[addr]
			if b == nil {
				// Sized for every key: one node holds them all, often.
				b = &nodeBatch{idxs: make([]int, 0, len(pending)), parts: make([]placement.PartitionID, 0, len(pending))}
				batches[addr] = b
			}
			b.idxs = append(b.idxs, i)
			b.parts = append(b.parts, part)
		}
		var mu sync.Mutex
		run := func(addr string, b *nodeBatch) {
			itemErrs, err := send(ctx, addr, m, tbl, b.idxs, b.parts)
			mu.Lock()
			defer mu.Unlock()
			for j, i := range b.idxs {
				switch {
				case err != nil:
					errs[i] = err
				case itemErrs != nil && itemErrs[j] != nil:
					errs[i] = itemErrs[j]
				}
			}
		}
		if len(batches) == 1 {
			// One node (always, in a one-node cluster): no goroutine.
			for addr, b := range batches {
				run(addr, b)
			}
		} else {
			var wg sync.WaitGroup
			for addr, b := range batches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					run(addr, b)
				}()
			}
			wg.Wait()
		}

		pending = pending[:0]
		var sample error
		for i, err := range errs {
			if retryable(err, idempotent) {
				pending = append(pending, i)
				if sample == nil {
					sample = err
				}
				continue
			}
			failed[i] = mapItemErr(err)
		}
		if len(pending) == 0 {
			break
		}
		wait, terminal := r.classify(ctx, m, sample)
		if terminal == nil {
			terminal = r.pause(ctx, wait)
		}
		if terminal != nil {
			return t.multiFailed(n, keyOf, pending, failed, terminal)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return t.multiFailed(n, keyOf, nil, failed, nil)
}

func mapItemErr(err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return fromWire(we)
	}
	if errors.Is(err, rpc.ErrConnLost) {
		return fmt.Errorf("%w: %w", ErrAmbiguous, err)
	}
	return err
}

// multiFailed builds the MultiError: items in pending failed with last, items
// in failed with their own error, the rest succeeded.
func (t *Table) multiFailed(n int, keyOf func(int) []byte, pending []int, failed map[int]error, last error) error {
	for _, i := range pending {
		failed[i] = last
	}
	me := &MultiError{byIndex: make([]error, n)}
	for i := 0; i < n; i++ {
		if err, ok := failed[i]; ok {
			me.byIndex[i] = err
			me.Failed = append(me.Failed, KeyError{Key: keyOf(i), Err: err})
		} else {
			me.Succeeded = append(me.Succeeded, keyOf(i))
		}
	}
	return me
}

func keyPart(keys [][]byte) func(i, nparts int) placement.PartitionID {
	return func(i, nparts int) placement.PartitionID { return placement.PartitionOf(keys[i], nparts) }
}

// mread reads keys with op and returns one result per key.
func (t *Table) mread(ctx context.Context, op wire.ReadOp, keys [][]byte) ([]wire.ReadResult, error) {
	if err := t.c.limits.CheckMulti(len(keys)); err != nil {
		return nil, fromWire(err)
	}
	for _, k := range keys {
		if err := t.c.limits.CheckKey(k); err != nil {
			return nil, fromWire(err)
		}
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	out := make([]wire.ReadResult, len(keys))
	err := t.multi(ctx, len(keys), keyPart(keys), func(i int) []byte { return keys[i] }, true,
		func(ctx context.Context, addr string, m *placement.Map, tbl *placement.Table, idxs []int, parts []placement.PartitionID) ([]error, error) {
			req := wire.ReadRequest{Table: tbl.ID, Epoch: m.Epoch, Op: op, Keys: make([]wire.KeyRef, len(idxs))}
			for j, i := range idxs {
				req.Keys[j] = wire.KeyRef{Partition: parts[j], Key: keys[i]}
			}
			var reply wire.ReadReply
			if err := t.c.call(ctx, addr, wire.KindRead, &req, &reply); err != nil {
				return nil, err
			}
			if len(reply.Results) != len(idxs) {
				return nil, fmt.Errorf("zeppelin: node %s answered %d results for %d keys", addr, len(reply.Results), len(idxs))
			}
			var errs []error // nil while every key succeeded
			for j, i := range idxs {
				if r := reply.Results[j]; r.Err != nil {
					if errs == nil {
						errs = make([]error, len(idxs))
					}
					errs[j] = r.Err
				} else {
					out[i] = r
				}
			}
			return errs, nil
		})
	return out, err
}

// MGet returns the values of keys, one Result per key in order; Found
// distinguishes a missing key from an empty value. Keys are grouped per
// master node and read in parallel. When some keys fail the error is a
// *MultiError and the results of the others are still filled in.
func (t *Table) MGet(ctx context.Context, keys [][]byte) ([]Result, error) {
	rs, err := t.mread(ctx, wire.ReadGet, keys)
	if rs == nil {
		return nil, err
	}
	out := make([]Result, len(keys))
	for i, r := range rs {
		if r.Found {
			out[i] = Result{Value: r.Value, Found: true}
			if out[i].Value == nil {
				out[i].Value = []byte{}
			}
		}
	}
	return out, err
}

// MExists reports, for each key, whether it exists.
func (t *Table) MExists(ctx context.Context, keys [][]byte) ([]bool, error) {
	rs, err := t.mread(ctx, wire.ReadExists, keys)
	if rs == nil {
		return nil, err
	}
	out := make([]bool, len(keys))
	for i, r := range rs {
		out[i] = r.Found
	}
	return out, err
}

// mwrite applies one operation per item, grouping the operations of one
// partition into one atomic group. It returns one result per item.
func (t *Table) mwrite(ctx context.Context, ops []wire.Op, partOf func(i, nparts int) placement.PartitionID, idempotent bool) ([]wire.OpResult, error) {
	if err := t.c.limits.CheckMulti(len(ops)); err != nil {
		return nil, fromWire(err)
	}
	for i := range ops {
		if err := t.c.limits.CheckOps(ops[i : i+1]); err != nil {
			return nil, fromWire(err)
		}
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	out := make([]wire.OpResult, len(ops))
	err := t.multi(ctx, len(ops), partOf, func(i int) []byte { return ops[i].Key }, t.repeatable(ctx, idempotent),
		func(ctx context.Context, addr string, m *placement.Map, tbl *placement.Table, idxs []int, parts []placement.PartitionID) ([]error, error) {
			req := wire.WriteRequest{Table: tbl.ID, Epoch: m.Epoch}
			// Group the items by partition, in order of first appearance:
			// count each group, then carve every group's ops and members
			// (positions j in idxs) out of one slice each.
			groupOf := make(map[placement.PartitionID]int, len(idxs))
			var sizes []int
			for j := range idxs {
				g, ok := groupOf[parts[j]]
				if !ok {
					g = len(sizes)
					groupOf[parts[j]] = g
					sizes = append(sizes, 0)
				}
				sizes[g]++
			}
			req.Groups = make([]wire.WriteGroup, len(sizes))
			members := make([][]int, len(sizes))
			allOps, allMembers := make([]wire.Op, len(idxs)), make([]int, len(idxs))
			at := 0
			for g, n := range sizes {
				req.Groups[g].Ops = allOps[at : at : at+n]
				members[g] = allMembers[at : at : at+n]
				at += n
			}
			for j, i := range idxs {
				g := groupOf[parts[j]]
				req.Groups[g].Partition = parts[j]
				req.Groups[g].Ops = append(req.Groups[g].Ops, ops[i])
				members[g] = append(members[g], j)
			}
			var reply wire.WriteReply
			if err := t.c.call(ctx, addr, wire.KindWrite, &req, &reply); err != nil {
				return nil, err
			}
			if len(reply.Groups) != len(req.Groups) {
				return nil, fmt.Errorf("zeppelin: node %s answered %d groups for %d", addr, len(reply.Groups), len(req.Groups))
			}
			var errs []error // nil while every item succeeded
			fail := func(j int, err error) {
				if errs == nil {
					errs = make([]error, len(idxs))
				}
				errs[j] = err
			}
			for g, gr := range reply.Groups {
				for k, j := range members[g] {
					switch {
					case gr.Err != nil:
						fail(j, gr.Err)
					case k < len(gr.Results):
						out[idxs[j]] = gr.Results[k]
					default:
						fail(j, fmt.Errorf("zeppelin: node %s answered too few results", addr))
					}
				}
			}
			return errs, nil
		})
	return out, err
}

// MSet writes every key-value pair. Pairs are grouped per partition and
// each partition's group is written atomically; groups of different
// partitions are independent. When some fail the error is a *MultiError
// naming the failed and the written keys. opts apply to every pair.
func (t *Table) MSet(ctx context.Context, kvs []KV, opts ...SetOption) error {
	ops := make([]wire.Op, len(kvs))
	for i, kv := range kvs {
		ops[i] = setOp(kv.Key, kv.Value, opts)
	}
	_, err := t.mwrite(ctx, ops, func(i, nparts int) placement.PartitionID {
		return placement.PartitionOf(kvs[i].Key, nparts)
	}, len(ops) == 0 || ops[0].Cond == wire.CondNone)
	return err
}

// SetEach sets each pair as Set without options would, in one request per
// master node rather than one per pair: the pairs of one partition are
// written in order as one atomic group, groups of different partitions
// commit in parallel. It returns nil when every pair was written, else one
// error per pair (nil for those written). Unlike a sequence of Set calls,
// other clients may see pairs of different partitions become visible in
// any order until SetEach returns.
func (t *Table) SetEach(ctx context.Context, kvs []KV) []error {
	ops := make([]wire.Op, len(kvs))
	for i, kv := range kvs {
		ops[i] = setOp(kv.Key, kv.Value, nil)
	}
	_, errs := t.each(ctx, ops, true)
	return errs
}

// each writes every valid op of ops in one multi-key write and returns
// one result per op and nil, or one error per op when some failed: an op
// over the limits fails on its own, before anything is sent.
func (t *Table) each(ctx context.Context, ops []wire.Op, idempotent bool) ([]wire.OpResult, []error) {
	var errs []error
	valid := make([]int, 0, len(ops))
	for i := range ops {
		if err := t.c.limits.CheckOps(ops[i : i+1]); err != nil {
			if errs == nil {
				errs = make([]error, len(ops))
			}
			errs[i] = fromWire(err)
			continue
		}
		valid = append(valid, i)
	}
	out := make([]wire.OpResult, len(ops))
	if len(valid) == 0 {
		return out, errs
	}
	send := ops
	if len(valid) < len(ops) {
		send = make([]wire.Op, len(valid))
		for j, i := range valid {
			send[j] = ops[i]
		}
	}
	res, err := t.mwrite(ctx, send, func(j, nparts int) placement.PartitionID {
		return placement.PartitionOf(send[j].Key, nparts)
	}, idempotent)
	sent := eachErrors(err, len(send))
	for j, i := range valid {
		if j < len(res) {
			out[i] = res[j]
		}
		if sent != nil && sent[j] != nil {
			if errs == nil {
				errs = make([]error, len(ops))
			}
			errs[i] = sent[j]
		}
	}
	return out, errs
}

// IncrEach increments the integer at each key by its delta as IncrBy
// would, in one request per master node rather than one per key (see
// SetEach for the order in which others see them). It returns the new
// values and nil, or, when some failed, one error per key (nil for those
// incremented). An increment whose outcome is unknown is not repeated:
// its error wraps ErrAmbiguous.
func (t *Table) IncrEach(ctx context.Context, keys [][]byte, deltas []int64) ([]int64, []error) {
	if len(deltas) != len(keys) {
		err := fmt.Errorf("%w: %d keys and %d deltas", ErrInvalid, len(keys), len(deltas))
		errs := make([]error, len(keys))
		for i := range errs {
			errs[i] = err
		}
		return nil, errs
	}
	ops := make([]wire.Op, len(keys))
	for i, k := range keys {
		ops[i] = wire.Op{Type: wire.OpIncr, Key: k, Delta: deltas[i]}
	}
	res, errs := t.each(ctx, ops, false)
	out := make([]int64, len(keys))
	for i := range res {
		out[i] = res[i].Int
	}
	return out, errs
}

// eachErrors spreads the error of a multi-key call over its n items: nil
// when there is none, the items' own errors for a *MultiError, else the
// call's error for every item.
func eachErrors(err error, n int) []error {
	if err == nil {
		return nil
	}
	errs := make([]error, n)
	var me *MultiError
	if errors.As(err, &me) && len(me.byIndex) == n {
		copy(errs, me.byIndex)
		return errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// MDelete deletes keys and returns how many existed. Like MSet it is atomic
// per partition and reports partial failure with a *MultiError.
func (t *Table) MDelete(ctx context.Context, keys [][]byte) (int, error) {
	ops := make([]wire.Op, len(keys))
	for i, k := range keys {
		ops[i] = wire.Op{Type: wire.OpDelete, Key: k}
	}
	res, err := t.mwrite(ctx, ops, keyPart(keys), true)
	n := 0
	for _, r := range res {
		if r.Done {
			n++
		}
	}
	return n, err
}

// Flush deletes every key of the table on every replica. Each partition is
// emptied atomically and the flush is replicated like any write.
func (t *Table) Flush(ctx context.Context) error {
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	return t.eachPartition(ctx, true, func(ctx context.Context, addr string, m *placement.Map, tbl *placement.Table, idxs []int, parts []placement.PartitionID) ([]error, error) {
		req := wire.WriteRequest{Table: tbl.ID, Epoch: m.Epoch, Groups: make([]wire.WriteGroup, len(idxs))}
		for j := range idxs {
			req.Groups[j] = wire.WriteGroup{Partition: parts[j], Ops: []wire.Op{{Type: wire.OpFlush}}}
		}
		var reply wire.WriteReply
		if err := t.c.call(ctx, addr, wire.KindWrite, &req, &reply); err != nil {
			return nil, err
		}
		if len(reply.Groups) != len(idxs) {
			return nil, fmt.Errorf("zeppelin: node %s answered %d groups for %d", addr, len(reply.Groups), len(idxs))
		}
		errs := make([]error, len(idxs))
		for j, g := range reply.Groups {
			if g.Err != nil {
				errs[j] = g.Err
			}
		}
		return errs, nil
	})
}

// Count returns the number of live keys in the table. Every partition's
// master counts its own keys, walking them without their values, so a
// count takes time in proportion to the table's keys (Redis's DBSIZE is
// O(1)); the partitions are counted one after another, not in one
// snapshot, so writes made meanwhile may or may not be in the total.
func (t *Table) Count(ctx context.Context) (int64, error) {
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	var mu sync.Mutex
	counts := make(map[placement.PartitionID]int64)
	err := t.eachPartition(ctx, true, func(ctx context.Context, addr string, m *placement.Map, tbl *placement.Table, idxs []int, parts []placement.PartitionID) ([]error, error) {
		req := wire.CountRequest{Table: tbl.ID, Epoch: m.Epoch, Partitions: parts}
		var reply wire.CountReply
		if err := t.c.call(ctx, addr, wire.KindCount, &req, &reply); err != nil {
			return nil, err
		}
		if len(reply.Results) != len(parts) {
			return nil, fmt.Errorf("zeppelin: node %s answered %d counts for %d partitions", addr, len(reply.Results), len(parts))
		}
		errs := make([]error, len(parts))
		mu.Lock()
		defer mu.Unlock()
		for j, r := range reply.Results {
			if r.Err != nil {
				errs[j] = r.Err
				continue
			}
			counts[parts[j]] = r.Keys
		}
		return errs, nil
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, nil
}

// eachPartition runs send for every partition of the table, grouped by
// master as multi does, at most MaxMultiKeys partitions per round so that
// no request carries more than servers accept (the partition count is not
// bounded by MaxMultiKeys). It returns nil or a *MultiError naming the
// partitions that failed.
func (t *Table) eachPartition(ctx context.Context, idempotent bool, send sendFunc) error {
	m, err := t.c.mapFor(ctx)
	if err != nil {
		return err
	}
	tbl := m.Table(t.name)
	if tbl == nil {
		m, err = t.c.Refresh(ctx)
		if err != nil {
			return err
		}
		if tbl = m.Table(t.name); tbl == nil {
			return fmt.Errorf("%w: %s", ErrTableNotFound, t.name)
		}
	}
	n := len(tbl.Partitions)
	step := max(t.c.limits.MaxMultiKeys, 1)
	var all MultiError
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		keyOf := func(i int) []byte { return fmt.Appendf(nil, "partition %d", lo+i) }
		err := t.multi(ctx, hi-lo, func(i, _ int) placement.PartitionID { return placement.PartitionID(lo + i) }, keyOf, idempotent, send)
		var me *MultiError
		switch {
		case err == nil:
			for i := range hi - lo {
				all.Succeeded = append(all.Succeeded, keyOf(i))
			}
		case errors.As(err, &me):
			all.Failed = append(all.Failed, me.Failed...)
			all.Succeeded = append(all.Succeeded, me.Succeeded...)
		default:
			return err
		}
	}
	if len(all.Failed) > 0 {
		return &all
	}
	return nil
}
