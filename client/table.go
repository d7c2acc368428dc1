package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Table is a handle on one table. It is cheap to create and safe for
// concurrent use. Keys and values passed in are not retained after a call
// returns; returned slices belong to the caller.
type Table struct {
	c    *Client
	name string
}

// Name returns the table's name.
func (t *Table) Name() string { return t.name }

// write applies ops atomically on the partition of routing key rk.
func (t *Table) write(ctx context.Context, rk []byte, ops []wire.Op, idempotent bool) ([]wire.OpResult, error) {
	if err := t.c.limits.CheckOps(ops); err != nil {
		return nil, fromWire(err)
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	var out []wire.OpResult
	err := t.c.do(ctx, t.repeatable(ctx, idempotent), func(m *placement.Map) error {
		tbl := m.Table(t.name)
		if tbl == nil {
			return tableErr{t.name}
		}
		part := placement.PartitionOfTag(rk, len(tbl.Partitions))
		_, addr, err := route(m, t.name, part)
		if err != nil {
			return err
		}
		req := wire.WriteRequest{Table: tbl.ID, Epoch: m.Epoch, Groups: []wire.WriteGroup{{Partition: part, Ops: ops}}}
		var reply wire.WriteReply
		if err := t.c.call(ctx, addr, wire.KindWrite, &req, &reply); err != nil {
			return err
		}
		if len(reply.Groups) != 1 {
			return fmt.Errorf("zeppelin: node %s answered %d groups for 1", addr, len(reply.Groups))
		}
		if g := reply.Groups[0]; g.Err != nil {
			return g.Err
		} else if len(g.Results) != len(ops) {
			return fmt.Errorf("zeppelin: node %s answered %d results for %d operations", addr, len(g.Results), len(ops))
		} else {
			out = g.Results
		}
		return nil
	})
	return out, err
}

// repeatable reports whether a write that is idempotent by itself may be
// sent again after an attempt whose outcome is unknown. Not on a sync
// table: a repeated write lands after the writes others made since the
// first attempt was applied, which a linearizable history cannot explain
// (a reader may see the value, then a later one, then the value again). The
// caller gets ErrAmbiguous instead, as etcd's client returns for a put.
func (t *Table) repeatable(ctx context.Context, idempotent bool) bool {
	if !idempotent {
		return false
	}
	m, err := t.c.mapFor(ctx)
	if err != nil {
		return true // the call fails getting its map anyway
	}
	tbl := m.Table(t.name)
	return tbl == nil || tbl.Mode != placement.ModeSync
}

func (t *Table) write1(ctx context.Context, op wire.Op, idempotent bool) (wire.OpResult, error) {
	res, err := t.write(ctx, placement.RoutingKey(op.Key), []wire.Op{op}, idempotent)
	if err != nil {
		return wire.OpResult{}, err
	}
	return res[0], nil
}

// read1 reads one key from its partition's master.
func (t *Table) read1(ctx context.Context, op wire.ReadOp, key []byte) (wire.ReadResult, error) {
	if err := t.c.limits.CheckKey(key); err != nil {
		return wire.ReadResult{}, fromWire(err)
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	var out wire.ReadResult
	err := t.c.do(ctx, true, func(m *placement.Map) error {
		tbl := m.Table(t.name)
		if tbl == nil {
			return tableErr{t.name}
		}
		part := placement.PartitionOf(key, len(tbl.Partitions))
		_, addr, err := route(m, t.name, part)
		if err != nil {
			return err
		}
		req := wire.ReadRequest{Table: tbl.ID, Epoch: m.Epoch, Op: op, Keys: []wire.KeyRef{{Partition: part, Key: key}}}
		var reply wire.ReadReply
		if err := t.c.call(ctx, addr, wire.KindRead, &req, &reply); err != nil {
			return err
		}
		if len(reply.Results) != 1 {
			return fmt.Errorf("zeppelin: node %s answered %d results for 1 key", addr, len(reply.Results))
		}
		if r := reply.Results[0]; r.Err != nil {
			return r.Err
		} else {
			out = r
		}
		return nil
	})
	return out, err
}

// Get returns the value of key, or ErrNotFound.
func (t *Table) Get(ctx context.Context, key []byte) ([]byte, error) {
	r, err := t.read1(ctx, wire.ReadGet, key)
	if err != nil {
		return nil, err
	}
	if !r.Found {
		return nil, ErrNotFound
	}
	if r.Value == nil {
		r.Value = []byte{}
	}
	return r.Value, nil
}

// Exists reports whether key exists.
func (t *Table) Exists(ctx context.Context, key []byte) (bool, error) {
	r, err := t.read1(ctx, wire.ReadExists, key)
	return r.Found, err
}

// TTL returns the remaining time to live of key: NoTTL when it has no
// expiry, ErrNotFound when it does not exist.
func (t *Table) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	r, err := t.read1(ctx, wire.ReadTTL, key)
	if err != nil {
		return 0, err
	}
	if !r.Found {
		return 0, ErrNotFound
	}
	if r.TTL < 0 {
		return NoTTL, nil
	}
	return time.Duration(r.TTL) * time.Millisecond, nil
}

// Set writes value under key. It takes WithTTL and KeepTTL; given IfAbsent
// or IfPresent it writes nothing and returns an error wrapping ErrInvalid:
// use SetIf, which reports whether the condition held.
func (t *Table) Set(ctx context.Context, key, value []byte, opts ...SetOption) error {
	op := setOp(key, value, opts)
	if op.Cond != wire.CondNone {
		return fmt.Errorf("%w: Set with a condition (IfAbsent or IfPresent) cannot report whether it wrote: use SetIf", ErrInvalid)
	}
	_, err := t.write1(ctx, op, true)
	return err
}

// SetIf writes value under key when the condition among opts holds, and
// reports whether it held and the value was written. Use it with IfAbsent
// (write only a new key, Redis NX) or IfPresent (only an existing one,
// Redis XX); without either it writes unconditionally and reports true.
func (t *Table) SetIf(ctx context.Context, key, value []byte, opts ...SetOption) (bool, error) {
	op := setOp(key, value, opts)
	r, err := t.write1(ctx, op, op.Cond == wire.CondNone)
	return r.Done, err
}

// SetString is Set with a string key and value.
func (t *Table) SetString(ctx context.Context, key, value string, opts ...SetOption) error {
	return t.Set(ctx, []byte(key), []byte(value), opts...)
}

// GetString is Get with a string key, returning the value as a string. It
// returns ErrNotFound, as Get does, when key does not exist; an existing
// empty value is "" with a nil error.
func (t *Table) GetString(ctx context.Context, key string) (string, error) {
	v, err := t.Get(ctx, []byte(key))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// SetGet is SetIf that also returns the previous value (Redis SET ...
// GET).
func (t *Table) SetGet(ctx context.Context, key, value []byte, opts ...SetOption) (SetResult, error) {
	op := setOp(key, value, opts)
	op.ReturnOld = true
	r, err := t.write1(ctx, op, false)
	if err != nil {
		return SetResult{}, err
	}
	if r.Found && r.Old == nil {
		r.Old = []byte{}
	}
	return SetResult{Written: r.Done, Old: r.Old, Existed: r.Found}, nil
}

// Delete removes key and reports whether it existed. If a connection fails
// after the request was sent the delete is retried, and the report then
// reflects the retry.
func (t *Table) Delete(ctx context.Context, key []byte) (bool, error) {
	r, err := t.write1(ctx, wire.Op{Type: wire.OpDelete, Key: key}, true)
	return r.Done, err
}

// Expire sets key's time to live and reports whether the key exists. A ttl
// ≤ 0 deletes the key, as Redis EXPIRE does.
func (t *Table) Expire(ctx context.Context, key []byte, ttl time.Duration) (bool, error) {
	ms := ttl.Milliseconds()
	if ttl > 0 && ms == 0 {
		ms = 1
	}
	if ttl <= 0 {
		ms = -1
	}
	r, err := t.write1(ctx, wire.Op{Type: wire.OpExpire, Key: key, TTL: ms}, true)
	return r.Done, err
}

// Persist removes key's expiry and reports whether it had one.
func (t *Table) Persist(ctx context.Context, key []byte) (bool, error) {
	r, err := t.write1(ctx, wire.Op{Type: wire.OpPersist, Key: key}, true)
	return r.Done, err
}

// Incr adds 1 to the integer at key (a missing key counts as 0) and returns
// the result.
func (t *Table) Incr(ctx context.Context, key []byte) (int64, error) {
	return t.IncrBy(ctx, key, 1)
}

// IncrBy adds delta to the integer at key (a missing key counts as 0) and
// returns the result. The value must be a base-10 signed 64-bit integer
// (ErrNotInteger otherwise) and the result must fit (ErrOverflow); on error
// the value is left untouched. The key keeps its expiry.
func (t *Table) IncrBy(ctx context.Context, key []byte, delta int64) (int64, error) {
	r, err := t.write1(ctx, wire.Op{Type: wire.OpIncr, Key: key, Delta: delta}, false)
	return r.Int, err
}

// ListOptions page through the keys of a hashtag.
type ListOptions struct {
	// After is the last key of the previous page; empty starts at the
	// beginning.
	After []byte
	// Limit is the page size (default 100, at most Limits.MaxMultiKeys).
	Limit int
	// Values asks for the values too.
	Values bool
}

// Page is one page of List.
type Page struct {
	KVs []KV
	// More reports whether keys follow; pass the last key as After.
	More bool
}

// List returns, in key order, a page of the keys whose hashtag is tag.
func (t *Table) List(ctx context.Context, tag []byte, o ListOptions) (Page, error) {
	if len(tag) == 0 {
		return Page{}, fmt.Errorf("%w: empty hashtag", ErrInvalid)
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if err := t.c.limits.CheckMulti(o.Limit); err != nil {
		return Page{}, fromWire(err)
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	var page Page
	err := t.c.do(ctx, true, func(m *placement.Map) error {
		tbl := m.Table(t.name)
		if tbl == nil {
			return tableErr{t.name}
		}
		part := placement.PartitionOfTag(tag, len(tbl.Partitions))
		_, addr, err := route(m, t.name, part)
		if err != nil {
			return err
		}
		req := wire.ListRequest{Table: tbl.ID, Epoch: m.Epoch, Partition: part, Tag: tag, After: o.After, Limit: o.Limit, Values: o.Values}
		var reply wire.ListReply
		if err := t.c.call(ctx, addr, wire.KindList, &req, &reply); err != nil {
			return err
		}
		page = Page{KVs: make([]KV, len(reply.Keys)), More: reply.More}
		for i, k := range reply.Keys {
			page.KVs[i].Key = k
			if o.Values && i < len(reply.Values) {
				page.KVs[i].Value = reply.Values[i]
			}
		}
		return nil
	})
	return page, err
}

// DeleteTag deletes every key whose hashtag is tag and returns how many it
// deleted. Each round deletes a bounded number of keys atomically; keys of
// the tag written concurrently may survive.
func (t *Table) DeleteTag(ctx context.Context, tag []byte) (int, error) {
	if len(tag) == 0 {
		return 0, fmt.Errorf("%w: empty hashtag", ErrInvalid)
	}
	ctx, call := t.c.withTimeout(ctx)
	defer call.release()
	total := 0
	for {
		res, err := t.write(ctx, tag, []wire.Op{{Type: wire.OpDeleteTag, Key: tag}}, true)
		if err != nil {
			return total, err
		}
		if res[0].Int == 0 {
			return total, nil
		}
		total += int(res[0].Int)
	}
}
