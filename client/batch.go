package client

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Batch collects operations on keys that share one hashtag and commits them
// atomically: all or nothing, replicated as one binlog record. Build it with
// Table.Batch, add operations, then Commit. A Batch is not safe for
// concurrent use.
type Batch struct {
	t   *Table
	tag []byte
	ops []wire.Op
	err error
}

// Batch starts a batch for keys whose hashtag is tag. A key without a
// hashtag may join only if it equals tag itself (it then routes the same
// way). With a nil tag, the first key added fixes the routing key.
func (t *Table) Batch(tag []byte) *Batch {
	return &Batch{t: t, tag: bytes.Clone(tag)}
}

func (b *Batch) add(op wire.Op) *Batch {
	if b.err != nil {
		return b
	}
	rk := placement.RoutingKey(op.Key)
	if b.tag == nil {
		b.tag = bytes.Clone(rk)
	} else if !bytes.Equal(rk, b.tag) {
		b.err = fmt.Errorf("%w: key %q routes by %q, batch by %q", ErrCrossSlot, op.Key, rk, b.tag)
		return b
	}
	b.ops = append(b.ops, op)
	return b
}

// Set adds a set of key to value.
func (b *Batch) Set(key, value []byte, opts ...SetOption) *Batch {
	return b.add(setOp(bytes.Clone(key), bytes.Clone(value), opts))
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) *Batch {
	return b.add(wire.Op{Type: wire.OpDelete, Key: bytes.Clone(key)})
}

// IncrBy adds an increment of the integer at key by delta.
func (b *Batch) IncrBy(key []byte, delta int64) *Batch {
	return b.add(wire.Op{Type: wire.OpIncr, Key: bytes.Clone(key), Delta: delta})
}

// Expire adds a change of key's time to live (≤ 0 deletes the key).
func (b *Batch) Expire(key []byte, ttl time.Duration) *Batch {
	ms := ttl.Milliseconds()
	if ttl > 0 && ms == 0 {
		ms = 1
	}
	if ttl <= 0 {
		ms = -1
	}
	return b.add(wire.Op{Type: wire.OpExpire, Key: bytes.Clone(key), TTL: ms})
}

// Persist adds the removal of key's expiry.
func (b *Batch) Persist(key []byte) *Batch {
	return b.add(wire.Op{Type: wire.OpPersist, Key: bytes.Clone(key)})
}

// Len returns the number of operations added.
func (b *Batch) Len() int { return len(b.ops) }

// BatchResult is the outcome of one batch operation, in the order added.
type BatchResult struct {
	// Done: a set was written; a delete, expire or persist found its key.
	Done bool
	// Int is an increment's new value.
	Int int64
}

// Commit applies every operation atomically. If any operation fails (an
// increment of a non-integer, a key of another hashtag, an exceeded limit)
// nothing is written and the error says why.
func (b *Batch) Commit(ctx context.Context) ([]BatchResult, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(b.ops) == 0 {
		return nil, nil
	}
	idempotent := true
	for _, op := range b.ops {
		if op.Type == wire.OpIncr || op.Cond != wire.CondNone {
			idempotent = false
		}
	}
	res, err := b.t.write(ctx, b.tag, b.ops, idempotent)
	if err != nil {
		return nil, err
	}
	out := make([]BatchResult, len(res))
	for i, r := range res {
		out[i] = BatchResult{Done: r.Done, Int: r.Int}
	}
	return out, nil
}
