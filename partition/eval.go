package partition

import (
	"bytes"
	"math"
	"slices"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// cell is a key's value as a group sees it.
type cell struct {
	present bool
	value   []byte
	exp     int64
}

// evaluator runs one write group against the transaction, recording its
// writes as the effects for the record, which are also the group's
// overlay (so a failing group leaves no trace): a key's last effect since
// the group's last flush is its value as the group sees it.
type evaluator struct {
	r       *Replica
	txn     *badger.Txn
	now     int64
	dp, ip  []byte // data and index prefixes of the incarnation in force
	cleared bool   // the group flushed: keys without an effect since are absent
	effects []binlog.Effect
	// base is where the effects since the group's last flush start; ov
	// indexes each of their keys' last one once there are more than
	// scanWritten (fewer are looked through one by one).
	base int
	ov   map[string]int
	// batch is the appender of the group's batch, whose earlier groups'
	// writes txn holds but the read cache does not yet; nil reads no cache.
	batch *appender
}

// get returns key's live value as the group sees it.
func (e *evaluator) get(key []byte) (cell, error) {
	if c, ok := e.overlay(key); ok {
		if c.present && !live(c.exp, e.now) {
			return cell{}, nil
		}
		return c, nil
	}
	if e.cleared {
		return cell{}, nil
	}
	if e.batch.cacheable(key) {
		// The cache answers as of the last commit, which is what txn
		// sees for a key no group of this batch has written.
		if v, exp, found, _, ok := e.r.cachedGet(key, e.now, nil); ok {
			if !found {
				return cell{}, nil
			}
			return cell{present: true, value: v, exp: exp}, nil
		}
	}
	v, exp, found, err := getLive(e.txn, e.dp, key, e.now)
	if err != nil || !found {
		return cell{}, err
	}
	return cell{present: true, value: v, exp: exp}, nil
}

// overlay returns key's cell as the group's own effects left it, if any
// since its last flush wrote key.
func (e *evaluator) overlay(key []byte) (cell, bool) {
	if e.ov != nil {
		i, ok := e.ov[string(key)]
		if !ok {
			return cell{}, false
		}
		return effectCell(&e.effects[i]), true
	}
	for i := len(e.effects) - 1; i >= e.base; i-- {
		if ef := &e.effects[i]; bytes.Equal(ef.Key, key) {
			return effectCell(ef), true
		}
	}
	return cell{}, false
}

// effectCell is the cell a set or delete effect leaves.
func effectCell(ef *binlog.Effect) cell {
	if ef.Kind != binlog.EffectSet {
		return cell{}
	}
	return cell{present: true, value: ef.Value, exp: ef.ExpireAt}
}

// record appends a set or delete effect.
func (e *evaluator) record(ef binlog.Effect) {
	e.effects = append(e.effects, ef)
	n := len(e.effects)
	switch {
	case e.ov != nil:
		e.ov[string(ef.Key)] = n - 1
	case n-e.base > scanWritten:
		e.ov = make(map[string]int, 2*(n-e.base))
		for i := e.base; i < n; i++ {
			e.ov[string(e.effects[i].Key)] = i
		}
	}
}

func (e *evaluator) put(key, value []byte, exp int64) {
	e.record(binlog.Effect{Kind: binlog.EffectSet, Key: key, Value: value, ExpireAt: exp})
}

func (e *evaluator) del(key []byte) {
	e.record(binlog.Effect{Kind: binlog.EffectDelete, Key: key})
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
				if n, ok = wire.ParseInt(c.value); !ok {
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
			e.base = len(e.effects)
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
	last := make(map[string]cell)
	for i := e.base; i < len(e.effects); i++ {
		last[string(e.effects[i].Key)] = effectCell(&e.effects[i])
	}
	for k, c := range last {
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
