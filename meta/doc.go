// Package meta runs the meta group: a dragonboat Raft group of 1, 3 or 5
// members whose replicated state machine holds the cluster map (nodes,
// tables, partition assignments, generations and the epoch), and the meta
// service every other role talks to.
//
// Only this package imports dragonboat; its exported API speaks the store's
// own types. It is an implementation room, not covered by compatibility:
// embed the store through package zeppelin and talk to it through package
// client.
//
// # State
//
// The state machine is the map itself, kept in memory and replaced
// copy-on-write on every update, so readers (Pull, any member, from its
// local copy) never block writers. Updates are deterministic: decisions that
// need computation or time (placement of a new table, failover) are made by
// the proposing member and proposed as explicit assignments carrying the
// epoch they were computed against; the state machine rejects them when the
// map has moved on, and the proposer recomputes.
//
// # Leader duties
//
// The member that is Raft leader also runs the failure detector. Data nodes
// heartbeat it; it keeps the last heartbeat time and the replica progress
// each node reports in memory only. A heartbeat is acknowledged only after a
// linearizable read has confirmed leadership, which is what makes the
// master lease of the data nodes sound. A node silent for DownTimeout is
// declared down, and every partition it mastered fails over to the up slave
// with the highest reported (gen, seq), with gen+1, in the same proposal. A
// newly elected leader collects heartbeats for a full DownTimeout before it
// declares anything down.
package meta
