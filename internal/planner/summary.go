package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Summary counts what a plan does, for dry runs and progress reports.
type Summary struct {
	Tables     int `json:"tables"`
	Partitions int `json:"partitions"`
	// ReplicaMoves counts AddReplica moves: replicas copied to a new node.
	ReplicaMoves int `json:"replica_moves"`
	// MinReplicaMoves is a lower bound on ReplicaMoves for any assignment
	// that gives every node the floor or the ceiling of its share of every
	// table: the missing replicas plus the replicas over each node's
	// ceiling, or, when larger, the replicas the nodes below their floor
	// must receive.
	MinReplicaMoves int `json:"min_replica_moves"`
	// Removals counts RemoveReplica moves.
	Removals int `json:"removals"`
	// MasterChanges counts ChangeMaster moves.
	MasterChanges int `json:"master_changes"`
	// MinMasterChanges is the same kind of lower bound for master changes:
	// masters that cannot stay where they are, plus masters over each
	// node's ceiling (or the masters nodes below their floor must gain).
	MinMasterChanges int `json:"min_master_changes"`
	// Nodes has one entry per node of the topology, and one per unknown
	// node that holds replicas, sorted by ID.
	Nodes []NodeLoad `json:"nodes"`
}

// NodeLoad is one node's load before and after a plan.
type NodeLoad struct {
	ID placement.NodeID `json:"id"`
	// Known is false for a node that holds replicas but is not in the
	// topology (removed from the cluster).
	Known  bool                `json:"known"`
	State  placement.NodeState `json:"state"`
	Weight int                 `json:"weight"`
	// ReplicaShare and MasterShare are the node's ideal (fractional) counts
	// summed over all tables, which the After counts approach within one
	// per table.
	ReplicaShare   float64 `json:"replica_share"`
	MasterShare    float64 `json:"master_share"`
	ReplicasBefore int     `json:"replicas_before"`
	ReplicasAfter  int     `json:"replicas_after"`
	MastersBefore  int     `json:"masters_before"`
	MastersAfter   int     `json:"masters_after"`
}

// MoveRatio returns ReplicaMoves divided by MinReplicaMoves: 1 when both
// are 0, +Inf when only the bound is 0 (moves that only cluster-wide
// balance asks for, which the per-table bound does not count).
func (s Summary) MoveRatio() float64 {
	if s.MinReplicaMoves == 0 {
		if s.ReplicaMoves == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return float64(s.ReplicaMoves) / float64(s.MinReplicaMoves)
}

// Imbalance returns, for replicas and for masters after the plan, the
// largest count per unit of weight over the eligible nodes divided by the
// cluster-wide count per unit of weight (1 is perfect balance).
func (s Summary) Imbalance() (replicas, masters float64) {
	return s.imbalance(func(n NodeLoad) int { return n.ReplicasAfter }),
		s.imbalance(func(n NodeLoad) int { return n.MastersAfter })
}

func (s Summary) imbalance(count func(NodeLoad) int) float64 {
	total, weight, top := 0.0, 0.0, 0.0
	for _, n := range s.Nodes {
		if !n.Known || n.State != placement.NodeUp {
			continue
		}
		w := float64(max(n.Weight, 1))
		c := float64(count(n))
		total += c
		weight += w
		top = max(top, c/w)
	}
	if total == 0 {
		return 1
	}
	return top / (total / weight)
}

// String returns a printable dry run: the counts, then one line per node.
func (p *Plan) String() string {
	var b strings.Builder
	s := &p.Summary
	fmt.Fprintf(&b, "plan: %d tables, %d partitions, %d moves\n", s.Tables, s.Partitions, len(p.Moves))
	fmt.Fprintf(&b, "replica moves: %d (lower bound %d", s.ReplicaMoves, s.MinReplicaMoves)
	if r := s.MoveRatio(); !math.IsInf(r, 0) {
		fmt.Fprintf(&b, ", ratio %.2f", r)
	}
	fmt.Fprintf(&b, "), removals: %d\n", s.Removals)
	fmt.Fprintf(&b, "master changes: %d (lower bound %d)\n", s.MasterChanges, s.MinMasterChanges)
	ri, mi := s.Imbalance()
	fmt.Fprintf(&b, "imbalance after (max/mean per weight): replicas %.3f, masters %.3f\n", ri, mi)
	if !p.Report.OK() {
		b.WriteString(p.Report.String())
		b.WriteByte('\n')
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tstate\tweight\treplicas\tshare\tmasters\tshare\t")
	for _, n := range s.Nodes {
		state := n.State.String()
		if !n.Known {
			state = "unknown"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f\t%s\t%.1f\t\n", n.ID, state, n.Weight,
			arrow(n.ReplicasBefore, n.ReplicasAfter), n.ReplicaShare,
			arrow(n.MastersBefore, n.MastersAfter), n.MasterShare)
	}
	tw.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

func arrow(before, after int) string {
	if before == after {
		return fmt.Sprint(after)
	}
	return fmt.Sprintf("%d -> %d", before, after)
}

// loads tallies per-node replica and master counts of tables into byID.
func loads(tables []placement.Table, byID map[placement.NodeID]*NodeLoad, after bool) {
	for i := range tables {
		for j := range tables[i].Partitions {
			pt := &tables[i].Partitions[j]
			reps := pt.Replicas()
			for k, n := range reps {
				if slices.Contains(reps[:k], n) {
					continue
				}
				l := byID[n]
				if l == nil {
					l = &NodeLoad{ID: n}
					byID[n] = l
				}
				isMaster := n == pt.Master
				if after {
					l.ReplicasAfter++
					if isMaster {
						l.MastersAfter++
					}
				} else {
					l.ReplicasBefore++
					if isMaster {
						l.MastersBefore++
					}
				}
			}
		}
	}
}
