package planner

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// expansionMargin is the slack, beyond 1.2 × the node-level minimum, that
// TestRebalanceExpansion allows. The node-level minimum only counts what
// the new node must receive to reach the floor of its share; Rebalance also
// keeps every host, rack and zone within one of its share, and each of
// those three roundings can cost at most one more copy into the new node's
// domains (a domain's share grows by at most the new node's share, so its
// floor by at most one more than the new node's floor).
const expansionMargin = 3

// TestRebalanceExpansion adds one node to random balanced clusters and
// checks the number of replicas copied against the theoretical minimum.
func TestRebalanceExpansion(t *testing.T) {
	n := iterations(200)
	var sumMoves, sumMin, big, inside int
	worst := 0.0
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 4))
		nodes := randomNodes(rng, fullSpec, false)
		p := 64 + rng.IntN(4096-64)
		r := 1 + rng.IntN(min(4, len(nodes)))
		d := domains[rng.IntN(len(domains))]
		tb, _ := placeTable(t, nodes, nil, 1, p, r, d)

		like := nodes[rng.IntN(len(nodes))]
		nn := placement.Node{ID: "added", Labels: like.Labels, Weight: 1 + rng.IntN(4)}
		if rng.IntN(2) == 0 {
			nn.Labels.Host = "added-host"
		}
		grown := append(slices.Clone(nodes), nn)
		plan, err := Rebalance(grown, []placement.Table{tb})
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		simulate(t, []placement.Table{tb}, plan, 16)
		minimum := nodeLowerBound(grown, tb)
		moves := plan.Summary.ReplicaMoves
		if float64(moves) > 1.2*float64(minimum)+expansionMargin {
			t.Fatalf("seed %d (P=%d R=%d %v, %d nodes): %d replica moves, theoretical minimum %d",
				i, p, r, d, len(grown), moves, minimum)
		}
		for _, m := range plan.Moves {
			if m.Kind == AddReplica && m.To != "added" {
				inside++ // to rebalance domains; counted in moves too
			}
		}
		sumMoves += moves
		sumMin += minimum
		if minimum >= 50 {
			big++
			worst = max(worst, float64(moves)/float64(minimum))
		}
	}
	t.Logf("%d expansions: %d replica moves (%d not to the new node) for a theoretical minimum of %d (ratio %.3f); worst ratio with minimum ≥ 50: %.3f over %d cases",
		n, sumMoves, inside, sumMin, float64(sumMoves)/float64(sumMin), worst, big)
	if float64(sumMoves) > 1.05*float64(sumMin) {
		t.Fatalf("overall ratio %.3f above 1.05", float64(sumMoves)/float64(sumMin))
	}
}

// shrinkCase removes, drains or downs node victim and returns the plan,
// the number of replicas the node held, how many replicas were moved off
// nodes that stay, and the model's lower bound on that number.
func shrinkCase(t *testing.T, nodes []placement.Node, tb placement.Table, victim int, how string) (plan *Plan, held, extra, forced int) {
	t.Helper()
	gone := nodes[victim].ID
	shrunk := slices.Clone(nodes)
	switch how {
	case "remove":
		shrunk = slices.Delete(shrunk, victim, victim+1)
	case "drain":
		shrunk[victim].State = placement.NodeDraining
	case "down":
		shrunk[victim].State = placement.NodeDown
	}
	plan, err := Rebalance(shrunk, []placement.Table{tb})
	if err != nil {
		t.Fatalf("%s %s: %v", how, gone, err)
	}
	target := simulate(t, []placement.Table{tb}, plan, 0)
	checkTable(t, shrunk, target[0], plan.Report)
	for _, pt := range tb.Partitions {
		if slices.Contains(pt.Replicas(), gone) {
			held++
		}
	}
	for _, m := range plan.Moves {
		if m.Kind == RemoveReplica && m.From != gone {
			extra++
		}
	}
	if plan.Summary.Removals != held+extra || plan.Summary.ReplicaMoves != held+extra {
		t.Fatalf("%s %s: %d copies and %d removals for %d replicas on the node and %d others", how, gone,
			plan.Summary.ReplicaMoves, plan.Summary.Removals, held, extra)
	}
	if extra == 0 {
		return plan, held, 0, 0 // the bound is 0 too (it never exceeds a feasible plan)
	}
	forced = forcedExtra(shrunk, tb)
	if extra < forced {
		t.Fatalf("%s %s: %d other replicas moved, below the model's lower bound %d", how, gone, extra, forced)
	}
	return plan, held, extra, forced
}

// TestRebalanceShrink removes, drains or downs one node of regular
// clusters (equal weights, and more failure domains than replicas) and
// checks that only that node's replicas move, each copied once — unless
// keeping every node within one of its share forces more: a node below the
// floor of its new share must receive replicas, and when every replica of
// the removed node belongs to a partition already present in that node's
// domain, another replica has to move there. forcedExtra computes that
// lower bound independently; the plan must meet it exactly.
func TestRebalanceShrink(t *testing.T) {
	n := iterations(150)
	forcedCases := 0
	defer func() { t.Logf("%d shrinks, %d where balance forced other moves", n, forcedCases) }()
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 5))
		nodes := grid(1+rng.IntN(3), 1+rng.IntN(4), 2+rng.IntN(5), 1+rng.IntN(4))
		r := 1 + rng.IntN(3)
		d := domains[rng.IntN(len(domains))]
		level, ok := wantLevel(nodes, d, r+1)
		if !ok || level != d.Effective() {
			continue // keep a spare domain: the rule must not bind
		}
		p := 1 + rng.IntN(4096)
		tb, _ := placeTable(t, nodes, nil, 1, p, r, d)
		how := []string{"remove", "drain", "down"}[rng.IntN(3)]
		victim := rng.IntN(len(nodes))
		plan, held, extra, forced := shrinkCase(t, nodes, tb, victim, how)
		if extra != forced {
			t.Fatalf("seed %d (%s %s, %d nodes, P=%d R=%d %v): %d replicas moved off nodes that stay, %d forced",
				i, how, nodes[victim].ID, len(nodes), p, r, d, extra, forced)
		}
		if forced > 0 {
			forcedCases++
		}
		if plan.Summary.MinReplicaMoves != held {
			t.Fatalf("seed %d: lower bound %d, want %d", i, plan.Summary.MinReplicaMoves, held)
		}
	}
}

// TestRebalanceShrinkIrregular does the same on the random topologies of
// the property tests (weights 1–4, domains of very different sizes). There
// a few more replicas may have to move: when a handful of heavy domains
// hold most partitions, the replicas of the removed node cannot all go
// where the others have room without two replicas of a partition sharing a
// domain, and keeping every node within one of its share then requires
// moving other replicas too. The test checks that every replica of the
// node moves exactly once and logs how often others move.
func TestRebalanceShrinkIrregular(t *testing.T) {
	n := iterations(200)
	cases, withExtra, sumHeld, sumExtra, sumForced, above := 0, 0, 0, 0, 0, 0
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 5))
		nodes := randomNodes(rng, fullSpec, rng.IntN(4) == 0)
		p := 1 + rng.IntN(4096)
		r := 1 + rng.IntN(min(4, len(nodes)))
		d := domains[rng.IntN(len(domains))]
		tb, _ := placeTable(t, nodes, nil, 1, p, r, d)
		level, _ := wantLevel(nodes, d, r)
		victim := rng.IntN(len(nodes))
		how := []string{"remove", "drain", "down"}[rng.IntN(3)]
		rest := slices.Delete(slices.Clone(nodes), victim, victim+1)
		if l, ok := wantLevel(rest, d, r); !ok || l != level {
			continue // the rule itself degrades: other replicas must move
		}
		_, held, extra, forced := shrinkCase(t, nodes, tb, victim, how)
		cases++
		sumHeld += held
		sumExtra += extra
		sumForced += forced
		if extra > 0 {
			withExtra++
		}
		if extra > forced {
			above++
		}
	}
	t.Logf("%d shrinks: %d moved only the node's replicas; %d moved %d others (%.1f%% of the %d replicas moved), lower bound %d; %d above the bound",
		cases, cases-withExtra, withExtra, sumExtra, 100*float64(sumExtra)/float64(sumHeld+sumExtra), sumHeld+sumExtra, sumForced, above)
}

// TestRebalanceRack removes a whole rack of the DPRD test topology.
func TestRebalanceRack(t *testing.T) {
	nodes := grid(1, 4, 10, 10)
	for _, d := range []placement.Domain{placement.DomainHost, placement.DomainRack} {
		tb, _ := placeTable(t, nodes, nil, 1, 1024, 3, d)
		var shrunk []placement.Node
		for _, n := range nodes {
			if n.Labels.Rack != "r3" {
				shrunk = append(shrunk, n)
			}
		}
		plan, err := Rebalance(shrunk, []placement.Table{tb})
		if err != nil {
			t.Fatal(err)
		}
		target := simulate(t, []placement.Table{tb}, plan, 100)
		checkTable(t, shrunk, target[0], plan.Report)
		held := 0
		for _, pt := range tb.Partitions {
			for _, n := range pt.Replicas() {
				if strings.Contains(string(n), "-r03-") {
					held++
				}
			}
		}
		if plan.Summary.ReplicaMoves != held || plan.Summary.MinReplicaMoves != held {
			t.Fatalf("%v: %d moves (minimum %d), want %d", d, plan.Summary.ReplicaMoves, plan.Summary.MinReplicaMoves, held)
		}
	}
}

// TestRebalanceDegradesAndRecovers drops to two racks with a three-rack
// rule (reported), then adds a rack back (rule restored, violations gone).
func TestRebalanceDegradesAndRecovers(t *testing.T) {
	nodes := grid(1, 3, 4, 2)
	tb, rep := placeTable(t, nodes, nil, 7, 256, 3, placement.DomainRack)
	if !rep.OK() {
		t.Fatalf("report %v", rep)
	}
	var two []placement.Node
	for _, n := range nodes {
		if n.Labels.Rack != "r2" {
			two = append(two, n)
		}
	}
	plan, err := Rebalance(two, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Report.Violations) != 1 {
		t.Fatalf("violations %v", plan.Report.Violations)
	}
	v := plan.Report.Violations[0]
	if v.Wanted != placement.DomainRack || v.Applied != placement.DomainHost || v.Domains != 2 || v.Partitions != 256 || v.Table != 7 {
		t.Fatalf("violation %+v", v)
	}
	if !strings.Contains(plan.String(), "wants 3 replicas in distinct racks but only 2 racks are eligible") {
		t.Fatalf("plan text does not explain the violation:\n%s", plan)
	}
	down := simulate(t, []placement.Table{tb}, plan, 0)
	checkTable(t, two, down[0], plan.Report)

	back, err := Rebalance(nodes, down)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Report.Violations) != 0 {
		t.Fatalf("violations after recovery %v", back.Report.Violations)
	}
	up := simulate(t, down, back, 8)
	checkTable(t, nodes, up[0], back.Report)
}

// TestRebalanceManyTables checks that an expansion balances the cluster
// as a whole, not only each table: with many tables smaller than the
// cluster, per-table rounding alone would leave the new node empty. Every
// node must end within rebalanceTolerance (2) of its share of all tables
// (the deviation Rebalance lets accumulate before it moves a replica for
// it), and the replicas copied must be about what the new node receives.
func TestRebalanceManyTables(t *testing.T) {
	for _, shape := range []struct{ hosts, tables, parts int }{{10, 30, 3}, {40, 120, 8}} {
		nodes := grid(1, 1, shape.hosts, 1)
		var tables []placement.Table
		for k := 1; k <= shape.tables; k++ {
			tb, _ := placeTable(t, nodes, tables, placement.TableID(k), shape.parts, 3, placement.DomainHost)
			tables = append(tables, tb)
		}
		grown := append(slices.Clone(nodes), placement.Node{ID: "z9-new", Labels: placement.Labels{Host: "new"}})
		plan, err := Rebalance(grown, tables)
		if err != nil {
			t.Fatal(err)
		}
		target := simulate(t, tables, plan, 0)
		for _, tb := range target {
			checkTable(t, grown, tb, plan.Report)
		}
		var added NodeLoad
		for _, l := range plan.Summary.Nodes {
			if d := math.Abs(float64(l.ReplicasAfter) - l.ReplicaShare); d > rebalanceTolerance+1e-9 {
				t.Fatalf("node %s holds %d replicas, share %.2f:\n%s", l.ID, l.ReplicasAfter, l.ReplicaShare, plan)
			}
			if d := math.Abs(float64(l.MastersAfter) - l.MasterShare); d > rebalanceTolerance+1e-9 {
				t.Fatalf("node %s masters %d partitions, share %.2f:\n%s", l.ID, l.MastersAfter, l.MasterShare, plan)
			}
			if l.ID == "z9-new" {
				added = l
			}
		}
		if plan.Summary.ReplicaMoves > added.ReplicasAfter+shape.hosts/10+1 {
			t.Fatalf("%d replica moves, %d to the new node", plan.Summary.ReplicaMoves, added.ReplicasAfter)
		}
		t.Logf("%d tables of %d×3 on %d nodes + 1: %d replica moves, the new node got %d (share %.1f)",
			shape.tables, shape.parts, shape.hosts, plan.Summary.ReplicaMoves, added.ReplicasAfter, added.ReplicaShare)
	}
}

// TestRebalanceDeterministic runs Rebalance twice and on shuffled inputs.
func TestRebalanceDeterministic(t *testing.T) {
	for i := 0; i < iterations(20); i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 6))
		nodes := randomNodes(rng, fullSpec, true)
		var tables []placement.Table
		for k := 0; k < 3; k++ {
			tb, _ := placeTable(t, nodes, tables, placement.TableID(5-k), 1+rng.IntN(500), 1+rng.IntN(min(3, len(nodes))), domains[rng.IntN(len(domains))])
			tables = append(tables, tb)
		}
		mu := mutations[rng.IntN(len(mutations))]
		nodes, tables = mu.apply(rng, nodes, cloneTables(tables))
		nodesBefore, tablesBefore := slices.Clone(nodes), cloneTables(tables)
		a, errA := Rebalance(nodes, tables)
		b, errB := Rebalance(nodes, tables)
		if !reflect.DeepEqual(nodes, nodesBefore) || !reflect.DeepEqual(tables, tablesBefore) {
			t.Fatalf("seed %d: Rebalance modified its input", i)
		}
		sn := slices.Clone(nodes)
		rng.Shuffle(len(sn), func(i, j int) { sn[i], sn[j] = sn[j], sn[i] })
		st := cloneTables(tables)
		rng.Shuffle(len(st), func(i, j int) { st[i], st[j] = st[j], st[i] })
		c, errC := Rebalance(sn, st)
		if errA != nil || errB != nil || errC != nil {
			if errors.Is(errA, ErrNotEnoughNodes) && errors.Is(errB, ErrNotEnoughNodes) && errors.Is(errC, ErrNotEnoughNodes) {
				continue
			}
			t.Fatalf("seed %d: errors %v, %v, %v", i, errA, errB, errC)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d (%s): two runs differ", i, mu.name)
		}
		if !reflect.DeepEqual(a, c) {
			t.Fatalf("seed %d (%s): shuffled input gives a different plan", i, mu.name)
		}
	}
}

// TestPlanSteps checks the step grouping on a plan with many moves per
// partition.
func TestPlanSteps(t *testing.T) {
	nodes := grid(1, 1, 6, 1)
	tb, _ := placeTable(t, nodes, nil, 1, 40, 3, placement.DomainHost)
	// Move everything: replace the first three hosts by three new ones.
	var next []placement.Node
	for i, n := range nodes {
		if i < 3 {
			n.State = placement.NodeDraining
		}
		next = append(next, n)
	}
	for i := 0; i < 3; i++ {
		next = append(next, placement.Node{ID: placement.NodeID(fmt.Sprint("new", i)), Labels: placement.Labels{Host: fmt.Sprint("new", i)}})
	}
	plan, err := Rebalance(next, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1, 2, 7, 1000} {
		steps := plan.Steps(limit)
		simulate(t, []placement.Table{tb}, plan, limit)
		if limit == 1 && len(steps) != len(plan.Moves) {
			t.Fatalf("limit 1: %d steps for %d moves", len(steps), len(plan.Moves))
		}
		// At most limit partitions in progress: count partitions whose
		// first move was issued and whose last one was not.
		if limit > 0 {
			started := map[placement.PartitionID]int{}
			total := map[placement.PartitionID]int{}
			for _, m := range plan.Moves {
				total[m.Partition]++
			}
			for si, s := range steps {
				open := 0
				for _, m := range s {
					started[m.Partition]++
				}
				for p, c := range started {
					if c < total[p] {
						open++
					}
				}
				if open > limit {
					t.Fatalf("limit %d: %d partitions in progress after step %d", limit, open, si)
				}
			}
		}
	}
	// The moves of a partition: adds, then the master change, then removes.
	for i := 0; i < len(plan.Moves); {
		j := i
		phase := AddReplica
		for j < len(plan.Moves) && plan.Moves[j].Partition == plan.Moves[i].Partition {
			if plan.Moves[j].Kind < phase {
				t.Fatalf("partition %d: %v after a later kind", plan.Moves[j].Partition, plan.Moves[j])
			}
			phase = plan.Moves[j].Kind
			j++
		}
		i = j
	}
}

func TestRebalanceErrors(t *testing.T) {
	nodes := grid(1, 1, 3, 1)
	tb, _ := placeTable(t, nodes, nil, 1, 8, 3, placement.DomainHost)
	nodes[0].State = placement.NodeDown
	if _, err := Rebalance(nodes, []placement.Table{tb}); !errors.Is(err, ErrNotEnoughNodes) || !strings.Contains(err.Error(), "table 1") {
		t.Fatalf("err = %v, want ErrNotEnoughNodes naming the table", err)
	}
	nodes[0].State = placement.NodeUp
	if _, err := Rebalance(nodes, []placement.Table{tb, tb}); err == nil || !strings.Contains(err.Error(), "duplicate table") {
		t.Fatalf("err = %v, want duplicate table", err)
	}
	bad := tb.Clone()
	bad.Replication = 0
	if _, err := Rebalance(nodes, []placement.Table{bad}); err == nil || !strings.HasPrefix(err.Error(), "planner: ") {
		t.Fatalf("err = %v, want a replication error", err)
	}
	if _, err := Rebalance(append(nodes, nodes[0]), []placement.Table{tb}); err == nil || !strings.Contains(err.Error(), "duplicate node") {
		t.Fatalf("err = %v, want duplicate node", err)
	}
}

// TestRebalanceRepairs checks unusual current states: missing replicas,
// unknown nodes, two replicas on one host, no master, too many replicas.
func TestRebalanceRepairs(t *testing.T) {
	nodes := grid(1, 1, 4, 2)
	tb := placement.Table{ID: 3, Name: "odd", Replication: 2, Partitions: []placement.Partition{
		{ID: 0},
		{ID: 1, Master: "gone", Slaves: []placement.NodeID{"z0-r00-h00-n00"}},
		{ID: 2, Master: "z0-r00-h01-n00", Slaves: []placement.NodeID{"z0-r00-h01-n01"}},
		{ID: 3, Slaves: []placement.NodeID{"z0-r00-h02-n00", "z0-r00-h03-n00"}},
		{ID: 4, Master: "z0-r00-h00-n01", Slaves: []placement.NodeID{"z0-r00-h02-n01", "z0-r00-h03-n01"}},
	}}
	plan, err := Rebalance(nodes, []placement.Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	target := simulate(t, []placement.Table{tb}, plan, 0)
	checkTable(t, nodes, target[0], plan.Report)
	if s := plan.String(); !strings.Contains(s, "gone") || !strings.Contains(s, "unknown") {
		t.Fatalf("summary does not list the unknown node:\n%s", s)
	}
}
