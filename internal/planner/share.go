package planner

import (
	"cmp"
	"math"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// shareEps absorbs float64 rounding when a share is compared with an
// integer. True shares are rationals whose denominators are sums of node
// weights, so their distance from an integer is either 0 or far above this.
const shareEps = 1e-6

// floorCeil returns the floor and the ceiling of share, treating values
// within shareEps of an integer as that integer.
func floorCeil(share float64) (lo, hi int32) {
	lo = int32(math.Floor(share + shareEps))
	hi = int32(math.Ceil(share - shareEps))
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// waterfill splits total among items in proportion to weights, except that
// item i never gets more than caps[i]: capped items get their cap and the
// rest is split among the others, again in proportion to weight. The caps
// must add up to at least total; weights must be positive.
//
// Capping every item over the current level and recomputing the level
// settles in one or two rounds in practice (each round only raises the
// level); a sort-based pass handles the rare inputs that need more.
func waterfill(weights, caps []float64, total float64) []float64 {
	n := len(weights)
	out := make([]float64, n)
	capped := make([]bool, n)
	for round := 0; round < 4; round++ {
		remT, remW := total, 0.0
		for i := range weights {
			if capped[i] {
				remT -= caps[i]
			} else {
				remW += weights[i]
			}
		}
		mu := 0.0
		if remW > 0 && remT > 0 {
			mu = remT / remW
		}
		changed := false
		for i := range weights {
			if !capped[i] && caps[i] < mu*weights[i] {
				capped[i] = true
				changed = true
			}
		}
		if !changed {
			for i := range weights {
				if capped[i] {
					out[i] = caps[i]
				} else {
					out[i] = mu * weights[i]
				}
			}
			return out
		}
	}
	idx := make([]int, n)
	remW := 0.0
	for i := range idx {
		idx[i] = i
		remW += weights[i]
	}
	// Items in increasing order of cap per unit of weight: the first ones
	// are the first to hit their cap as the level rises.
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(caps[a]*weights[b], caps[b]*weights[a]); c != 0 {
			return c
		}
		return a - b
	})
	remT := total
	k := 0
	for ; k < n; k++ {
		i := idx[k]
		if caps[i]*remW > remT*weights[i] {
			break
		}
		out[i] = caps[i]
		remT -= caps[i]
		remW -= weights[i]
	}
	mu := 0.0
	if remW > 0 && remT > 0 {
		mu = remT / remW
	}
	for ; k < n; k++ {
		out[idx[k]] = mu * weights[idx[k]]
	}
	return out
}

// replicaShares returns every tree vertex's share of the r·p replicas of a
// table of p partitions whose replicas are kept apart at level.
//
// A domain at the rule level holds at most one replica of each partition,
// so at most p replicas: the domains share r·p in proportion to their
// weight, capped at p (waterfill). Below the rule level a domain's share is
// split among its children in proportion to weight; above it, a vertex's
// share is the sum of its children's. A node's share is therefore its
// weighted share whenever no domain is capped.
func (t *topology) replicaShares(level placement.Domain, r, p int) []float64 {
	share := make([]float64, len(t.tn))
	dep := depthOf(level)
	units := t.byDepth[dep]
	w := make([]float64, len(units))
	caps := make([]float64, len(units))
	for i, u := range units {
		w[i] = t.tn[u].weight
		caps[i] = float64(p)
	}
	for i, s := range waterfill(w, caps, float64(r)*float64(p)) {
		share[units[i]] = s
	}
	for d := dep + 1; d <= depthLeaf; d++ {
		for _, v := range t.byDepth[d] {
			par := t.tn[v].parent
			share[v] = share[par] * (t.tn[v].weight / t.tn[par].weight)
		}
	}
	t.sumUp(share, dep)
	return share
}

// masterShares returns every tree vertex's share of total masters, where a
// node's share is proportional to its weight but never above caps[n], the
// number of replicas it holds (a node can only master partitions it holds).
func (t *topology) masterShares(caps []int32, total int) []float64 {
	leaves := t.byDepth[depthLeaf]
	w := make([]float64, len(leaves))
	c := make([]float64, len(leaves))
	for i, v := range leaves {
		n := t.tn[v].node
		w[i] = t.weight[n]
		c[i] = float64(caps[n])
	}
	share := make([]float64, len(t.tn))
	for i, s := range waterfill(w, c, float64(total)) {
		share[leaves[i]] = s
	}
	t.sumUp(share, depthLeaf)
	return share
}

// ledger accumulates, per tree vertex, the shares and the counts of the
// tables already placed, so that the rounding of the next table can favour
// the domains and nodes that are below their share across the cluster.
type ledger struct {
	share []float64
	count []float64
	// tol is the cumulative deviation (count minus share) the rounding
	// tries to stay within: 1 when placing a new table, 2 when
	// rebalancing, where changing a rounding costs a replica move.
	tol float64
}

// Cumulative deviation targets of ledgers.
const (
	placeTolerance     = 1
	rebalanceTolerance = 2
)

func newLedger(t *topology, tol float64) *ledger {
	return &ledger{share: make([]float64, len(t.tn)), count: make([]float64, len(t.tn)), tol: tol}
}

// add records one more table's shares and counts.
func (l *ledger) add(share []float64, count []int32) {
	for v := range share {
		l.share[v] += share[v]
		l.count[v] += float64(count[v])
	}
}

// band classifies vertex v, whose share of the next table is share, by
// what rounding its share down would do to its cumulative deviation dev
// (count minus share over the recorded tables and this one): 0 when dev
// would reach -tol (it must round up), 2 when rounding up would take dev to
// tol or more (it should round down), 1 otherwise. A nil ledger records
// nothing and has tolerance 1.
func (l *ledger) band(v int32, share float64) (band int8, dev float64) {
	lo, _ := floorCeil(share)
	dev = float64(lo) - share
	tol := 1.0
	if l != nil {
		dev += l.count[v] - l.share[v]
		tol = l.tol
	}
	switch {
	case dev <= -tol+shareEps:
		return 0, dev
	case dev+1 >= tol-shareEps:
		return 2, dev
	}
	return 1, dev
}

// newRoundCand describes vertex c for the choice of who gets a ceiling.
func newRoundCand(c int32, share []float64, cur []int32, led *ledger, seed uint64) roundCand {
	rc := roundCand{v: c, keep: 1, tie: mix(seed, uint64(c))}
	rc.band, rc.dev = led.band(c, share[c])
	if _, hi := floorCeil(share[c]); cur != nil && cur[c] >= hi {
		rc.keep = 0
	}
	return rc
}

// cmpRoundCand orders candidates for a ceiling, the most deserving first.
func cmpRoundCand(a, b roundCand) int {
	if c := cmp.Compare(a.band, b.band); c != 0 {
		return c
	}
	if c := cmp.Compare(a.keep, b.keep); c != 0 {
		return c
	}
	if c := cmp.Compare(a.dev, b.dev); c != 0 {
		return c
	}
	if c := cmp.Compare(a.tie, b.tie); c != 0 {
		return c
	}
	return cmp.Compare(a.v, b.v)
}

// roundCand is a child vertex that may get the ceiling of its share.
type roundCand struct {
	v    int32
	band int8    // 0: must round up, 1: free, 2: should round down
	keep int8    // 0: already holds the ceiling (rounding up saves moves)
	dev  float64 // cumulative deviation if rounded down
	tie  uint64
}

// round turns shares into integer quotas: total is split among the nodes,
// each getting the floor or the ceiling of its share (see distribute for
// who gets the ceilings). When dep is above the leaves (a table's rule
// level) and p > 0, no domain at depth dep may get more than p — it holds
// at most one replica of each of the p partitions — so ceilings are moved
// out of any domain that would (the rule-level shares never exceed p, so
// there is always room elsewhere). Domains are not otherwise rounded:
// their counts are sums, balanced through their nodes, because holding
// them to within one of their share would cost replica moves that per-node
// balance does not need. The result holds every vertex's quota.
func (t *topology) round(share []float64, total int, dep, p int, cur []int32, led *ledger, seed uint64) []int32 {
	q := make([]int32, len(t.tn))
	leaves := t.byDepth[depthLeaf]
	distribute(leaves, int32(total), share, cur, led, seed, q, nil)
	t.sumUpCounts(q)
	if dep == depthLeaf || p <= 0 {
		return q
	}
	limit := int32(p)
	for _, u := range t.byDepth[dep] {
		for q[u] > limit {
			// Take the ceiling from the least deserving node of u and give
			// it to the most deserving node, among those at their floor,
			// of a domain with room.
			var down, up *roundCand
			t.leavesUnder(u, func(l int32) {
				if lo, hi := floorCeil(share[l]); hi > lo && q[l] == hi {
					c := newRoundCand(l, share, cur, led, seed)
					if down == nil || cmpRoundCand(c, *down) > 0 {
						down = &c
					}
				}
			})
			for _, l := range leaves {
				if lo, hi := floorCeil(share[l]); hi == lo || q[l] != lo || q[t.ancestor(l, dep)] >= limit {
					continue
				}
				c := newRoundCand(l, share, cur, led, seed)
				if up == nil || cmpRoundCand(c, *up) < 0 {
					up = &c
				}
			}
			if down == nil || up == nil {
				break // cannot happen with consistent shares
			}
			for v := down.v; v >= 0; v = t.tn[v].parent {
				q[v]--
			}
			for v := up.v; v >= 0; v = t.tn[v].parent {
				q[v]++
			}
		}
	}
	return q
}

// distribute splits quota among the vertices ch, giving each the floor or
// the ceiling of its share, and stores the result in q.
//
// Who gets the ceilings: first the vertices whose cumulative count over the
// tables recorded in led would otherwise fall a whole unit below their
// cumulative share, then those for which either choice keeps the
// cumulative deviation within one unit, last the others; within each group
// the ones that already hold the ceiling (cur, when not nil) to save moves,
// then the most behind. Ties are broken by a hash of seed and the vertex.
func distribute(ch []int32, quota int32, share []float64, cur []int32, led *ledger, seed uint64, q []int32, cand []roundCand) []roundCand {
	left := quota
	cand = cand[:0]
	for _, c := range ch {
		lo, hi := floorCeil(share[c])
		q[c] = lo
		left -= lo
		if hi > lo {
			cand = append(cand, newRoundCand(c, share, cur, led, seed))
		}
	}
	slices.SortFunc(cand, cmpRoundCand)
	for i := 0; i < len(cand) && left > 0; i++ {
		q[cand[i].v]++
		left--
	}
	// Defensive: with consistent shares left is now 0. Should float error
	// ever break that, keep the quotas summing up correctly.
	for i := 0; left > 0 && len(ch) > 0; i++ {
		q[ch[i%len(ch)]]++
		left--
	}
	for i := 0; left < 0; i++ {
		if c := ch[i%len(ch)]; q[c] > 0 {
			q[c]--
			left++
		}
	}
	return cand
}

// mix hashes b into a (splitmix64 finaliser). It gives deterministic,
// well-spread tie-breaks.
func mix(a, b uint64) uint64 {
	x := a ^ (b+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// tableSeed derives the tie-break seed of a table from its ID.
func tableSeed(id placement.TableID) uint64 { return mix(0x7a657070656c696e, uint64(id)) }
