package planner

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// ErrNotEnoughNodes is returned (wrapped, with the table and the counts) by
// Place, Rebalance and RebalanceMasters when a table has more replicas than
// there are eligible (up) nodes, so that no two replicas of a partition can
// be kept apart even at the node level.
var ErrNotEnoughNodes = errors.New("planner: not enough eligible nodes")

// Tree depths of the failure-domain hierarchy. The root holds every eligible
// node; the leaves are the nodes themselves.
const (
	depthRoot = 0
	depthZone = 1
	depthRack = 2
	depthHost = 3
	depthLeaf = 4
)

// depthOf returns the tree depth of the domains of level d (d must be
// effective: DomainNode..DomainZone).
func depthOf(d placement.Domain) int { return depthLeaf + int(placement.DomainNode) - int(d) }

// tnode is one vertex of the failure-domain tree: a zone, rack or host
// domain, a node (leaf), or the root. Only eligible nodes are in the tree.
type tnode struct {
	depth    int
	parent   int32
	children []int32
	weight   float64 // sum of the effective weights of the nodes below
	node     int32   // index in topology.nodes for a leaf, -1 otherwise
}

// topology is the failure-domain tree built from a node list, with the
// lookups every algorithm needs. It is immutable once built.
//
// Empty labels: a node without a host label is its own host; a host without
// a rack label is its own rack (every node of that host shares it); a rack
// without a zone label is its own zone. An empty label therefore never puts
// unrelated nodes together in one domain, and never splits nodes that share
// the level below. Domains are identified by their full path: host "h1" of
// rack "r1" and host "h1" of rack "r2" are two hosts.
type topology struct {
	nodes  []placement.Node           // every node, sorted by ID
	index  map[placement.NodeID]int32 // node ID → index in nodes (lookup only)
	weight []float64                  // effective weight (Weight, or 1 when Weight ≤ 0)
	up     []bool                     // State == NodeUp: eligible for replicas and masters

	tn       []tnode                // tree; tn[0] is the root
	anc      [][depthLeaf + 1]int32 // node index → tree vertex at each depth (all -1 for ineligible nodes)
	byDepth  [depthLeaf + 1][]int32
	eligible []int32 // indices of eligible nodes, ascending
}

// newTopology validates nodes and builds the tree of the eligible ones. The
// result does not depend on the order of nodes.
func newTopology(nodes []placement.Node) (*topology, error) {
	t := &topology{
		nodes: slices.Clone(nodes),
		index: make(map[placement.NodeID]int32, len(nodes)),
	}
	slices.SortFunc(t.nodes, func(a, b placement.Node) int { return strings.Compare(string(a.ID), string(b.ID)) })
	t.weight = make([]float64, len(t.nodes))
	t.up = make([]bool, len(t.nodes))
	t.anc = make([][depthLeaf + 1]int32, len(t.nodes))
	for i, n := range t.nodes {
		if n.ID == "" {
			return nil, errors.New("planner: node with an empty ID")
		}
		if i > 0 && t.nodes[i-1].ID == n.ID {
			return nil, fmt.Errorf("planner: duplicate node %q", n.ID)
		}
		t.index[n.ID] = int32(i)
		t.weight[i] = 1
		if n.Weight > 0 {
			t.weight[i] = float64(n.Weight)
		}
		t.up[i] = n.State == placement.NodeUp
		for d := range t.anc[i] {
			t.anc[i][d] = -1
		}
		if t.up[i] {
			t.eligible = append(t.eligible, int32(i))
		}
	}

	// Sort the eligible nodes by their domain path so that each domain is a
	// contiguous run, then cut the runs into tree vertices.
	type keyed struct {
		keys [depthLeaf]string // [depthZone..depthHost] used
		node int32
	}
	ks := make([]keyed, len(t.eligible))
	for i, n := range t.eligible {
		ks[i] = keyed{keys: domainKeys(&t.nodes[n]), node: n}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		for d := depthZone; d <= depthHost; d++ {
			if c := strings.Compare(a.keys[d], b.keys[d]); c != 0 {
				return c
			}
		}
		return int(a.node) - int(b.node)
	})
	t.tn = append(t.tn, tnode{depth: depthRoot, parent: -1, node: -1})
	t.byDepth[depthRoot] = []int32{0}
	var cur [depthLeaf + 1]int32 // current vertex at each depth
	for i, k := range ks {
		changed := false
		for d := depthZone; d <= depthLeaf; d++ {
			if !changed && d < depthLeaf && i > 0 && ks[i-1].keys[d] == k.keys[d] {
				continue
			}
			changed = true
			v := int32(len(t.tn))
			leaf := int32(-1)
			if d == depthLeaf {
				leaf = k.node
			}
			parent := int32(0)
			if d > depthZone {
				parent = cur[d-1]
			}
			t.tn = append(t.tn, tnode{depth: d, parent: parent, node: leaf})
			t.tn[parent].children = append(t.tn[parent].children, v)
			t.byDepth[d] = append(t.byDepth[d], v)
			cur[d] = v
		}
		cur[depthRoot] = 0
		t.anc[k.node] = cur
		for d := depthRoot; d <= depthLeaf; d++ {
			t.tn[cur[d]].weight += t.weight[k.node]
		}
	}
	return t, nil
}

// domainKeys returns the identity of node n's zone, rack and host domains,
// applying the empty-label rules documented on topology.
func domainKeys(n *placement.Node) [depthLeaf]string {
	var k [depthLeaf]string
	if n.Labels.Host != "" {
		k[depthHost] = "h\x00" + n.Labels.Zone + "\x00" + n.Labels.Rack + "\x00" + n.Labels.Host
	} else {
		k[depthHost] = "n\x00" + string(n.ID)
	}
	if n.Labels.Rack != "" {
		k[depthRack] = "r\x00" + n.Labels.Zone + "\x00" + n.Labels.Rack
	} else {
		k[depthRack] = "H\x00" + k[depthHost]
	}
	if n.Labels.Zone != "" {
		k[depthZone] = "z\x00" + n.Labels.Zone
	} else {
		k[depthZone] = "R\x00" + k[depthRack]
	}
	return k
}

// domains returns the number of eligible failure domains at level d.
func (t *topology) domains(d placement.Domain) int { return len(t.byDepth[depthOf(d)]) }

// effective returns the level at which the replicas of a table with r
// replicas and rule want are kept apart: want itself when the topology has
// at least r eligible domains at that level, otherwise the highest level
// below it that has. It fails when even the nodes are too few; label names
// the table in the error.
func (t *topology) effective(want placement.Domain, r int, label string) (placement.Domain, error) {
	want = want.Effective()
	if want < placement.DomainNode || want > placement.DomainZone {
		return 0, fmt.Errorf("planner: %s: unknown failure domain %d", label, uint8(want))
	}
	for d := want; d >= placement.DomainNode; d-- {
		if t.domains(d) >= r {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%w: %s needs %d replicas on distinct nodes, %d eligible", ErrNotEnoughNodes, label, r, len(t.eligible))
}

// leafOf returns the tree leaf of eligible node n.
func (t *topology) leafOf(n int32) int32 { return t.anc[n][depthLeaf] }

// nodeOf returns the index of node id and whether it is known.
func (t *topology) nodeOf(id placement.NodeID) (int32, bool) {
	i, ok := t.index[id]
	return i, ok
}

// sumUp fills the shares of every vertex above depth from the vertices at
// depth, which must already be set.
func (t *topology) sumUp(v []float64, depth int) {
	for d := depth - 1; d >= depthRoot; d-- {
		for _, u := range t.byDepth[d] {
			s := 0.0
			for _, c := range t.tn[u].children {
				s += v[c]
			}
			v[u] = s
		}
	}
}

// treeCounts aggregates per-node counts (indexed like topology.nodes) over
// the tree: the result holds, for every vertex, the sum of the counts of the
// eligible nodes below it. Counts of ineligible nodes are ignored.
func (t *topology) treeCounts(perNode []int32) []int32 {
	c := make([]int32, len(t.tn))
	for _, n := range t.eligible {
		if perNode[n] == 0 {
			continue
		}
		for _, v := range t.anc[n] {
			c[v] += perNode[n]
		}
	}
	return c
}

// sumUpCounts fills the counts of every vertex above the leaves from the
// leaves' counts.
func (t *topology) sumUpCounts(c []int32) {
	for d := depthHost; d >= depthRoot; d-- {
		for _, u := range t.byDepth[d] {
			s := int32(0)
			for _, ch := range t.tn[u].children {
				s += c[ch]
			}
			c[u] = s
		}
	}
}

// ancestor returns the vertex at depth dep above vertex v (v itself when v
// is at that depth).
func (t *topology) ancestor(v int32, dep int) int32 {
	for t.tn[v].depth > dep {
		v = t.tn[v].parent
	}
	return v
}
