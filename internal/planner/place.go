package planner

import (
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// TableSpec describes a table to place.
type TableSpec struct {
	// ID is the table's ID. It only seeds the tie-breaks, so that tables of
	// the same shape do not all get the same layout.
	ID placement.TableID
	// Name is used in reports only.
	Name        string
	Partitions  int
	Replication int
	// Domain is the failure-domain rule (DomainDefault means DomainHost).
	Domain placement.Domain
}

// Place computes the complete assignment of a new table: for every
// partition a master and Replication-1 slaves on distinct eligible (up)
// nodes, Gen 0, state active. InSync is left empty: the meta group fills it
// according to the table's mode.
//
// Replicas of a partition are kept in distinct domains at spec.Domain, or at
// the highest level below it that has enough eligible domains, in which
// case the returned Report says so; they are spread across the levels
// above as well as possible. Every node gets the floor or the ceiling of
// its share of the table's replicas (its weighted share, capped where the
// rule leaves a domain no choice) and of its share of the masters (by
// weight, capped by the replicas it holds). Among the nodes that may get
// one more, Place favours those that hold less than their share of the
// existing tables, so that many small tables still spread evenly over the
// cluster.
//
// The result depends only on the arguments, not on the order of nodes or
// existing. It fails with ErrNotEnoughNodes when there are fewer eligible
// nodes than replicas.
func Place(nodes []placement.Node, existing []placement.Table, spec TableSpec) ([]placement.Partition, Report, error) {
	var rep Report
	if spec.Partitions < 1 {
		return nil, rep, fmt.Errorf("planner: %s: %d partitions, want at least 1", tableLabel(spec.ID, spec.Name), spec.Partitions)
	}
	if spec.Replication < 1 {
		return nil, rep, fmt.Errorf("planner: %s: replication %d, want at least 1", tableLabel(spec.ID, spec.Name), spec.Replication)
	}
	t, err := newTopology(nodes)
	if err != nil {
		return nil, rep, err
	}
	level, err := t.effective(spec.Domain, spec.Replication, tableLabel(spec.ID, spec.Name))
	if err != nil {
		return nil, rep, err
	}
	repLed, masLed := t.ledgers(existing)
	seed := tableSeed(spec.ID)
	p, r := spec.Partitions, spec.Replication

	share := t.replicaShares(level, r, p)
	quota := t.round(share, r*p, depthOf(level), p, nil, repLed, seed)
	counts := make([]int32, len(t.nodes))
	for _, n := range t.eligible {
		counts[n] = quota[t.leafOf(n)]
	}
	mquota := t.round(t.masterShares(counts, p), p, depthLeaf, 0, nil, masLed, seed^0x6d6173746572)
	reps := t.fill(level, quota, mquota, p, r, seed)

	parts := make([]placement.Partition, p)
	for i, rs := range reps {
		pt := placement.Partition{ID: placement.PartitionID(i), State: placement.PartitionActive, Master: t.nodes[rs[0]].ID}
		pt.Slaves = make([]placement.NodeID, len(rs)-1)
		for j, x := range rs[1:] {
			pt.Slaves[j] = t.nodes[x].ID
		}
		parts[i] = pt
	}
	if v := t.violation(spec.ID, spec.Name, spec.Domain, level, r, reps); v != nil {
		rep.Violations = append(rep.Violations, *v)
	}
	return parts, rep, nil
}

// ledgers records the shares and the counts of existing tables, replicas
// and masters, as the starting load for Place. Tables that cannot be placed
// on this topology (too few nodes) count for nothing.
func (t *topology) ledgers(tables []placement.Table) (replicas, masters *ledger) {
	replicas, masters = newLedger(t, placeTolerance), newLedger(t, placeTolerance)
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(tables[a].ID) - int(tables[b].ID) })
	rc := make([]int32, len(t.nodes))
	mc := make([]int32, len(t.nodes))
	for _, i := range order {
		tb := &tables[i]
		r, p := tb.Replication, len(tb.Partitions)
		if r < 1 || p == 0 {
			continue
		}
		level, err := t.effective(tb.Domain, r, "")
		if err != nil {
			continue
		}
		clear(rc)
		clear(mc)
		mastered := 0
		for j := range tb.Partitions {
			pt := &tb.Partitions[j]
			has := false
			for _, n := range t.eligibleReplicas(pt, -1) {
				rc[n]++
				has = true
			}
			if has {
				mastered++
			}
			if n, ok := t.nodeOf(pt.Master); ok && t.up[n] {
				mc[n]++
			}
		}
		replicas.add(t.replicaShares(level, r, p), t.treeCounts(rc))
		masters.add(t.masterShares(rc, mastered), t.treeCounts(mc))
	}
	return replicas, masters
}

// eligibleReplicas returns the indices of the distinct eligible nodes
// holding a replica of pt, master first. When dep ≥ 0, a replica in the
// same domain at that depth as an earlier one is left out too.
func (t *topology) eligibleReplicas(pt *placement.Partition, dep int) []int32 {
	var out []int32
	add := func(id placement.NodeID) {
		n, ok := t.nodeOf(id)
		if !ok || !t.up[n] {
			return
		}
		for _, x := range out {
			if x == n || (dep >= 0 && t.anc[x][dep] == t.anc[n][dep]) {
				return
			}
		}
		out = append(out, n)
	}
	if pt.Master != "" {
		add(pt.Master)
	}
	for _, s := range pt.Slaves {
		add(s)
	}
	return out
}
