package wire

import "fmt"

// Limits bound what one request may carry. Clients check them before
// sending and servers check them again on arrival; exceeding one is a
// CodeInvalid error that names the limit, and nothing is written.
type Limits struct {
	MaxKeySize   int `json:"max_key_size"`   // bytes per key (default 60 KiB: the store caps stored keys at 65,000 bytes)
	MaxValueSize int `json:"max_value_size"` // bytes per value (default 16 MiB)
	MaxBatchOps  int `json:"max_batch_ops"`  // operations per atomic batch (default 10,000)
	MaxMultiKeys int `json:"max_multi_keys"` // keys per MGet/MSet/MDelete (default 10,000)
}

// DefaultLimits returns the documented default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxKeySize:   60 << 10,
		MaxValueSize: 16 << 20,
		MaxBatchOps:  10_000,
		MaxMultiKeys: 10_000,
	}
}

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxKeySize <= 0 {
		l.MaxKeySize = d.MaxKeySize
	}
	if l.MaxValueSize <= 0 {
		l.MaxValueSize = d.MaxValueSize
	}
	if l.MaxBatchOps <= 0 {
		l.MaxBatchOps = d.MaxBatchOps
	}
	if l.MaxMultiKeys <= 0 {
		l.MaxMultiKeys = d.MaxMultiKeys
	}
	return l
}

// FrameLimit is the largest RPC frame a process with limits l accepts, on
// both ends of a connection: room for four values and a multi-key request's
// worth of keys of the largest sizes, plus 64 MiB for everything else, and
// never more than 1 GiB. l should have its defaults applied (WithDefaults).
func (l Limits) FrameLimit() int {
	n := int64(l.MaxValueSize)*4 + int64(l.MaxKeySize)*int64(l.MaxMultiKeys) + 64<<20
	return int(min(max(n, 64<<20), 1<<30))
}

// CheckKey validates one key.
func (l Limits) CheckKey(key []byte) *Error {
	if len(key) == 0 {
		return Errorf(CodeInvalid, "empty key")
	}
	if len(key) > l.MaxKeySize {
		return Errorf(CodeInvalid, "key of %d bytes exceeds the key size limit (MaxKeySize %d)", len(key), l.MaxKeySize)
	}
	return nil
}

// CheckValue validates one value.
func (l Limits) CheckValue(v []byte) *Error {
	if len(v) > l.MaxValueSize {
		return Errorf(CodeInvalid, "value of %d bytes exceeds the value size limit (MaxValueSize %d)", len(v), l.MaxValueSize)
	}
	return nil
}

// CheckOps validates the operations of one atomic group.
func (l Limits) CheckOps(ops []Op) *Error {
	if len(ops) == 0 {
		return Errorf(CodeInvalid, "empty batch")
	}
	if len(ops) > l.MaxBatchOps {
		return Errorf(CodeInvalid, "batch of %d operations exceeds the batch limit (MaxBatchOps %d)", len(ops), l.MaxBatchOps)
	}
	for i := range ops {
		op := &ops[i]
		if op.Type == OpFlush {
			continue
		}
		if err := l.CheckKey(op.Key); err != nil {
			return err
		}
		if err := l.CheckValue(op.Value); err != nil {
			return err
		}
		if op.Type < OpSet || op.Type > OpFlush {
			return Errorf(CodeInvalid, "unknown operation type %d", op.Type)
		}
		if op.Cond > CondIfPresent {
			return Errorf(CodeInvalid, "unknown set condition %d", op.Cond)
		}
		if op.TTL < 0 && op.Type == OpSet {
			return Errorf(CodeInvalid, "negative TTL")
		}
	}
	return nil
}

// CheckMulti validates the key count of a multi-key operation.
func (l Limits) CheckMulti(n int) *Error {
	if n > l.MaxMultiKeys {
		return Errorf(CodeInvalid, "%d keys exceed the multi-key limit (MaxMultiKeys %d)", n, l.MaxMultiKeys)
	}
	return nil
}

// String describes the limits.
func (l Limits) String() string {
	return fmt.Sprintf("key ≤ %d B, value ≤ %d B, batch ≤ %d ops, multi ≤ %d keys",
		l.MaxKeySize, l.MaxValueSize, l.MaxBatchOps, l.MaxMultiKeys)
}

// MaxRequestElements is the array-element budget for decoding one request
// under these limits: room for a full batch or multi-key request with its
// groups, and little more.
func (l Limits) MaxRequestElements() int {
	return 8*max(l.MaxBatchOps, l.MaxMultiKeys) + 1024
}
