package client

import (
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// SetOption modifies a Set, SetIf, SetString, SetGet, MSet or Batch.Set.
// WithTTL, IfAbsent, IfPresent and KeepTTL make them; the zero SetOption
// changes nothing.
type SetOption struct {
	apply func(*wire.Op)
}

// WithTTL makes the key expire after ttl (millisecond precision). The
// master turns it into an absolute expiry time, so every replica expires the
// key at the same instant. A ttl ≤ 0 means no expiry.
func WithTTL(ttl time.Duration) SetOption {
	return SetOption{func(op *wire.Op) {
		if ttl > 0 {
			op.TTL = max(ttl.Milliseconds(), 1)
		} else {
			op.TTL = 0
		}
	}}
}

// IfAbsent writes only when the key does not exist (Redis NX). Use it with
// SetIf, SetGet, MSet or Batch.Set: Set refuses it.
func IfAbsent() SetOption { return SetOption{func(op *wire.Op) { op.Cond = wire.CondIfAbsent }} }

// IfPresent writes only when the key exists (Redis XX). Use it with SetIf,
// SetGet, MSet or Batch.Set: Set refuses it.
func IfPresent() SetOption { return SetOption{func(op *wire.Op) { op.Cond = wire.CondIfPresent }} }

// KeepTTL keeps the existing key's expiry instead of clearing it (Redis
// KEEPTTL). A TTL option given too wins.
func KeepTTL() SetOption { return SetOption{func(op *wire.Op) { op.KeepTTL = true }} }

func setOp(key, value []byte, opts []SetOption) wire.Op {
	op := wire.Op{Type: wire.OpSet, Key: key, Value: value}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&op)
		}
	}
	if op.TTL > 0 {
		op.KeepTTL = false
	}
	return op
}

// NoTTL is what TTL returns for a key without expiry.
const NoTTL time.Duration = -1

// KV is a key and its value.
type KV struct {
	Key   []byte
	Value []byte
}

// Result is the outcome of reading one key: Found distinguishes a missing
// key from an empty value.
type Result struct {
	Value []byte
	Found bool
}

// SetResult is the outcome of SetGet.
type SetResult struct {
	// Written reports whether the value was written (false when a
	// condition was not met).
	Written bool
	// Old is the previous value; Existed reports whether there was one.
	Old     []byte
	Existed bool
}
