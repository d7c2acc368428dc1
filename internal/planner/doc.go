// Package planner decides where the replicas and masters of every partition
// live: it places new tables and plans the moves that rebalance existing
// ones. It works on the cluster-map vocabulary of package placement (nodes
// with labels, weights and states; tables and their partitions) and only
// computes; executing a plan is the meta group's job.
//
// # Entry points
//
//   - Place computes the complete assignment of a new table: a master and
//     Replication-1 slaves per partition, in distinct failure domains, with
//     every up node holding its weighted share of the replicas and masters.
//   - Rebalance computes the Plan that turns a current assignment into a
//     balanced one after an expansion, a drain, a node going down, a weight
//     or label change, or a change of a table's rule or replication factor,
//     moving as few replicas as it can.
//   - RebalanceMasters computes a Plan of ChangeMaster moves only (planned
//     switchovers, no data copied) that spreads masters by weight again, for
//     example after failovers piled them on a few nodes.
//
// A Plan lists its moves (AddReplica, ChangeMaster, RemoveReplica) in an
// order that is safe to execute one after the other, groups them into
// concurrent steps (Plan.Steps), and carries the target assignment, a
// Report of the rules the topology could not satisfy, and a Summary of the
// moves and the per-node load before and after, with lower bounds on the
// moves any balanced assignment needs.
//
// # Determinism
//
// Everything here is pure and deterministic: no I/O, no clock, no goroutines
// and no randomness (ties are broken by a hash of the inputs). The result
// depends only on the arguments, not on their order, so the meta leader can
// compute a placement or a plan and propose it as explicit data that every
// meta member applies identically.
//
// Only package meta imports this package. It is an implementation room, not
// covered by compatibility; docs/placement.md describes the algorithms and
// their guarantees.
package planner
