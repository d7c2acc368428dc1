// Package placement holds the cluster-map vocabulary shared by every other
// package (node, table, partition and map types) and the key-to-partition
// routing function.
//
// Everything here is pure and deterministic: no I/O, no clock, no goroutines.
// Deciding where replicas and masters go is not done here but in
// internal/planner, which only the meta group uses; this package stays light
// because every other package imports it.
//
// Routing follows the Redis hashtag rule: when a key contains a '{' followed
// later by a '}' with at least one byte between them, only those bytes (the
// hashtag) are hashed; otherwise the whole key is. The partition of a key is
// xxhash64(routing key) modulo the table's partition count.
package placement
