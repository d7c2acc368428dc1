// Package binlog defines a partition's binlog record and its compact binary
// encoding, and the keys under which records live in the node's Badger store.
//
// This is an implementation package: it is not covered by compatibility
// promises. Embed the store through the zeppelin and client packages.
//
// A Record holds the effects of one atomic write group, already resolved by
// the partition master: a set carries the value and the absolute expiry the
// master computed (an increment is logged as the value it produced), a
// delete names its key, and a clear empties the partition. Replaying the
// records of a partition in seq order therefore reproduces its data exactly,
// on any replica and at any time.
//
// Encoding and decoding:
//
//	rec := binlog.Record{Seq: 7, Gen: 2, TimeMs: now, Effects: []binlog.Effect{
//		{Kind: binlog.EffectSet, Key: []byte("k"), Value: []byte("v"), ExpireAt: now + 60_000},
//		{Kind: binlog.EffectDelete, Key: []byte("old")},
//	}}
//	buf := rec.AppendEncode(nil)
//
//	got, err := binlog.Decode(buf)          // checks the CRC-32C and every length
//	if errors.Is(err, binlog.ErrCorrupt) { ... }
//	seq, gen, t, err := binlog.Peek(buf)    // header only, no checksum
//
// Decode is safe on hostile input: it never panics, it never allocates more
// than the input's size implies, and it rejects trailing bytes and
// non-minimal varints, so every accepted input re-encodes to the same bytes.
// Decoded keys and values do not alias the input.
//
// Records are stored in the node's store under
//
//	'l' table(4) partition(4) incarnation(4) seq(8)
//
// (docs/storage.md). LogPrefix, LogKey and SeqOfKey build and parse these
// keys; the partition package owns reading and writing them.
package binlog
