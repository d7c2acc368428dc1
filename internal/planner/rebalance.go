package planner

import (
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Rebalance computes the plan that turns the current assignment of tables
// into a balanced one on nodes: after an expansion, a shrink or drain (a
// node draining, down or gone from nodes), a weight or label change, or a
// change of a table's rule or replication factor.
//
// The target keeps every replica it can: a replica moves only when it is
// on an ineligible node, shares a failure domain with another replica of
// its partition, is beyond the replication factor, or is over its node's
// quota. Quotas are the floor or the ceiling of each node's share (as in
// Place), and a node that already holds the ceiling keeps it, so the number
// of replica moves stays at or near Summary.MinReplicaMoves: adding a node
// moves about its share of the replicas, and removing one moves only the
// replicas it held, unless the failure-domain rule leaves some of them no
// place where a node has room, in which case the fewest other replicas
// needed are moved too. Masters stay where they are unless they must move
// or are needed to balance master counts by weight.
//
// Tables are processed in ID order and the rounding of each one favours
// the nodes below their share of the tables before it, so the cluster-wide
// load is balanced too. The plan depends only on the arguments, not on the
// order of nodes or tables. Rebalance fails with ErrNotEnoughNodes when a
// table has more replicas than there are eligible nodes.
func Rebalance(nodes []placement.Node, tables []placement.Table) (*Plan, error) {
	b, err := newPlanBuilder(nodes, tables)
	if err != nil {
		return nil, err
	}
	rep, mas := newLedger(b.t, rebalanceTolerance), newLedger(b.t, rebalanceTolerance)
	for _, i := range b.order {
		if err := b.rebalanceTable(&tables[i], rep, mas); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

// RebalanceMasters computes a plan of ChangeMaster moves only (planned
// switchovers, no data copied) that balances the number of partitions each
// eligible node masters by weight, with as few switchovers as it can: a
// master moves only when its node is not up, or when that node masters more
// than its share. Each partition keeps its replicas; its new master is one
// of them, and for a sync-mode table one of its in-sync replicas.
//
// Every node ends with the floor or the ceiling of its share of each
// table's masters (a share capped by the replicas it holds) unless the
// replica layout makes that impossible, which the Report then says. The
// Report also lists the tables whose current layout cannot follow their
// failure-domain rule, as Rebalance would.
func RebalanceMasters(nodes []placement.Node, tables []placement.Table) (*Plan, error) {
	b, err := newPlanBuilder(nodes, tables)
	if err != nil {
		return nil, err
	}
	mas := newLedger(b.t, rebalanceTolerance)
	for _, i := range b.order {
		b.mastersTable(&tables[i], mas)
	}
	return b.finish(), nil
}

// planBuilder accumulates a plan table by table.
type planBuilder struct {
	t        *topology
	tables   []placement.Table
	order    []int // indices of tables in ID order
	plan     *Plan
	repShare []float64 // per node, summed over tables
	masShare []float64
}

func newPlanBuilder(nodes []placement.Node, tables []placement.Table) (*planBuilder, error) {
	t, err := newTopology(nodes)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(tables[a].ID) - int(tables[b].ID) })
	for i := 1; i < len(order); i++ {
		if tables[order[i]].ID == tables[order[i-1]].ID {
			return nil, fmt.Errorf("planner: duplicate table ID %d", tables[order[i]].ID)
		}
	}
	return &planBuilder{
		t: t, tables: tables, order: order,
		plan:     &Plan{Summary: Summary{Tables: len(tables)}},
		repShare: make([]float64, len(t.nodes)),
		masShare: make([]float64, len(t.nodes)),
	}, nil
}

func tableLabel(id placement.TableID, name string) string {
	if name == "" {
		return fmt.Sprintf("table %d", id)
	}
	return fmt.Sprintf("table %d (%q)", id, name)
}

// rebalanceTable plans the replica and master moves of one table.
func (b *planBuilder) rebalanceTable(tb *placement.Table, rep, mas *ledger) error {
	t := b.t
	r, p := tb.Replication, len(tb.Partitions)
	label := tableLabel(tb.ID, tb.Name)
	if r < 1 {
		return fmt.Errorf("planner: %s: replication %d, want at least 1", label, r)
	}
	b.plan.Summary.Partitions += p
	if p == 0 {
		b.plan.Target = append(b.plan.Target, tb.Clone())
		return nil
	}
	level, err := t.effective(tb.Domain, r, label)
	if err != nil {
		return err
	}
	seed := tableSeed(tb.ID)

	// Keep the replicas on eligible nodes, one per domain of the rule
	// level (the master's first), then fill and balance.
	a := newAssigner(t, level, r, p, seed)
	initial := make([]int32, p)
	for i := range tb.Partitions {
		pt := &tb.Partitions[i]
		for _, n := range t.eligibleReplicas(pt, depthOf(level)) {
			a.add(int32(i), n)
		}
		initial[i] = -1
		if m, ok := t.nodeOf(pt.Master); ok {
			initial[i] = m
			if t.up[m] {
				a.pin[i] = m
			}
		}
	}
	share := t.replicaShares(level, r, p)
	a.setQuota(t.round(share, r*p, depthOf(level), p, t.treeCounts(a.load), rep, seed), share, rep)
	a.dropExtras()
	b.plan.Summary.MinReplicaMoves += a.lowerBound(share)
	a.run()
	if a.failed > 0 {
		return fmt.Errorf("planner: %s: internal error: %d replicas could not be placed", label, a.failed)
	}
	rep.add(share, t.treeCounts(a.load))

	// Masters: keep each current master that still holds a replica.
	start := make([]int32, p)
	for i := range start {
		start[i] = -1
		if m := initial[i]; m >= 0 && contains(a.reps[i], m) {
			start[i] = m
		}
	}
	ms := newMasterSet(t, a.reps, start, seed)
	mshare, _ := ms.targets(mas, true)
	b.plan.Summary.MinMasterChanges += ms.lowerBound(initial)
	ms.assignMissing()
	ms.balance()
	mas.add(mshare, t.treeCounts(ms.count))
	b.addShares(share, mshare)

	target := tb.Clone()
	ids := make([]placement.NodeID, 0, r)
	for i := range tb.Partitions {
		ids = ids[:0]
		for _, n := range a.reps[i] {
			ids = append(ids, t.nodes[n].ID)
		}
		moves, pt := diffPartition(tb.ID, tb.Partitions[i], ids, t.nodes[ms.master[i]].ID)
		b.plan.Moves = append(b.plan.Moves, moves...)
		target.Partitions[i] = pt
	}
	b.plan.Target = append(b.plan.Target, target)
	if v := t.violation(tb.ID, tb.Name, tb.Domain, level, r, a.reps); v != nil {
		b.plan.Report.Violations = append(b.plan.Report.Violations, *v)
	}
	b.plan.Report.Warnings = append(b.plan.Report.Warnings, ms.warnings(tb.ID, tb.Name)...)
	return nil
}

// mastersTable plans the master changes of one table.
func (b *planBuilder) mastersTable(tb *placement.Table, mas *ledger) {
	t := b.t
	p := len(tb.Partitions)
	b.plan.Summary.Partitions += p
	seed := tableSeed(tb.ID)
	all := make([][]int32, p)
	reps := make([][]int32, p)
	start := make([]int32, p)
	for i := range tb.Partitions {
		pt := &tb.Partitions[i]
		all[i] = t.eligibleReplicas(pt, -1)
		reps[i] = all[i]
		if tb.Mode == placement.ModeSync && len(pt.InSync) > 0 {
			reps[i] = slices.DeleteFunc(slices.Clone(all[i]), func(n int32) bool {
				id := t.nodes[n].ID
				return id != pt.Master && !slices.Contains(pt.InSync, id)
			})
		}
		start[i] = -1
		if m, ok := t.nodeOf(pt.Master); ok {
			start[i] = m
		}
	}
	ms := newMasterSet(t, reps, start, seed)
	mshare, _ := ms.targets(mas, true)
	b.plan.Summary.MinMasterChanges += ms.lowerBound(start)
	ms.assignMissing()
	ms.balance()
	mas.add(mshare, t.treeCounts(ms.count))
	share := make([]float64, len(t.tn))
	if level, err := t.effective(tb.Domain, tb.Replication, ""); err == nil && tb.Replication > 0 && p > 0 {
		share = t.replicaShares(level, tb.Replication, p)
		if v := t.violation(tb.ID, tb.Name, tb.Domain, level, tb.Replication, all); v != nil {
			b.plan.Report.Violations = append(b.plan.Report.Violations, *v)
		}
	}
	b.addShares(share, mshare)

	target := tb.Clone()
	for i := range tb.Partitions {
		m := ms.master[i]
		if m < 0 || t.nodes[m].ID == tb.Partitions[i].Master {
			continue
		}
		mv := Move{Kind: ChangeMaster, Table: tb.ID, Partition: tb.Partitions[i].ID, From: tb.Partitions[i].Master, To: t.nodes[m].ID}
		b.plan.Moves = append(b.plan.Moves, mv)
		applyMove(&target.Partitions[i], mv)
	}
	b.plan.Target = append(b.plan.Target, target)
	b.plan.Report.Warnings = append(b.plan.Report.Warnings, ms.warnings(tb.ID, tb.Name)...)
}

// addShares adds one table's per-node shares to the summary totals.
func (b *planBuilder) addShares(replica, master []float64) {
	for _, n := range b.t.eligible {
		l := b.t.leafOf(n)
		b.repShare[n] += replica[l]
		b.masShare[n] += master[l]
	}
}

// finish fills in the summary.
func (b *planBuilder) finish() *Plan {
	pl := b.plan
	s := &pl.Summary
	for _, m := range pl.Moves {
		switch m.Kind {
		case AddReplica:
			s.ReplicaMoves++
		case RemoveReplica:
			s.Removals++
		case ChangeMaster:
			s.MasterChanges++
		}
	}
	byID := make(map[placement.NodeID]*NodeLoad, len(b.t.nodes))
	for i, n := range b.t.nodes {
		byID[n.ID] = &NodeLoad{ID: n.ID, Known: true, State: n.State, Weight: n.Weight,
			ReplicaShare: b.repShare[i], MasterShare: b.masShare[i]}
	}
	loads(b.tables, byID, false)
	loads(pl.Target, byID, true)
	s.Nodes = make([]NodeLoad, 0, len(byID))
	for _, l := range byID {
		s.Nodes = append(s.Nodes, *l)
	}
	slices.SortFunc(s.Nodes, func(x, y NodeLoad) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return pl
}
