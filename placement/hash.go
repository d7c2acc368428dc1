package placement

import (
	"bytes"

	"github.com/cespare/xxhash/v2"
)

// Hashtag returns the hashtag of key: the bytes between the first '{' and the
// next '}' when that span is non-empty. It returns nil when key has no
// hashtag. The returned slice aliases key.
func Hashtag(key []byte) []byte {
	open := bytes.IndexByte(key, '{')
	if open < 0 {
		return nil
	}
	end := bytes.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return nil
	}
	return key[open+1 : open+1+end]
}

// RoutingKey returns the bytes that decide the partition of key: its hashtag
// when it has one, otherwise the whole key. The returned slice aliases key.
func RoutingKey(key []byte) []byte {
	if tag := Hashtag(key); tag != nil {
		return tag
	}
	return key
}

// HashKey returns the 64-bit routing hash of key.
func HashKey(key []byte) uint64 {
	return xxhash.Sum64(RoutingKey(key))
}

// PartitionOf returns the partition that key belongs to in a table of n
// partitions. n must be positive.
func PartitionOf(key []byte, n int) PartitionID {
	return PartitionID(HashKey(key) % uint64(n))
}

// PartitionOfTag returns the partition that every key with hashtag tag
// belongs to in a table of n partitions.
func PartitionOfTag(tag []byte, n int) PartitionID {
	return PartitionID(xxhash.Sum64(tag) % uint64(n))
}
