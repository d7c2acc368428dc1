// Package node runs a data node: it holds partition replicas in the node's
// one store, serves reads and writes for the partitions it masters,
// replicates the ones it slaves from their masters, and keeps the meta group
// informed through heartbeats.
//
// The node never imports the meta package: it talks to the meta group only
// through wire messages, behind the small MetaClient interface it declares.
// It is an implementation room, not covered by compatibility: embed the
// store through package zeppelin.
//
// # Map
//
// The node follows the cluster map. A heartbeat reply carrying a newer epoch
// (or a request from a client that knows one) makes it pull the map; it then
// opens, promotes, demotes and drops replicas to match, and persists the map
// so that a restart knows which replicas it holds. A restarted node serves
// nothing and deletes nothing until it has pulled a fresh map: until then it
// answers with a retryable wait.
//
// # Writes and fencing
//
// A master accepts writes only for partitions the map says it masters and
// that are not held for a handover. It holds a lease: the time it sent its
// last heartbeat that the meta leader acknowledged, plus MasterLease. On a
// fenced table a master whose lease has lapsed answers writes with a wait,
// so it stops before the meta group may promote another master (the meta
// group waits DownTimeout, longer than the lease, after the last heartbeat).
// Reads of a fenced table are fenced too: they are answered only while the
// lease holds, and every reply carries the lease left so that the client
// can drop one that arrives after it ran out. Reads of an unfenced table
// are served from the master's copy even while it is cut off from the meta
// group. A sync table's master answers a read only once its in-sync set
// holds everything the read could see (insync.go).
//
// # Replication
//
// Each slave replica runs one goroutine that handshakes with its master
// ((gen, seq) of its last record) and then long-polls the master for binlog
// records, applying each batch in one transaction and acknowledging what it
// holds with the next request. When the master answers that the slave's log
// has diverged or fallen behind the retained binlog, the slave loads a
// consistent snapshot first (full sync).
package node
