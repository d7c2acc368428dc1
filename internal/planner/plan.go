package planner

import (
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// MoveKind is the kind of one step of a plan.
type MoveKind uint8

// Move kinds.
const (
	// AddReplica makes To a new replica (a slave) of the partition: it is
	// created empty, fully synced from the master and then catches up. The
	// moves that follow it for the same partition assume it has caught up
	// (and, for a sync-mode table, joined the in-sync set).
	AddReplica MoveKind = iota + 1
	// ChangeMaster makes To, already a replica, the master, and From (the
	// old master, or "" when the partition had none) a slave. It is a
	// planned switchover when From is up, a failover otherwise.
	ChangeMaster
	// RemoveReplica drops From's replica, which is never the master.
	RemoveReplica
)

// String returns "add", "master" or "remove".
func (k MoveKind) String() string {
	switch k {
	case AddReplica:
		return "add"
	case ChangeMaster:
		return "master"
	case RemoveReplica:
		return "remove"
	}
	return fmt.Sprintf("MoveKind(%d)", uint8(k))
}

// Move is one step of a plan, with everything needed to execute it.
type Move struct {
	Kind      MoveKind              `json:"kind"`
	Table     placement.TableID     `json:"table"`
	Partition placement.PartitionID `json:"partition"`
	// From is the node losing a replica (RemoveReplica) or the mastership
	// (ChangeMaster); empty for AddReplica.
	From placement.NodeID `json:"from,omitempty"`
	// To is the node gaining a replica (AddReplica) or the mastership
	// (ChangeMaster); empty for RemoveReplica.
	To placement.NodeID `json:"to,omitempty"`
}

// String describes m in one line, such as "table 3 partition 7: add n4".
func (m Move) String() string {
	head := fmt.Sprintf("table %d partition %d: %s", m.Table, m.Partition, m.Kind)
	switch m.Kind {
	case AddReplica:
		return head + " " + string(m.To)
	case RemoveReplica:
		return head + " " + string(m.From)
	}
	from := string(m.From)
	if from == "" {
		from = "(none)"
	}
	return head + " " + from + " -> " + string(m.To)
}

// Plan is the result of Rebalance or RebalanceMasters: the moves that turn
// the current assignment into a balanced, rule-respecting one.
type Plan struct {
	// Moves lists every move in an order that is safe to execute one after
	// the other: the moves of one partition are contiguous, its additions
	// come first, then its master change, then its removals, so no
	// partition ever has fewer replicas than it started with (and so never
	// fewer than its replication factor when it started with that many),
	// and no master is removed before another replica takes over.
	Moves []Move `json:"moves"`
	// Target is the assignment after all moves, one entry per input table
	// in table ID order. Only masters and slaves differ from the input;
	// removed replicas also leave InSync. Gen is not advanced: executing a
	// master change does that.
	Target []placement.Table `json:"target"`
	// Report lists rule violations and anything else that fell short.
	Report Report `json:"report"`
	// Summary counts the moves and the per-node load before and after.
	Summary Summary `json:"summary"`
}

// Empty reports whether the plan has nothing to do.
func (p *Plan) Empty() bool { return len(p.Moves) == 0 }

// Steps groups the moves into sequential steps whose moves may run
// concurrently: a step holds at most one move per partition and at most
// limit moves (no limit when limit ≤ 0), and at most limit partitions are
// between their first and last move at any time, which bounds the extra
// replicas that exist at once. Executing the steps in order has the same
// effect as executing Moves in order, with the same safety.
func (p *Plan) Steps(limit int) [][]Move {
	var chains [][]Move
	for i := 0; i < len(p.Moves); {
		j := i + 1
		for j < len(p.Moves) && p.Moves[j].Table == p.Moves[i].Table && p.Moves[j].Partition == p.Moves[i].Partition {
			j++
		}
		chains = append(chains, p.Moves[i:j])
		i = j
	}
	if limit <= 0 {
		limit = len(chains)
	}
	var steps [][]Move
	active := make([][]Move, 0, limit)
	next := 0
	for next < len(chains) || len(active) > 0 {
		for len(active) < limit && next < len(chains) {
			active = append(active, chains[next])
			next++
		}
		step := make([]Move, 0, len(active))
		kept := active[:0]
		for _, c := range active {
			step = append(step, c[0])
			if len(c) > 1 {
				kept = append(kept, c[1:])
			}
		}
		active = kept
		steps = append(steps, step)
	}
	return steps
}

// diffPartition returns the moves that turn old into a partition whose
// replicas are reps (in that order) and whose master is master, and the
// resulting partition.
func diffPartition(table placement.TableID, old placement.Partition, reps []placement.NodeID, master placement.NodeID) ([]Move, placement.Partition) {
	cur := old.Replicas()
	var moves []Move
	for _, n := range reps {
		if !slices.Contains(cur, n) {
			moves = append(moves, Move{Kind: AddReplica, Table: table, Partition: old.ID, To: n})
		}
	}
	if master != old.Master {
		moves = append(moves, Move{Kind: ChangeMaster, Table: table, Partition: old.ID, From: old.Master, To: master})
	}
	seen := make([]placement.NodeID, 0, len(cur))
	for _, n := range cur {
		if !slices.Contains(reps, n) && !slices.Contains(seen, n) {
			moves = append(moves, Move{Kind: RemoveReplica, Table: table, Partition: old.ID, From: n})
			seen = append(seen, n)
		}
	}
	pt := old.Clone()
	for _, m := range moves {
		applyMove(&pt, m)
	}
	return moves, pt
}

// applyMove applies m to pt (assumed to be valid for it).
func applyMove(pt *placement.Partition, m Move) {
	switch m.Kind {
	case AddReplica:
		pt.Slaves = append(pt.Slaves, m.To)
	case ChangeMaster:
		i := slices.Index(pt.Slaves, m.To)
		if m.From != "" && i >= 0 {
			pt.Slaves[i] = m.From
		} else if i >= 0 {
			pt.Slaves = slices.Delete(pt.Slaves, i, i+1)
		}
		pt.Master = m.To
	case RemoveReplica:
		pt.Slaves = slices.DeleteFunc(pt.Slaves, func(n placement.NodeID) bool { return n == m.From })
		pt.InSync = slices.DeleteFunc(pt.InSync, func(n placement.NodeID) bool { return n == m.From })
	}
}
