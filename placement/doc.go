// Package placement holds the cluster-map vocabulary shared by every other
// package (node, table, partition and map types), the key-to-partition
// routing function, and the replica placement and rebalancing algorithms the
// meta group uses.
//
// Everything here is pure and deterministic: no I/O, no clock, no goroutines.
// The same inputs always give the same outputs, so the meta leader can compute
// a placement and propose it as an explicit assignment that every meta member
// applies identically.
//
// Routing follows the Redis hashtag rule: when a key contains a '{' followed
// later by a '}' with at least one byte between them, only those bytes (the
// hashtag) are hashed; otherwise the whole key is. The partition of a key is
// xxhash64(routing key) modulo the table's partition count.
package placement
