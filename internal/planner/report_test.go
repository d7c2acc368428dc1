package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestReport measures placement on the topology of the original DPRD
// experiment (reference notes §5.2): 4 racks × 10 hosts × 10 nodes, one
// table of 1024 partitions × 3 replicas. Run it with
//
//	go test ./internal/planner/ -run TestReport -v
//
// to print the figures quoted in docs/placement.md. It also checks them.
func TestReport(t *testing.T) {
	var b strings.Builder
	fmt.Fprintln(&b, "topology: 4 racks × 10 hosts × 10 nodes (400 nodes, weight 1); table: 1024 partitions × 3 replicas")
	for _, d := range []placement.Domain{placement.DomainRack, placement.DomainHost} {
		nodes := grid(1, 4, 10, 10)
		tb, rep := placeTable(t, nodes, nil, 1, 1024, 3, d)
		checkTable(t, nodes, tb, rep)
		fmt.Fprintf(&b, "\nrule: distinct %ss\n", d)
		rmin, rmax, rmean := spreadOf(tb, nodes, false)
		mmin, mmax, mmean := spreadOf(tb, nodes, true)
		fmt.Fprintf(&b, "  place: replicas per node %d..%d (mean %.2f, max/mean %.3f, best possible %.3f)\n",
			rmin, rmax, rmean, float64(rmax)/rmean, math.Ceil(rmean)/rmean)
		fmt.Fprintf(&b, "         masters per node %d..%d (mean %.2f, max/mean %.3f, best possible %.3f)\n",
			mmin, mmax, mmean, float64(mmax)/mmean, math.Ceil(mmean)/mmean)

		// Add a host of 10 nodes to rack r0.
		grown := slices.Clone(nodes)
		for i := 0; i < 10; i++ {
			grown = append(grown, placement.Node{ID: placement.NodeID(fmt.Sprintf("z0-r00-h10-n%02d", i)), Labels: placement.Labels{Zone: "z0", Rack: "r0", Host: "h10"}, Weight: 1})
		}
		reportPlan(t, &b, "add a host (10 nodes)", grown, tb)

		// Remove rack r3 (100 nodes).
		var shrunk []placement.Node
		for _, n := range nodes {
			if n.Labels.Rack != "r3" {
				shrunk = append(shrunk, n)
			}
		}
		reportPlan(t, &b, "remove a rack (100 nodes)", shrunk, tb)

		// Drain one host.
		drained := slices.Clone(nodes)
		for i := 0; i < 10; i++ {
			drained[i].State = placement.NodeDraining
		}
		reportPlan(t, &b, "drain a host (10 nodes)", drained, tb)

		// Double the weight of one host.
		heavier := slices.Clone(nodes)
		for i := 10; i < 20; i++ {
			heavier[i].Weight = 2
		}
		reportPlan(t, &b, "double a host's weight", heavier, tb)

		// A host fails over: its masters move to slaves; then master
		// rebalancing after it comes back.
		var host []placement.NodeID
		for _, n := range nodes[:10] {
			host = append(host, n.ID)
		}
		failed := failover(tb, host...)
		plan, err := RebalanceMasters(nodes, []placement.Table{failed})
		if err != nil {
			t.Fatal(err)
		}
		checkMastersOnly(t, []placement.Table{failed}, plan)
		lost := 0
		for _, pt := range tb.Partitions {
			if slices.Contains(host, pt.Master) {
				lost++
			}
		}
		fmt.Fprintf(&b, "  master rebalance after a host's %d masters failed over: %d switchovers (lower bound %d)\n",
			lost, plan.Summary.MasterChanges, plan.Summary.MinMasterChanges)
	}
	t.Log("\n" + b.String())
}

// reportPlan rebalances tb onto nodes, checks the plan, and prints its
// moves against the theoretical minimum.
func reportPlan(t *testing.T, b *strings.Builder, name string, nodes []placement.Node, tb placement.Table) {
	t.Helper()
	plan, err := Rebalance(nodes, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	target := simulate(t, []placement.Table{tb}, plan, 32)
	checkTable(t, nodes, target[0], plan.Report)
	minimum := nodeLowerBound(nodes, tb)
	ratio := float64(plan.Summary.ReplicaMoves) / float64(max(minimum, 1))
	ri, mi := plan.Summary.Imbalance()
	fmt.Fprintf(b, "  %s: %d replica moves, theoretical minimum %d (ratio %.3f); %d master changes (lower bound %d); after: replicas max/mean %.3f, masters max/mean %.3f\n",
		name, plan.Summary.ReplicaMoves, minimum, ratio, plan.Summary.MasterChanges, plan.Summary.MinMasterChanges, ri, mi)
	if ratio > 1.2 {
		t.Errorf("%s: %d replica moves for a minimum of %d", name, plan.Summary.ReplicaMoves, minimum)
	}
}

// spreadOf returns the smallest, largest and mean count of replicas (or
// masters) per node.
func spreadOf(tb placement.Table, nodes []placement.Node, masters bool) (lo, hi int, mean float64) {
	c := map[placement.NodeID]int{}
	total := 0
	for _, pt := range tb.Partitions {
		if masters {
			c[pt.Master]++
			total++
			continue
		}
		for _, n := range pt.Replicas() {
			c[n]++
			total++
		}
	}
	lo = math.MaxInt
	for _, n := range nodes {
		lo = min(lo, c[n.ID])
		hi = max(hi, c[n.ID])
	}
	return lo, hi, float64(total) / float64(len(nodes))
}
