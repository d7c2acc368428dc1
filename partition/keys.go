package partition

import (
	"encoding/binary"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/binlog"
)

// Key prefixes of the node's store (docs/storage.md).
const (
	prefixState   = 's'
	prefixData    = 'd'
	prefixIndex   = 'x'
	prefixGarbage = 'g'
	prefixMeta    = 'n'
)

// Kinds of garbage markers.
const (
	garbageData = 'd' // data and index keys of one data incarnation
	garbageLog  = 'l' // log keys of one log incarnation
)

// maxBadgerKey is Badger's limit on the length of a key.
const maxBadgerKey = 65000

// partPrefixLen is the length of kind | table | partition.
const partPrefixLen = 1 + 4 + 4

// incPrefixLen is the length of kind | table | partition | incarnation.
const incPrefixLen = partPrefixLen + 4

func putTP(b []byte, kind byte, table, part uint32) {
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], table)
	binary.BigEndian.PutUint32(b[5:], part)
}

// stateKey is s T P.
func stateKey(table, part uint32) []byte {
	k := make([]byte, partPrefixLen)
	putTP(k, prefixState, table, part)
	return k
}

// parseStateKey returns the table and partition of a state key.
func parseStateKey(k []byte) (table, part uint32, ok bool) {
	if len(k) != partPrefixLen || k[0] != prefixState {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint32(k[5:]), true
}

// incPrefix is kind T P I: the data or index prefix of one incarnation.
func incPrefix(kind byte, table, part, inc uint32) []byte {
	k := make([]byte, incPrefixLen)
	putTP(k, kind, table, part)
	binary.BigEndian.PutUint32(k[partPrefixLen:], inc)
	return k
}

// withSuffix returns prefix ‖ suffix in a new slice.
func withSuffix(prefix, suffix []byte) []byte {
	k := make([]byte, len(prefix)+len(suffix))
	copy(k, prefix)
	copy(k[len(prefix):], suffix)
	return k
}

// tagPrefix is x T P I uvarint(len(tag)) tag, built from an index
// incarnation prefix.
func tagPrefix(indexPrefix, tag []byte) []byte {
	k := make([]byte, 0, len(indexPrefix)+binary.MaxVarintLen64+len(tag))
	k = append(k, indexPrefix...)
	k = binary.AppendUvarint(k, uint64(len(tag)))
	return append(k, tag...)
}

// garbagePartPrefix is g T P: every garbage marker of one replica.
func garbagePartPrefix(table, part uint32) []byte {
	k := make([]byte, partPrefixLen)
	putTP(k, prefixGarbage, table, part)
	return k
}

// garbageKey is g T P kind I.
func garbageKey(table, part uint32, kind byte, inc uint32) []byte {
	k := make([]byte, partPrefixLen+1+4)
	putTP(k, prefixGarbage, table, part)
	k[partPrefixLen] = kind
	binary.BigEndian.PutUint32(k[partPrefixLen+1:], inc)
	return k
}

// marker is a parsed garbage key.
type marker struct {
	table, part uint32
	kind        byte
	inc         uint32
}

func parseGarbageKey(k []byte) (marker, bool) {
	if len(k) != partPrefixLen+1+4 || k[0] != prefixGarbage {
		return marker{}, false
	}
	m := marker{
		table: binary.BigEndian.Uint32(k[1:]),
		part:  binary.BigEndian.Uint32(k[5:]),
		kind:  k[partPrefixLen],
		inc:   binary.BigEndian.Uint32(k[partPrefixLen+1:]),
	}
	if m.kind != garbageData && m.kind != garbageLog {
		return marker{}, false
	}
	return m, true
}

func (m marker) key() []byte { return garbageKey(m.table, m.part, m.kind, m.inc) }

// prefixes returns the key prefixes whose keys the marker condemns.
func (m marker) prefixes() [][]byte {
	if m.kind == garbageLog {
		return [][]byte{binlog.LogPrefix(m.table, m.part, m.inc)}
	}
	return [][]byte{incPrefix(prefixData, m.table, m.part, m.inc), incPrefix(prefixIndex, m.table, m.part, m.inc)}
}

func (m marker) String() string {
	return fmt.Sprintf("%d/%d %c%d", m.table, m.part, m.kind, m.inc)
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// metaKey is n name.
func metaKey(name string) []byte {
	k := make([]byte, 1+len(name))
	k[0] = prefixMeta
	copy(k[1:], name)
	return k
}

// encodeValue returns uvarint(expireAt) ‖ value, the stored form of a data
// key's value.
func encodeValue(expireAt int64, value []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(value))
	b = binary.AppendUvarint(b, uint64(expireAt))
	return append(b, value...)
}

// decodeValue splits a stored value. The returned value aliases b.
func decodeValue(b []byte) (expireAt int64, value []byte, err error) {
	x, n := binary.Uvarint(b)
	if n <= 0 || x > 1<<63-1 {
		return 0, nil, fmt.Errorf("partition: corrupt stored value (bad expiry prefix)")
	}
	return int64(x), b[n:], nil
}

// badgerExpiry converts an absolute expiry in Unix milliseconds into Badger's
// ExpiresAt, whole Unix seconds rounded up so Badger never hides a key before
// the store itself considers it expired. 0 means none.
func badgerExpiry(expireAt int64) uint64 {
	if expireAt <= 0 {
		return 0
	}
	return uint64(expireAt/1000) + boolToUint(expireAt%1000 != 0)
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// live reports whether a key with expiry expireAt exists at now.
func live(expireAt, now int64) bool { return expireAt == 0 || expireAt > now }
