package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// ErrCorrupt is wrapped by every error Decode and Peek return for input that
// is not a well-formed record: a bad checksum, an unknown format version, a
// length running past the end of the input, an unknown effect kind or
// trailing bytes. Test for it with errors.Is.
var ErrCorrupt = errors.New("binlog: corrupt record")

// Version is the format byte that starts every record this package writes.
const Version byte = 1

// headerSize is the format byte plus the CRC-32C.
const headerSize = 1 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EffectKind is the kind of one effect.
type EffectKind uint8

// Effect kinds.
const (
	// EffectSet stores Key = Value with the absolute expiry ExpireAt (Unix
	// milliseconds, 0 = none).
	EffectSet EffectKind = iota + 1
	// EffectDelete deletes Key.
	EffectDelete
	// EffectClear deletes every key of the partition (a flush). Key, Value and
	// ExpireAt are unused.
	EffectClear
)

// String returns the kind's name.
func (k EffectKind) String() string {
	switch k {
	case EffectSet:
		return "set"
	case EffectDelete:
		return "delete"
	case EffectClear:
		return "clear"
	}
	return fmt.Sprintf("effect(%d)", uint8(k))
}

// Effect is one state change a record makes, already resolved by the master:
// an increment is logged as the value it produced, a relative TTL as an
// absolute expiry.
type Effect struct {
	Kind EffectKind
	// Key is the user key (EffectSet, EffectDelete). It must not be empty.
	Key []byte
	// Value is the new value (EffectSet only).
	Value []byte
	// ExpireAt is the absolute expiry in Unix milliseconds, 0 for none
	// (EffectSet only). It must not be negative.
	ExpireAt int64
}

// Record is one binlog record: the effects of one atomic write group, the
// position it occupies in its partition's log and the master generation that
// wrote it.
type Record struct {
	Seq     uint64 // position in the partition's log, from 1
	Gen     uint64 // master generation that wrote the record
	TimeMs  int64  // master's clock when it wrote the record, Unix ms
	Effects []Effect
}

// AppendEncode appends the encoding of r to dst and returns the extended
// slice.
//
// The layout is
//
//	version(1) crc32c(4, big endian, of everything after it)
//	uvarint(seq) uvarint(gen) varint(timeMs) uvarint(len(effects))
//	effects: kind(1) then
//	  set:    uvarint(len(key)) key uvarint(len(value)) value uvarint(expireAt)
//	  delete: uvarint(len(key)) key
//	  clear:  nothing
//
// Fields that a kind does not use are not encoded. Effects with an empty key
// (set, delete), a negative ExpireAt or an unknown kind encode into bytes that
// Decode rejects; callers never build such effects.
func (r *Record) AppendEncode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, Version, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, r.Seq)
	dst = binary.AppendUvarint(dst, r.Gen)
	dst = binary.AppendVarint(dst, r.TimeMs)
	dst = binary.AppendUvarint(dst, uint64(len(r.Effects)))
	for i := range r.Effects {
		e := &r.Effects[i]
		dst = append(dst, byte(e.Kind))
		switch e.Kind {
		case EffectSet:
			dst = appendBytes(dst, e.Key)
			dst = appendBytes(dst, e.Value)
			dst = binary.AppendUvarint(dst, uint64(e.ExpireAt))
		case EffectDelete:
			dst = appendBytes(dst, e.Key)
		}
	}
	sum := crc32.Checksum(dst[start+headerSize:], castagnoli)
	binary.BigEndian.PutUint32(dst[start+1:], sum)
	return dst
}

// EncodedSize returns the number of bytes AppendEncode appends for r.
func (r *Record) EncodedSize() int {
	n := headerSize + uvarintLen(r.Seq) + uvarintLen(r.Gen) +
		uvarintLen(zigzag(r.TimeMs)) + uvarintLen(uint64(len(r.Effects)))
	for i := range r.Effects {
		e := &r.Effects[i]
		n++
		switch e.Kind {
		case EffectSet:
			n += bytesLen(e.Key) + bytesLen(e.Value) + uvarintLen(uint64(e.ExpireAt))
		case EffectDelete:
			n += bytesLen(e.Key)
		}
	}
	return n
}

// Decode decodes one record. It verifies the checksum, every length against
// the bytes that remain, the effect kinds and the absence of trailing bytes;
// any failure returns an error wrapping ErrCorrupt. Decode never panics, and
// it allocates at most one copy of b plus the effect slice, whose length is
// bounded by len(b).
//
// The returned record does not alias b: its keys and values point into one
// private copy of the input, each with its capacity clipped to its length,
// so the caller may keep them and b may be reused.
func Decode(b []byte) (Record, error) {
	d, err := open(b)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if r.Seq, err = d.uvarint("seq"); err != nil {
		return Record{}, err
	}
	if r.Gen, err = d.uvarint("gen"); err != nil {
		return Record{}, err
	}
	if r.TimeMs, err = d.varint("time"); err != nil {
		return Record{}, err
	}
	n, err := d.uvarint("effect count")
	if err != nil {
		return Record{}, err
	}
	// Every effect takes at least its kind byte.
	if n > uint64(len(d.b)-d.off) {
		return Record{}, corruptf("effect count %d exceeds the %d remaining bytes", n, len(d.b)-d.off)
	}
	if n > 0 {
		r.Effects = make([]Effect, n)
	}
	for i := range r.Effects {
		e := &r.Effects[i]
		if d.off >= len(d.b) {
			return Record{}, corruptf("effect %d: truncated", i)
		}
		e.Kind = EffectKind(d.b[d.off])
		d.off++
		switch e.Kind {
		case EffectSet:
			if e.Key, err = d.bytes("key"); err != nil {
				return Record{}, err
			}
			if e.Value, err = d.bytes("value"); err != nil {
				return Record{}, err
			}
			x, err := d.uvarint("expiry")
			if err != nil {
				return Record{}, err
			}
			if x > math.MaxInt64 {
				return Record{}, corruptf("effect %d: expiry %d out of range", i, x)
			}
			e.ExpireAt = int64(x)
		case EffectDelete:
			if e.Key, err = d.bytes("key"); err != nil {
				return Record{}, err
			}
		case EffectClear:
		default:
			return Record{}, corruptf("effect %d: unknown kind %d", i, e.Kind)
		}
		if e.Kind != EffectClear && len(e.Key) == 0 {
			return Record{}, corruptf("effect %d: empty key", i)
		}
	}
	if d.off != len(d.b) {
		return Record{}, corruptf("%d trailing bytes", len(d.b)-d.off)
	}
	return r, nil
}

// Peek decodes only the header of an encoded record: its seq, gen and time.
// It does not verify the checksum (Decode does); it returns an error wrapping
// ErrCorrupt when the header itself is malformed.
func Peek(b []byte) (seq, gen uint64, timeMs int64, err error) {
	if len(b) < headerSize {
		return 0, 0, 0, corruptf("%d bytes is shorter than the header", len(b))
	}
	if b[0] != Version {
		return 0, 0, 0, corruptf("unknown format version %d", b[0])
	}
	d := decoder{b: b, off: headerSize}
	if seq, err = d.uvarint("seq"); err != nil {
		return 0, 0, 0, err
	}
	if gen, err = d.uvarint("gen"); err != nil {
		return 0, 0, 0, err
	}
	if timeMs, err = d.varint("time"); err != nil {
		return 0, 0, 0, err
	}
	return seq, gen, timeMs, nil
}

// open checks the version and the checksum and returns a decoder over a
// private copy of b positioned after the header.
func open(b []byte) (decoder, error) {
	if len(b) < headerSize {
		return decoder{}, corruptf("%d bytes is shorter than the header", len(b))
	}
	if b[0] != Version {
		return decoder{}, corruptf("unknown format version %d", b[0])
	}
	want := binary.BigEndian.Uint32(b[1:])
	if got := crc32.Checksum(b[headerSize:], castagnoli); got != want {
		return decoder{}, corruptf("checksum mismatch (got %08x, want %08x)", got, want)
	}
	own := make([]byte, len(b))
	copy(own, b)
	return decoder{b: own, off: headerSize}, nil
}

type decoder struct {
	b   []byte
	off int
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint(what string) (uint64, error) {
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, corruptf("bad %s varint at offset %d", what, d.off)
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		// Overlong encodings would not re-encode to the same bytes.
		return 0, corruptf("non-minimal %s varint at offset %d", what, d.off)
	}
	d.off += n
	return x, nil
}

func (d *decoder) varint(what string) (int64, error) {
	u, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	return unzigzag(u), nil
}

// bytes reads a length-prefixed byte string; the result shares d.b with its
// capacity clipped.
func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, corruptf("%s length %d exceeds the %d remaining bytes", what, n, len(d.b)-d.off)
	}
	end := d.off + int(n)
	v := d.b[d.off:end:end]
	d.off = end
	return v, nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func bytesLen(b []byte) int { return uvarintLen(uint64(len(b))) + len(b) }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// zigzag mirrors binary.AppendVarint's encoding.
func zigzag(x int64) uint64 {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return ux
}

func unzigzag(ux uint64) int64 {
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}
