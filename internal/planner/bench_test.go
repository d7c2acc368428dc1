package planner

import (
	"fmt"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// The benchmarks use 1,000 nodes (10 racks × 10 hosts × 10 nodes) and one
// table of 33,334 partitions × 3 replicas (100,002 replicas), host rule.

const (
	benchParts = 33334
	benchR     = 3
)

func benchCluster(b *testing.B) ([]placement.Node, placement.Table) {
	b.Helper()
	nodes := grid(1, 10, 10, 10)
	tb, rep := placeTable(b, nodes, nil, 1, benchParts, benchR, placement.DomainHost)
	if !rep.OK() {
		b.Fatal(rep)
	}
	return nodes, tb
}

func BenchmarkPlace1000Nodes(b *testing.B) {
	nodes := grid(1, 10, 10, 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Place(nodes, nil, TableSpec{ID: 1, Partitions: benchParts, Replication: benchR}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRebalance1000Nodes plans the addition of a host of 10 nodes.
func BenchmarkRebalance1000Nodes(b *testing.B) {
	nodes, tb := benchCluster(b)
	for i := 0; i < 10; i++ {
		nodes = append(nodes, placement.Node{ID: placement.NodeID(fmt.Sprintf("z0-r00-hXX-n%02d", i)), Labels: placement.Labels{Zone: "z0", Rack: "r0", Host: "new"}, Weight: 1})
	}
	benchRebalance(b, nodes, tb)
}

// BenchmarkRebalance1000NodesDrainRack plans draining a rack (100 nodes,
// about 10,000 replicas to move).
func BenchmarkRebalance1000NodesDrainRack(b *testing.B) {
	nodes, tb := benchCluster(b)
	nodes = slices.Clone(nodes)
	for i := range nodes {
		if nodes[i].Labels.Rack == "r9" {
			nodes[i].State = placement.NodeDraining
		}
	}
	benchRebalance(b, nodes, tb)
}

// BenchmarkRebalance1000NodesWeights plans doubling the weight of one node
// in ten.
func BenchmarkRebalance1000NodesWeights(b *testing.B) {
	nodes, tb := benchCluster(b)
	nodes = slices.Clone(nodes)
	for i := 0; i < len(nodes); i += 10 {
		nodes[i].Weight = 2
	}
	benchRebalance(b, nodes, tb)
}

func benchRebalance(b *testing.B, nodes []placement.Node, tb placement.Table) {
	b.Helper()
	tables := []placement.Table{tb}
	var plan *Plan
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if plan, err = Rebalance(nodes, tables); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(plan.Summary.ReplicaMoves), "moves")
	b.ReportMetric(plan.Summary.MoveRatio(), "moves/min")
}

// BenchmarkRebalanceMasters1000Nodes plans master switchovers after every
// partition of one rack's nodes failed over to a slave.
func BenchmarkRebalanceMasters1000Nodes(b *testing.B) {
	nodes, tb := benchCluster(b)
	tb = tb.Clone()
	for i := range tb.Partitions {
		pt := &tb.Partitions[i]
		if n := string(pt.Master); n[3:6] == "r00" {
			pt.Master, pt.Slaves[0] = pt.Slaves[0], pt.Master
		}
	}
	tables := []placement.Table{tb}
	var plan *Plan
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if plan, err = RebalanceMasters(nodes, tables); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(plan.Summary.MasterChanges), "switchovers")
	b.ReportMetric(float64(plan.Summary.MinMasterChanges), "min")
}
