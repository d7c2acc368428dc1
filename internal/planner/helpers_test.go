package planner

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// This file holds an independent model of what placement promises, used by
// the tests to check results: failure-domain keys, effective levels and
// shares are recomputed here from the documented rules, without the
// package's tree.

// keyAt returns node n's domain at level d under the documented empty-label
// rules (an empty label makes the node's domain at that level the same as
// its domain one level down).
func keyAt(n placement.Node, d placement.Domain) string {
	host := "node:" + string(n.ID)
	if n.Labels.Host != "" {
		host = "host:" + n.Labels.Zone + "/" + n.Labels.Rack + "/" + n.Labels.Host
	}
	rack := "h-" + host
	if n.Labels.Rack != "" {
		rack = "rack:" + n.Labels.Zone + "/" + n.Labels.Rack
	}
	zone := "r-" + rack
	if n.Labels.Zone != "" {
		zone = "zone:" + n.Labels.Zone
	}
	switch d.Effective() {
	case placement.DomainNode:
		return "node:" + string(n.ID)
	case placement.DomainHost:
		return host
	case placement.DomainRack:
		return rack
	}
	return zone
}

func upNodes(nodes []placement.Node) []placement.Node {
	var out []placement.Node
	for _, n := range nodes {
		if n.State == placement.NodeUp {
			out = append(out, n)
		}
	}
	return out
}

func weightOf(n placement.Node) float64 {
	if n.Weight <= 0 {
		return 1
	}
	return float64(n.Weight)
}

// wantLevel returns the level a table should be kept apart at.
func wantLevel(nodes []placement.Node, want placement.Domain, r int) (placement.Domain, bool) {
	up := upNodes(nodes)
	for d := want.Effective(); d >= placement.DomainNode; d-- {
		keys := map[string]bool{}
		for _, n := range up {
			keys[keyAt(n, d)] = true
		}
		if len(keys) >= r {
			return d, true
		}
	}
	return 0, false
}

// fill splits total by weight with per-item caps: the textbook iteration
// (cap every item over the current level, recompute, repeat).
func capFill(w, caps []float64, total float64) []float64 {
	out := make([]float64, len(w))
	capped := make([]bool, len(w))
	for {
		remT, remW := total, 0.0
		for i := range w {
			if capped[i] {
				remT -= caps[i]
			} else {
				remW += w[i]
			}
		}
		lambda := 0.0
		if remW > 0 {
			lambda = remT / remW
		}
		changed := false
		for i := range w {
			if !capped[i] && lambda*w[i] > caps[i]+1e-9 {
				capped[i] = true
				changed = true
			}
		}
		if !changed {
			for i := range w {
				if capped[i] {
					out[i] = caps[i]
				} else {
					out[i] = lambda * w[i]
				}
			}
			return out
		}
	}
}

// replicaShareModel returns each up node's share of a table's replicas.
func replicaShareModel(nodes []placement.Node, level placement.Domain, r, p int) map[placement.NodeID]float64 {
	up := upNodes(nodes)
	dw := map[string]float64{}
	var keys []string
	for _, n := range up {
		k := keyAt(n, level)
		if _, ok := dw[k]; !ok {
			keys = append(keys, k)
		}
		dw[k] += weightOf(n)
	}
	w := make([]float64, len(keys))
	caps := make([]float64, len(keys))
	for i, k := range keys {
		w[i] = dw[k]
		caps[i] = float64(p)
	}
	ds := capFill(w, caps, float64(r*p))
	share := map[string]float64{}
	for i, k := range keys {
		share[k] = ds[i]
	}
	out := map[placement.NodeID]float64{}
	for _, n := range up {
		k := keyAt(n, level)
		out[n.ID] = share[k] * weightOf(n) / dw[k]
	}
	return out
}

// masterShareModel returns each up node's share of p masters given its
// replica counts.
func masterShareModel(nodes []placement.Node, counts map[placement.NodeID]int, p int) map[placement.NodeID]float64 {
	up := upNodes(nodes)
	w := make([]float64, len(up))
	caps := make([]float64, len(up))
	for i, n := range up {
		w[i] = weightOf(n)
		caps[i] = float64(counts[n.ID])
	}
	s := capFill(w, caps, float64(p))
	out := map[placement.NodeID]float64{}
	for i, n := range up {
		out[n.ID] = s[i]
	}
	return out
}

// checkTable verifies one table's assignment against the model: replicas
// distinct, on up nodes, apart at the expected level (and the report says
// so when that is below the rule), every node and every domain within one
// of its share, masters within one of their share. It returns the per-node
// replica and master counts.
func checkTable(t *testing.T, nodes []placement.Node, tb placement.Table, rep Report) (map[placement.NodeID]int, map[placement.NodeID]int) {
	t.Helper()
	byID := map[placement.NodeID]placement.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	r, p := tb.Replication, len(tb.Partitions)
	level, ok := wantLevel(nodes, tb.Domain, r)
	if !ok {
		t.Fatalf("table %d: model says not placeable", tb.ID)
	}
	degraded := level != tb.Domain.Effective()
	var vio *Violation
	for i := range rep.Violations {
		if rep.Violations[i].Table == tb.ID {
			vio = &rep.Violations[i]
		}
	}
	if degraded != (vio != nil) {
		t.Fatalf("table %d: rule %v applied at %v, violation reported: %v", tb.ID, tb.Domain.Effective(), level, vio)
	}
	if vio != nil && vio.Applied != level {
		t.Fatalf("table %d: violation says applied %v, want %v", tb.ID, vio.Applied, level)
	}
	levelKey := map[placement.NodeID]string{}
	wantKey := map[placement.NodeID]string{}
	for _, n := range nodes {
		levelKey[n.ID] = keyAt(n, level)
		wantKey[n.ID] = keyAt(n, tb.Domain)
	}
	counts := map[placement.NodeID]int{}
	masters := map[placement.NodeID]int{}
	sharing := 0
	for _, pt := range tb.Partitions {
		reps := pt.Replicas()
		if len(reps) != r || pt.Master == "" {
			t.Fatalf("table %d partition %d: replicas %v master %q, want %d replicas", tb.ID, pt.ID, reps, pt.Master, r)
		}
		seen := map[string]bool{}
		wantSeen := map[string]bool{}
		shares := false
		for _, id := range reps {
			n, ok := byID[id]
			if !ok || n.State != placement.NodeUp {
				t.Fatalf("table %d partition %d: replica on %q, not an up node", tb.ID, pt.ID, id)
			}
			k := levelKey[id]
			if seen[k] {
				t.Fatalf("table %d partition %d: replicas %v share %s", tb.ID, pt.ID, reps, k)
			}
			seen[k] = true
			if wk := wantKey[id]; wantSeen[wk] {
				shares = true
			} else {
				wantSeen[wk] = true
			}
			counts[id]++
		}
		if shares {
			sharing++
		}
		masters[pt.Master]++
	}
	if vio != nil && vio.Partitions != sharing {
		t.Fatalf("table %d: violation counts %d partitions sharing a %v, want %d", tb.ID, vio.Partitions, vio.Wanted, sharing)
	}
	// Every node within one of its share: |count − share| < 1, i.e. the
	// floor or the ceiling.
	share := replicaShareModel(nodes, level, r, p)
	for _, n := range upNodes(nodes) {
		if c, s := counts[n.ID], share[n.ID]; math.Abs(float64(c)-s) >= 1-1e-6 && float64(c) != math.Round(s) {
			t.Fatalf("table %d (P=%d R=%d at %v): node %s holds %d replicas, share %.4f", tb.ID, p, r, level, n.ID, c, s)
		}
	}
	ms := masterShareModel(nodes, counts, p)
	for id, s := range ms {
		if c := masters[id]; math.Abs(float64(c)-s) >= 1-1e-6 && float64(c) != math.Round(s) {
			t.Fatalf("table %d (P=%d R=%d): node %s masters %d, share %.4f (holds %d replicas)", tb.ID, p, r, id, c, s, counts[id])
		}
	}
	return counts, masters
}

// topoSpec is a random topology's shape.
type topoSpec struct {
	zones, racks, hosts, perHost int
}

// randomNodes returns a random topology: 1–5 zones, 1–10 racks, 1–20 hosts
// in all (each level at least as many as the one above), 1–8 nodes per
// host, weights 1–4. With unlabeled set, some labels are left empty.
func randomNodes(rng *rand.Rand, max topoSpec, unlabeled bool) []placement.Node {
	z := 1 + rng.IntN(max.zones)
	r := z + rng.IntN(max.racks-min(z, max.racks)+1)
	h := r + rng.IntN(max.hosts-min(r, max.hosts)+1)
	rackZone := make([]int, r)
	for i := range rackZone {
		rackZone[i] = i % z
	}
	var nodes []placement.Node
	for hi := 0; hi < h; hi++ {
		ri := hi % r
		per := 1 + rng.IntN(max.perHost)
		for k := 0; k < per; k++ {
			n := placement.Node{
				ID:     placement.NodeID(fmt.Sprintf("n%03d-%d", hi, k)),
				Addr:   fmt.Sprintf("10.0.%d.%d:7000", hi, k),
				Labels: placement.Labels{Zone: fmt.Sprintf("z%d", rackZone[ri]), Rack: fmt.Sprintf("r%d", ri), Host: fmt.Sprintf("h%d", hi)},
				Weight: 1 + rng.IntN(4),
			}
			if unlabeled {
				if rng.IntN(8) == 0 {
					n.Labels.Zone = ""
				}
				if rng.IntN(8) == 0 {
					n.Labels.Rack = ""
				}
				if rng.IntN(10) == 0 {
					n.Labels.Host = ""
				}
			}
			nodes = append(nodes, n)
		}
	}
	return nodes
}

var fullSpec = topoSpec{zones: 5, racks: 10, hosts: 20, perHost: 8}

// grid returns zones × racks × hosts × nodes nodes of weight 1, named
// z<i>-r<j>-h<k>-n<l>.
func grid(zones, racks, hosts, per int) []placement.Node {
	var nodes []placement.Node
	for z := 0; z < zones; z++ {
		for r := 0; r < racks; r++ {
			for h := 0; h < hosts; h++ {
				for n := 0; n < per; n++ {
					nodes = append(nodes, placement.Node{
						ID:     placement.NodeID(fmt.Sprintf("z%d-r%02d-h%02d-n%02d", z, r, h, n)),
						Labels: placement.Labels{Zone: fmt.Sprint("z", z), Rack: fmt.Sprint("r", r), Host: fmt.Sprint("h", h)},
						Weight: 1,
					})
				}
			}
		}
	}
	return nodes
}

// placeTable places a table and fails the test on error.
func placeTable(t testing.TB, nodes []placement.Node, existing []placement.Table, id placement.TableID, p, r int, d placement.Domain) (placement.Table, Report) {
	t.Helper()
	parts, rep, err := Place(nodes, existing, TableSpec{ID: id, Name: fmt.Sprint("t", id), Partitions: p, Replication: r, Domain: d})
	if err != nil {
		t.Fatalf("Place(P=%d R=%d %v): %v", p, r, d, err)
	}
	return placement.Table{ID: id, Name: fmt.Sprint("t", id), Replication: r, Domain: d, Partitions: parts}, rep
}

// simulate executes plan step by step (Steps(limit)) on a copy of tables,
// modelling replicas as sets, and checks after every step that no
// partition has fewer replicas than min(R, its starting count), that every
// move is valid when executed, and at the end that the result equals
// plan.Target. It returns the final tables.
func simulate(t *testing.T, tables []placement.Table, plan *Plan, limit int) []placement.Table {
	t.Helper()
	type state struct {
		master string
		reps   map[string]bool
		floor  int
	}
	st := map[[2]uint32]*state{}
	for _, tb := range tables {
		for _, pt := range tb.Partitions {
			s := &state{master: string(pt.Master), reps: map[string]bool{}}
			for _, n := range pt.Replicas() {
				s.reps[string(n)] = true
			}
			s.floor = min(tb.Replication, len(s.reps))
			st[[2]uint32{uint32(tb.ID), uint32(pt.ID)}] = s
		}
	}
	steps := plan.Steps(limit)
	total := 0
	for si, step := range steps {
		if limit > 0 && len(step) > limit {
			t.Fatalf("step %d has %d moves, limit %d", si, len(step), limit)
		}
		seen := map[[2]uint32]bool{}
		for _, m := range step {
			key := [2]uint32{uint32(m.Table), uint32(m.Partition)}
			if seen[key] {
				t.Fatalf("step %d moves table %d partition %d twice", si, m.Table, m.Partition)
			}
			seen[key] = true
			s := st[key]
			if s == nil {
				t.Fatalf("move %v: no such partition", m)
			}
			switch m.Kind {
			case AddReplica:
				if s.reps[string(m.To)] {
					t.Fatalf("move %v: already a replica", m)
				}
				s.reps[string(m.To)] = true
			case RemoveReplica:
				if !s.reps[string(m.From)] || string(m.From) == s.master {
					t.Fatalf("move %v: not a slave (master %s)", m, s.master)
				}
				delete(s.reps, string(m.From))
			case ChangeMaster:
				if string(m.From) != s.master || !s.reps[string(m.To)] {
					t.Fatalf("move %v: master is %q, replicas %v", m, s.master, s.reps)
				}
				s.master = string(m.To)
			default:
				t.Fatalf("move %v: bad kind", m)
			}
			if len(s.reps) < s.floor {
				t.Fatalf("after move %v: %d replicas, below %d", m, len(s.reps), s.floor)
			}
		}
		total += len(step)
	}
	if total != len(plan.Moves) {
		t.Fatalf("steps hold %d moves, plan has %d", total, len(plan.Moves))
	}
	if len(plan.Target) != len(tables) {
		t.Fatalf("target has %d tables, want %d", len(plan.Target), len(tables))
	}
	for _, tb := range plan.Target {
		for _, pt := range tb.Partitions {
			s := st[[2]uint32{uint32(tb.ID), uint32(pt.ID)}]
			var want, got []string
			for n := range s.reps {
				want = append(want, n)
			}
			for _, n := range pt.Replicas() {
				got = append(got, string(n))
			}
			sort.Strings(want)
			sort.Strings(got)
			if string(pt.Master) != s.master || !slices.Equal(got, want) {
				t.Fatalf("table %d partition %d: target master %s replicas %v, simulation master %s replicas %v",
					tb.ID, pt.ID, pt.Master, got, s.master, want)
			}
		}
	}
	return plan.Target
}

// nodeLowerBound is the model's theoretical minimum number of replica
// copies for reaching a state where every node is within one of its share:
// the replicas nodes below their floor must receive, or the replicas that
// must leave nodes (ineligible ones entirely, others down to their ceiling)
// plus missing ones, whichever is larger.
func nodeLowerBound(nodes []placement.Node, tb placement.Table) int {
	level, _ := wantLevel(nodes, tb.Domain, tb.Replication)
	share := replicaShareModel(nodes, level, tb.Replication, len(tb.Partitions))
	counts := map[placement.NodeID]int{}
	missing := 0
	for _, pt := range tb.Partitions {
		ok := 0
		for _, id := range pt.Replicas() {
			if _, up := share[id]; up {
				counts[id]++
				ok++
			}
		}
		missing += max(0, tb.Replication-ok)
	}
	over, under := 0, 0
	for id, s := range share {
		c := counts[id]
		over += max(0, c-int(math.Ceil(s-1e-9)))
		under += max(0, int(math.Floor(s+1e-9))-c)
	}
	return max(missing+over, under)
}

// forcedExtra returns a lower bound on the number of replicas that must be
// copied, beyond those of the nodes that left (holes), to bring table tb to
// a state where every node of nodes is within one of its share with the
// replicas of each partition apart at the rule level. Each hole can give
// one replica to one node where its partition has no replica in the same
// domain. Nodes below the floor of their share must receive at least the
// difference: what the holes cannot supply (by maximum matching) needs
// other copies. Likewise holes that fit nowhere below the ceilings need
// room made by other copies.
func forcedExtra(nodes []placement.Node, tb placement.Table) int {
	level, _ := wantLevel(nodes, tb.Domain, tb.Replication)
	share := replicaShareModel(nodes, level, tb.Replication, len(tb.Partitions))
	byID := map[placement.NodeID]placement.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	up := upNodes(nodes)
	count := map[placement.NodeID]int{}
	var holes [][]string // per hole: domains of its partition's survivors
	for _, pt := range tb.Partitions {
		var keys []string
		for _, id := range pt.Replicas() {
			if _, ok := share[id]; ok {
				count[id]++
				keys = append(keys, keyAt(byID[id], level))
			}
		}
		for k := len(keys); k < tb.Replication; k++ {
			holes = append(holes, keys)
		}
	}
	match := func(capOf func(n placement.Node) int) int {
		caps := make([]int, len(up))
		for i, n := range up {
			caps[i] = max(0, capOf(n))
		}
		fits := func(h, i int) bool { return !slices.Contains(holes[h], keyAt(up[i], level)) }
		owner := make([][]int, len(up))
		var try func(h int, seen []bool) bool
		try = func(h int, seen []bool) bool {
			for i := range up {
				if seen[i] || !fits(h, i) {
					continue
				}
				seen[i] = true
				if len(owner[i]) < caps[i] {
					owner[i] = append(owner[i], h)
					return true
				}
				for j, o := range owner[i] {
					if try(o, seen) {
						owner[i][j] = h
						return true
					}
				}
			}
			return false
		}
		m := 0
		for h := range holes {
			if try(h, make([]bool, len(up))) {
				m++
			}
		}
		return m
	}
	deficit := 0
	for _, n := range up {
		deficit += max(0, int(math.Floor(share[n.ID]+1e-9))-count[n.ID])
	}
	toFloor := match(func(n placement.Node) int { return int(math.Floor(share[n.ID]+1e-9)) - count[n.ID] })
	toCeil := match(func(n placement.Node) int { return int(math.Ceil(share[n.ID]-1e-9)) - count[n.ID] })
	return max(deficit-toFloor, len(holes)-toCeil)
}
