package binlog

import "encoding/binary"

// PrefixByte starts every binlog key in the node's store (docs/storage.md).
const PrefixByte = 'l'

// PrefixLen is the length of a log prefix: 'l', table, partition and
// incarnation.
const PrefixLen = 1 + 4 + 4 + 4

// KeyLen is the length of a log key: the prefix and a big-endian seq.
const KeyLen = PrefixLen + 8

// LogPrefix returns the key prefix of incarnation inc of the log of
// partition part of table table: 'l' T P I, integers big endian. Keys under
// it sort by seq.
func LogPrefix(table, part, inc uint32) []byte {
	p := make([]byte, PrefixLen, KeyLen)
	p[0] = PrefixByte
	binary.BigEndian.PutUint32(p[1:], table)
	binary.BigEndian.PutUint32(p[5:], part)
	binary.BigEndian.PutUint32(p[9:], inc)
	return p
}

// LogKey returns the key of record seq under prefix (a LogPrefix). It
// returns a new slice; prefix is not modified.
func LogKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], seq)
	return k
}

// SeqOfKey returns the seq of a log key. ok is false when key is not a log
// key.
func SeqOfKey(key []byte) (seq uint64, ok bool) {
	if len(key) != KeyLen || key[0] != PrefixByte {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[PrefixLen:]), true
}
