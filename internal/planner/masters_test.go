package planner

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// failover makes every partition mastered by one of victims mastered by
// its first slave instead, as automatic failover would.
func failover(tb placement.Table, victims ...placement.NodeID) placement.Table {
	tb = tb.Clone()
	for i := range tb.Partitions {
		pt := &tb.Partitions[i]
		if slices.Contains(victims, pt.Master) && len(pt.Slaves) > 0 {
			pt.Master, pt.Slaves[0] = pt.Slaves[0], pt.Master
		}
	}
	return tb
}

// checkMastersOnly checks that plan only switches masters among existing
// replicas and that executing it gives its target.
func checkMastersOnly(t *testing.T, tables []placement.Table, plan *Plan) []placement.Table {
	t.Helper()
	for _, m := range plan.Moves {
		if m.Kind != ChangeMaster {
			t.Fatalf("move %v is not a master change", m)
		}
	}
	target := simulate(t, tables, plan, 0)
	for i := range tables {
		for j, pt := range tables[i].Partitions {
			a, b := pt.Replicas(), target[i].Partitions[j].Replicas()
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Fatalf("table %d partition %d: replicas changed from %v to %v", tables[i].ID, pt.ID, a, b)
			}
		}
	}
	return target
}

// TestRebalanceMastersAfterFailover fails over random nodes of random
// clusters, then checks that RebalanceMasters restores the balance (every
// node within one of its share of masters) with a number of switchovers
// close to the lower bound.
func TestRebalanceMastersAfterFailover(t *testing.T) {
	n := iterations(150)
	sumMoves, sumMin := 0, 0
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		nodes := randomNodes(rng, fullSpec, rng.IntN(4) == 0)
		if len(nodes) < 2 {
			continue
		}
		var tables []placement.Table
		for k := 0; k < 1+rng.IntN(3); k++ {
			r := 2 + rng.IntN(min(3, len(nodes)-1))
			tb, _ := placeTable(t, nodes, tables, placement.TableID(k+1), 1+rng.IntN(2000), r, domains[rng.IntN(len(domains))])
			tables = append(tables, tb)
		}
		var victims []placement.NodeID
		for k := 0; k < 1+rng.IntN(3); k++ {
			victims = append(victims, nodes[rng.IntN(len(nodes))].ID)
		}
		for k := range tables {
			tables[k] = failover(tables[k], victims...)
		}
		plan, err := RebalanceMasters(nodes, tables)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if len(plan.Report.Warnings) > 0 {
			t.Fatalf("seed %d: %v", i, plan.Report.Warnings)
		}
		target := checkMastersOnly(t, tables, plan)
		for _, tb := range target {
			checkTable(t, nodes, tb, plan.Report)
		}
		if plan.Summary.MasterChanges < plan.Summary.MinMasterChanges {
			t.Fatalf("seed %d: %d changes below the bound %d", i, plan.Summary.MasterChanges, plan.Summary.MinMasterChanges)
		}
		sumMoves += plan.Summary.MasterChanges
		sumMin += plan.Summary.MinMasterChanges
		again, err := RebalanceMasters(nodes, target)
		if err != nil || !again.Empty() {
			t.Fatalf("seed %d: second run: %v, %d moves", i, err, len(again.Moves))
		}
	}
	t.Logf("%d switchovers for a lower bound of %d (ratio %.3f)", sumMoves, sumMin, float64(sumMoves)/float64(sumMin))
	if float64(sumMoves) > 1.1*float64(sumMin) {
		t.Fatalf("switchovers %.3f times the lower bound", float64(sumMoves)/float64(sumMin))
	}
}

// TestRebalanceMastersBalanced checks that a balanced table needs nothing
// and that the 4×10×10 test cluster after one host's failover needs about
// as many switchovers as that host had masters.
func TestRebalanceMastersBalanced(t *testing.T) {
	nodes := grid(1, 4, 10, 10)
	tb, _ := placeTable(t, nodes, nil, 1, 1024, 3, placement.DomainRack)
	plan, err := RebalanceMasters(nodes, []placement.Table{tb})
	if err != nil || !plan.Empty() {
		t.Fatalf("balanced table: %v, moves %v", err, plan.Moves)
	}
	var host []placement.NodeID
	for _, n := range nodes[:10] {
		host = append(host, n.ID)
	}
	moved := 0
	for _, pt := range tb.Partitions {
		if slices.Contains(host, pt.Master) {
			moved++
		}
	}
	failed := failover(tb, host...)
	plan, err = RebalanceMasters(nodes, []placement.Table{failed})
	if err != nil {
		t.Fatal(err)
	}
	checkMastersOnly(t, []placement.Table{failed}, plan)
	if plan.Summary.MasterChanges > moved+moved/10 {
		t.Fatalf("%d switchovers to undo the failover of %d masters (bound %d)", plan.Summary.MasterChanges, moved, plan.Summary.MinMasterChanges)
	}
	t.Logf("failover of a host with %d masters: %d switchovers back (lower bound %d)", moved, plan.Summary.MasterChanges, plan.Summary.MinMasterChanges)
}

// TestRebalanceMastersIneligible checks that masters leave draining, down
// and unknown nodes, that a partition without any up replica keeps its
// master and is reported, and that sync-mode tables only promote in-sync
// replicas.
func TestRebalanceMastersIneligible(t *testing.T) {
	nodes := grid(1, 1, 4, 1)
	tb, _ := placeTable(t, nodes, nil, 1, 40, 2, placement.DomainHost)
	nodes[0].State = placement.NodeDraining
	nodes[1].State = placement.NodeDown
	plan, err := RebalanceMasters(nodes, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	target := checkMastersOnly(t, []placement.Table{tb}, plan)
	orphans := 0
	for _, pt := range target[0].Partitions {
		if pt.Master == nodes[0].ID || pt.Master == nodes[1].ID {
			up := false
			for _, s := range pt.Slaves {
				up = up || s == nodes[2].ID || s == nodes[3].ID
			}
			if up {
				t.Fatalf("partition %d still mastered by %s though a slave is up", pt.ID, pt.Master)
			}
			orphans++
		}
	}
	if orphans == 0 || len(plan.Report.Warnings) != 1 {
		t.Fatalf("%d partitions without an up replica, warnings %v", orphans, plan.Report.Warnings)
	}

	// Sync mode: only in-sync slaves may take over.
	nodes = grid(1, 1, 3, 1)
	tb, _ = placeTable(t, nodes, nil, 2, 30, 3, placement.DomainHost)
	tb.Mode = placement.ModeSync
	for i := range tb.Partitions {
		pt := &tb.Partitions[i]
		pt.InSync = []placement.NodeID{pt.Master, pt.Slaves[1]}
	}
	nodes[0].State = placement.NodeDraining
	plan, err = RebalanceMasters(nodes, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range plan.Moves {
		pt := tb.Partitions[m.Partition]
		if !slices.Contains(pt.InSync, m.To) {
			t.Fatalf("%v promotes a replica outside the in-sync set %v", m, pt.InSync)
		}
	}
}

func TestRebalanceMastersDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	nodes := randomNodes(rng, fullSpec, true)
	var tables []placement.Table
	for k := 0; k < 4; k++ {
		tb, _ := placeTable(t, nodes, tables, placement.TableID(k+1), 500, 3, placement.DomainDefault)
		tables = append(tables, failover(tb, nodes[k].ID, nodes[k+4].ID))
	}
	a, _ := RebalanceMasters(nodes, tables)
	sn := slices.Clone(nodes)
	rng.Shuffle(len(sn), func(i, j int) { sn[i], sn[j] = sn[j], sn[i] })
	st := slices.Clone(tables)
	slices.Reverse(st)
	b, _ := RebalanceMasters(sn, st)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("shuffled input gives a different plan")
	}
}

// TestRebalanceMastersManyTables checks the cluster-wide master balance
// after failovers spread over many small tables.
func TestRebalanceMastersManyTables(t *testing.T) {
	nodes := grid(1, 2, 5, 2)
	var tables []placement.Table
	for k := 1; k <= 40; k++ {
		tb, _ := placeTable(t, nodes, tables, placement.TableID(k), 5, 3, placement.DomainHost)
		tables = append(tables, failover(tb, nodes[0].ID, nodes[1].ID))
	}
	plan, err := RebalanceMasters(nodes, tables)
	if err != nil {
		t.Fatal(err)
	}
	checkMastersOnly(t, tables, plan)
	for _, l := range plan.Summary.Nodes {
		if d := math.Abs(float64(l.MastersAfter) - l.MasterShare); d > rebalanceTolerance {
			t.Fatalf("node %s masters %d partitions, share %.2f:\n%s", l.ID, l.MastersAfter, l.MasterShare, plan)
		}
	}
	if s := plan.String(); !strings.Contains(s, "master changes:") {
		t.Fatalf("summary lacks the master changes:\n%s", s)
	}
}
