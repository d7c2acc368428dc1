package planner

import (
	"cmp"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// assigner turns the current replicas of one table into a layout that meets
// the node quotas exactly, with the replicas of each partition in distinct
// domains at the rule level, moving as few replicas as it can.
//
// Every replica that must go (on an ineligible node, sharing a domain with
// another replica of its partition, beyond the replication factor, or over
// a node's quota) is moved straight to a node under its quota when the rule
// allows. When it does not, quotas are traded between nodes whose shares
// allow it (one node keeps a replica above its quota, another below gets
// none), which costs nothing; failing that, a breadth-first search finds
// the cheapest chain of moves that ends at a node under quota (an
// augmenting path in the flow network partitions → (partition, domain) →
// nodes), so a layout meeting the quotas is always reached.
//
// The chosen quotas meet every node's floor or ceiling, and the moves only
// ever take a replica from a node over its quota (or one that must go) to
// a node under it, so each move is one the balance requires, except for the
// chains, which the rule forces.
type assigner struct {
	t     *topology
	dep   int // tree depth of the rule level
	r     int
	seed  uint64
	reps  [][]int32 // per partition: replicas (eligible node indices)
	orig  [][]int32 // per partition: the replicas it started with
	pin   []int32   // per partition: the current master, moved only if needed
	held  [][]int32 // per node: partitions held
	load  []int32   // per node
	quota []int32   // per node
	under []int32   // nodes with load < quota (lazily compacted)
	vq    []int32   // per tree vertex: quota (sum of the quotas below)
	vlo   []int32   // per tree vertex: floor of its share
	vhi   []int32   // per tree vertex: ceiling of its share
	vband []int8    // per tree vertex: rounding band (see ledger.band)

	stamp  []int32 // BFS scratch, per node
	gen    int32
	from   []int32
	via    []int32
	dist   []int32
	done   []int32 // per node: generation in which it was expanded
	ustamp []int32 // per tree vertex: the expansion that filled upart/ucost
	ugen   int32
	upart  []int32
	ucost  []int32
	failed int // replicas that could not be placed (infeasible; never expected)
}

func newAssigner(t *topology, level placement.Domain, r, parts int, seed uint64) *assigner {
	n := len(t.nodes)
	a := &assigner{
		t: t, dep: depthOf(level), r: r, seed: seed,
		reps: make([][]int32, parts), pin: make([]int32, parts),
		held: make([][]int32, n), load: make([]int32, n), quota: make([]int32, n),
		stamp: make([]int32, n), from: make([]int32, n), via: make([]int32, n), dist: make([]int32, n),
	}
	for i := range a.pin {
		a.pin[i] = -1
	}
	return a
}

func (a *assigner) unit(n int32) int32 { return a.t.anc[n][a.dep] }

// fits reports whether partition p may have a replica on y once its replica
// on except (or -1) is gone.
func (a *assigner) fits(p, y, except int32) bool {
	uy := a.unit(y)
	for _, x := range a.reps[p] {
		if x != except && a.unit(x) == uy {
			return false
		}
	}
	return true
}

// spread scores how many replicas of p (other than except) share y's
// domains above the rule level, the larger levels weighing most.
func (a *assigner) spread(p, y, except int32) int64 {
	base := int64(a.r + 1)
	s := int64(0)
	for d := depthZone; d < a.dep; d++ {
		n := int64(0)
		vy := a.t.anc[y][d]
		for _, x := range a.reps[p] {
			if x != except && a.t.anc[x][d] == vy {
				n++
			}
		}
		s = s*base + n
	}
	return s
}

func (a *assigner) add(p, y int32) {
	a.reps[p] = append(a.reps[p], y)
	a.held[y] = append(a.held[y], p)
	a.load[y]++
}

func (a *assigner) remove(p, x int32) {
	rs := a.reps[p]
	for i, v := range rs {
		if v == x {
			a.reps[p] = append(rs[:i], rs[i+1:]...)
			break
		}
	}
	a.unhold(p, x)
	a.load[x]--
}

func (a *assigner) unhold(p, x int32) {
	h := a.held[x]
	for i, q := range h {
		if q == p {
			h[i] = h[len(h)-1]
			a.held[x] = h[:len(h)-1]
			return
		}
	}
}

// move replaces p's replica on x with one on y, in the same position.
func (a *assigner) move(p, x, y int32) {
	for i, v := range a.reps[p] {
		if v == x {
			a.reps[p][i] = y
			break
		}
	}
	a.unhold(p, x)
	a.load[x]--
	a.held[y] = append(a.held[y], p)
	a.load[y]++
	if a.pin[p] == x {
		a.pin[p] = y
	}
}

// setQuota installs the quotas (per tree vertex, as computed by round from
// share) and the list of nodes under quota.
func (a *assigner) setQuota(q []int32, share []float64, led *ledger) {
	a.orig = make([][]int32, len(a.reps))
	for p, rs := range a.reps {
		a.orig[p] = append([]int32(nil), rs...)
	}
	a.vq = q
	a.vlo = make([]int32, len(q))
	a.vhi = make([]int32, len(q))
	a.vband = make([]int8, len(q))
	for v, s := range share {
		a.vlo[v], a.vhi[v] = floorCeil(s)
		a.vband[v], _ = led.band(int32(v), s)
	}
	a.under = a.under[:0]
	for _, n := range a.t.eligible {
		a.quota[n] = q[a.t.leafOf(n)]
		if a.load[n] < a.quota[n] {
			a.under = append(a.under, n)
		}
	}
}

// dropExtras removes replicas beyond the replication factor (a table whose
// factor was lowered), from the nodes most over their quota.
func (a *assigner) dropExtras() {
	for p := range a.reps {
		for len(a.reps[p]) > a.r {
			victim, worst := int32(-1), int32(0)
			for _, x := range a.reps[p] {
				if x == a.pin[p] {
					continue
				}
				if ex := a.load[x] - a.quota[x]; victim < 0 || ex >= worst {
					victim, worst = x, ex
				}
			}
			a.remove(int32(p), victim)
			if a.load[victim] < a.quota[victim] {
				a.under = append(a.under, victim)
			}
		}
	}
}

// lowerBound returns the fewest replica copies that any layout keeping
// every node between the floor and the ceiling of its share needs from the
// current replicas: every missing replica needs a copy, and so does every
// replica over a node's ceiling; every node below its floor must receive
// the difference. The larger of the two counts is the bound.
func (a *assigner) lowerBound(share []float64) int {
	holes, over, under := 0, 0, 0
	for _, rs := range a.reps {
		holes += max(0, a.r-len(rs))
	}
	for _, n := range a.t.eligible {
		lo, hi := floorCeil(share[a.t.leafOf(n)])
		over += int(max(0, a.load[n]-hi))
		under += int(max(0, lo-a.load[n]))
	}
	return max(holes+over, under)
}

// cost returns what moving p's replica away from x adds to the plan: 1 if
// it is one of p's original replicas (a copy more), 0 if it was added in
// this run (the copy just goes elsewhere).
func (a *assigner) cost(p, x int32) int32 {
	if contains(a.orig[p], x) {
		return 1
	}
	return 0
}

// run fills the missing replicas, the partitions with fewest possible
// places first, and relieves the nodes over quota.
func (a *assigner) run() {
	type hole struct{ p, options int32 }
	var holes []hole
	for p := range a.reps {
		if len(a.reps[p]) >= a.r {
			continue
		}
		n := int32(0)
		for i := 0; ; i++ {
			y, ok := a.nextUnder(i)
			if !ok {
				break
			}
			if a.fits(int32(p), y, -1) {
				n++
			}
		}
		holes = append(holes, hole{int32(p), n})
	}
	slices.SortStableFunc(holes, func(x, y hole) int { return cmp.Compare(x.options, y.options) })
	for _, h := range holes {
		p := h.p
		for len(a.reps[p]) < a.r {
			if !a.fillOne(p) && !a.tradeFill(p) && !a.augment(-1, p) {
				a.failed += a.r - len(a.reps[p])
				break
			}
		}
	}
	for x := int32(0); x < int32(len(a.t.nodes)); x++ {
		for a.load[x] > a.quota[x] {
			if !a.moveOne(x) && !a.trade(x) && !a.augment(x, -1) {
				a.failed += int(a.load[x] - a.quota[x])
				break
			}
		}
	}
}

// nextUnder returns under[i], compacting away nodes that are full. ok is
// false when i is past the end.
func (a *assigner) nextUnder(i int) (int32, bool) {
	for i < len(a.under) {
		y := a.under[i]
		if a.load[y] < a.quota[y] {
			return y, true
		}
		a.under[i] = a.under[len(a.under)-1]
		a.under = a.under[:len(a.under)-1]
	}
	return -1, false
}

// fillOne adds a replica of p on a node under quota that the rule allows:
// preferably one whose quota is the floor of its share (room that must be
// filled there, whereas room at a ceiling can be traded to another node
// later, see tradeFill), then the one that needs most, then the one that
// spreads p best, then a hash.
func (a *assigner) fillOne(p int32) bool {
	best := int32(-1)
	var bestGap int32
	var bestSpread int64
	var bestTie uint64
	for i := 0; ; i++ {
		y, ok := a.nextUnder(i)
		if !ok {
			break
		}
		if !a.fits(p, y, -1) {
			continue
		}
		gap := a.quota[y] - a.load[y]
		if a.quota[y] <= a.vlo[a.t.leafOf(y)] {
			gap += 1 << 20 // rigid room first
		}
		sp := a.spread(p, y, -1)
		tie := mix(a.seed, uint64(p)<<20^uint64(y))
		if best < 0 || gap > bestGap || (gap == bestGap && (sp < bestSpread || (sp == bestSpread && tie < bestTie))) {
			best, bestGap, bestSpread, bestTie = y, gap, sp, tie
		}
	}
	if best < 0 {
		return false
	}
	a.add(p, best)
	return true
}

// moveOne moves one replica from x (over quota) straight to a node under
// quota, if one can take any of x's partitions.
func (a *assigner) moveOne(x int32) bool {
	y, p := a.direct(x)
	if y < 0 {
		return false
	}
	a.move(p, x, y)
	return true
}

// direct returns the best direct move of a replica away from x: the node
// under quota that needs most among those that can take one of x's
// partitions, and the partition to move (preferring a slave to the master,
// then the one that ends best spread). y is -1 when there is none.
func (a *assigner) direct(x int32) (y, part int32) {
	best := int32(-1)
	var bestGap int32
	var bestTie uint64
	for i := 0; ; i++ {
		y, ok := a.nextUnder(i)
		if !ok {
			break
		}
		gap := a.quota[y] - a.load[y]
		tie := mix(a.seed, uint64(y))
		if best >= 0 && (gap < bestGap || (gap == bestGap && tie > bestTie)) {
			continue
		}
		for _, p := range a.held[x] {
			if a.fits(p, y, x) {
				best, bestGap, bestTie = y, gap, tie
				break
			}
		}
	}
	if best < 0 {
		return -1, -1
	}
	bp := int32(-1)
	var bestKey int64
	var bestPTie uint64
	for _, p := range a.held[x] {
		if !a.fits(p, best, x) {
			continue
		}
		key := a.spread(p, best, x)
		if a.pin[p] == x {
			key += 1 << 40
		}
		key += int64(a.cost(p, x)) << 41
		tie := mix(a.seed, uint64(p))
		if bp < 0 || key < bestKey || (key == bestKey && tie < bestPTie) {
			bp, bestKey, bestPTie = p, key, tie
		}
	}
	return best, bp
}

// augment finds a cheapest chain of moves that starts with src giving up
// one of its replicas (or with the missing replica of partition hole) and
// ends at a node under quota, and applies it. A move costs one copy when it
// moves an original replica and nothing when it re-routes a replica added
// in this run, so chains through new replicas are preferred (0-1 BFS).
// Every move of the chain concerns a different partition, so each is valid
// on its own.
func (a *assigner) augment(src, hole int32) bool {
	a.gen++
	gen := a.gen
	var front, back []int32 // deque: front is a stack of cost-0 arrivals
	push := func(y, from, via, d int32, zero bool) {
		if a.stamp[y] == gen && a.dist[y] <= d {
			return
		}
		a.stamp[y] = gen
		a.dist[y], a.from[y], a.via[y] = d, from, via
		if zero {
			front = append(front, y)
		} else {
			back = append(back, y)
		}
	}
	if hole >= 0 {
		for _, y := range a.t.eligible {
			if a.fits(hole, y, -1) {
				push(y, -1, hole, 1, false)
			}
		}
	} else {
		push(src, -2, -1, 0, true)
	}
	if len(a.done) < len(a.t.nodes) {
		a.done = make([]int32, len(a.t.nodes))
		a.ustamp = make([]int32, len(a.t.tn))
		a.upart = make([]int32, len(a.t.tn))
		a.ucost = make([]int32, len(a.t.tn))
	}
	var path []int32
	for bi := 0; len(front) > 0 || bi < len(back); {
		var x int32
		if len(front) > 0 {
			x = front[len(front)-1]
			front = front[:len(front)-1]
		} else {
			x = back[bi]
			bi++
		}
		if a.done[x] == gen {
			continue
		}
		a.done[x] = gen
		if a.from[x] != -2 && a.load[x] < a.quota[x] {
			a.apply(x)
			return true
		}
		path = path[:0]
		for v := x; a.from[v] != -2; v = a.from[v] {
			path = append(path, a.via[v])
			if a.from[v] == -1 {
				break
			}
		}
		// Whether a partition of x may move to y depends only on y's
		// domain: find the cheapest one once per domain.
		a.ugen++
		d := a.dist[x]
		for _, y := range a.t.eligible {
			if a.done[y] == gen || (a.stamp[y] == gen && a.dist[y] <= d) {
				continue
			}
			u := a.unit(y)
			if a.ustamp[u] != a.ugen {
				a.ustamp[u] = a.ugen
				a.upart[u], a.ucost[u] = a.cheapest(x, y, path)
			}
			if p := a.upart[u]; p >= 0 {
				c := a.ucost[u]
				push(y, x, p, d+c, c == 0)
			}
		}
	}
	return false
}

// cheapest returns the partition of x, not in path, whose replica could
// move to y at the lowest cost (see cost), and that cost; -1 if none can.
func (a *assigner) cheapest(x, y int32, path []int32) (part, cost int32) {
	part, cost = -1, 2
	for _, p := range a.held[x] {
		if contains(path, p) || !a.fits(p, y, x) {
			continue
		}
		if c := a.cost(p, x); c < cost {
			part, cost = p, c
			if c == 0 {
				break
			}
		}
	}
	return part, cost
}

// apply performs the chain found by augment that ends at y, cut short
// when quotas can be traded instead (see swappable): a chain from a node
// src over quota stops at the last node v it passes that may give src one
// unit of quota (src keeps its replica, v gives one up); a chain from a
// missing replica stops at the first node v it passes that may take one
// unit of quota from y (v keeps the replica it received).
func (a *assigner) apply(y int32) {
	// chain[0] is where the chain starts (src, or the node that receives
	// the missing replica); chain[len-1] is y.
	var chain []int32
	for v := y; ; v = a.from[v] {
		chain = append(chain, v)
		if a.from[v] < 0 {
			break
		}
	}
	slices.Reverse(chain)
	first, last := 0, len(chain)-1 // moves into chain[first+1..last] are applied
	if start := chain[0]; a.from[start] == -2 {
		for i := last - 1; i >= 1; i-- {
			if a.swappable(start, chain[i]) {
				a.swap(start, chain[i])
				first = i
				break
			}
		}
	} else {
		for i := 0; i < last; i++ {
			if a.swappable(chain[i], y) {
				a.swap(chain[i], y)
				last = i
				break
			}
		}
		a.add(a.via[chain[0]], chain[0])
	}
	for i := first + 1; i <= last; i++ {
		a.move(a.via[chain[i]], chain[i-1], chain[i])
	}
}

// tradeFill places a missing replica of p on a full node y that the rule
// allows and whose quota may grow, taking one unit of quota from a node
// under quota: no node has room where p may go, but quotas can move.
func (a *assigner) tradeFill(p int32) bool {
	for _, y := range a.t.eligible {
		if a.load[y] != a.quota[y] || !a.fits(p, y, -1) {
			continue
		}
		for i := 0; ; i++ {
			z, ok := a.nextUnder(i)
			if !ok {
				break
			}
			if a.swappable(y, z) {
				a.swap(y, z)
				a.add(p, y)
				return true
			}
		}
	}
	return false
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// swappable reports whether quota can pass from z to x: whether x's quota
// can grow by one without passing the ceiling of its share while z's
// shrinks by one without passing the floor, without going against the
// rounding bands that keep the cluster-wide load balanced, and without
// giving x's domain at the rule level more than one replica per partition.
func (a *assigner) swappable(x, z int32) bool {
	if x == z {
		return false
	}
	lx, lz := a.t.leafOf(x), a.t.leafOf(z)
	if a.vq[lx]+1 > a.vhi[lx] || a.vq[lz]-1 < a.vlo[lz] || a.vband[lx] == 2 || a.vband[lz] == 0 {
		return false
	}
	ux, uz := a.t.ancestor(lx, a.dep), a.t.ancestor(lz, a.dep)
	return ux == uz || a.vq[ux] < int32(len(a.reps))
}

// swap moves one unit of quota from z to x (see swappable).
func (a *assigner) swap(x, z int32) {
	a.quota[x]++
	a.quota[z]--
	vx, vz := a.t.leafOf(x), a.t.leafOf(z)
	for vx != vz {
		a.vq[vx]++
		a.vq[vz]--
		vx, vz = a.t.tn[vx].parent, a.t.tn[vz].parent
	}
}

// trade relieves x, over quota but unable to move a replica directly, by
// taking one unit of quota from a node z that can: z moves one of its
// replicas to a node under quota and x keeps its own. Candidates are tried
// nearest first in the tree (same host, then rack, zone, cluster).
func (a *assigner) trade(x int32) bool {
	if a.quota[x] >= a.vhi[a.t.leafOf(x)] {
		return false
	}
	prev := int32(-1)
	for d := depthHost; d >= depthRoot; d-- {
		anc := a.t.anc[x][d]
		found := false
		a.t.leavesUnderExcept(anc, prev, func(l int32) bool {
			z := a.t.tn[l].node
			if z == x || a.load[z] != a.quota[z] || !a.swappable(x, z) {
				return true
			}
			y, p := a.direct(z)
			if y < 0 {
				return true
			}
			a.swap(x, z)
			a.move(p, z, y)
			found = true
			return false
		})
		if found {
			return true
		}
		prev = anc
	}
	return false
}
