package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// AppendSnapEntry appends one snapshot entry in the packed form of
// SnapChunkReply.Packed: uvarint(len(key)) ‖ key ‖ uvarint(expireAt) ‖
// uvarint(len(value)) ‖ value.
func AppendSnapEntry(dst, key []byte, expireAt int64, value []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(expireAt))
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// PackSnapEntries returns entries in the packed form.
func PackSnapEntries(entries []SnapEntry) []byte {
	n := 0
	for i := range entries {
		n += len(entries[i].Key) + len(entries[i].Value) + 3*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	for i := range entries {
		e := &entries[i]
		b = AppendSnapEntry(b, e.Key, e.ExpireAt, e.Value)
	}
	return b
}

var errPacked = errors.New("wire: malformed packed snapshot entries")

// UnpackSnapEntries decodes packed snapshot entries. Their keys and
// values alias b, each capped at its own length. Lengths that run past b
// and expiries beyond int64 are refused.
func UnpackSnapEntries(b []byte) ([]SnapEntry, error) {
	var entries []SnapEntry
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errPacked
		}
		b = b[n:]
		return v, nil
	}
	field := func() ([]byte, error) {
		n, err := next()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: length %d past the end", errPacked, n)
		}
		f := b[:n:n]
		b = b[n:]
		return f, nil
	}
	for len(b) > 0 {
		var e SnapEntry
		var err error
		if e.Key, err = field(); err != nil {
			return nil, err
		}
		exp, err := next()
		if err != nil {
			return nil, err
		}
		if exp > 1<<63-1 {
			return nil, fmt.Errorf("%w: expiry %d", errPacked, exp)
		}
		e.ExpireAt = int64(exp)
		if e.Value, err = field(); err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}
