package planner

import "github.com/zeppelin-kv/zeppelin/placement"

// fill lays out p partitions of r replicas from scratch so that every
// eligible node n masters exactly mquota[leaf(n)] partitions and holds
// exactly quota[leaf(n)] replicas, with the replicas of each partition in
// distinct domains at level. It returns the replicas of each partition,
// master first. mquota must not exceed quota at any leaf, and quota must
// not exceed p in any domain of the rule level (round guarantees both).
//
// Masters are dealt first, to the node furthest from its master quota
// (relative to quota) each time. Slaves are then dealt partition by
// partition. A domain u of the rule level can take at most one replica of
// each remaining partition not mastered in u, so its remaining slave need
// must stay at most the number of those partitions; a domain where the two
// are equal is critical and is always chosen. Choosing every critical
// domain keeps that invariant, and there are never more critical domains
// than slaves to place (counting shows that when there are r, every
// remaining partition is mastered in one of them, the current one
// included, which leaves r-1), so the layout always completes — the
// Gale–Ryser argument for 0/1 matrices with forbidden cells of this shape.
// Beyond the critical ones, a partition takes the domains that spread it
// best across the levels above the rule (fewest replicas already in the
// same zone, then rack, then host), then the most urgent ones (least
// slack), then a hash. That spread is a preference, not a guarantee: the
// last partitions can be left with critical domains in one rack. Inside a chosen domain the node furthest from its slave quota
// (relative to quota) gets the replica.
func (t *topology) fill(level placement.Domain, quota, mquota []int32, p, r int, seed uint64) [][]int32 {
	dep := depthOf(level)
	units := t.byDepth[dep]
	nu := len(units)
	unitOf := make([]int32, len(t.tn)) // leaf vertex → unit index
	for i, u := range units {
		t.leavesUnder(u, func(l int32) { unitOf[l] = int32(i) })
	}

	// Masters.
	mleft := make([]int32, len(t.tn))
	mh := leafHeap{seed: mix(seed, 1), left: mleft, quota: mquota}
	for _, l := range t.byDepth[depthLeaf] {
		if mquota[l] > 0 {
			mleft[l] = mquota[l]
			mh.items = append(mh.items, l)
		}
	}
	mh.init()
	masterLeaf := make([]int32, p)
	mastersIn := make([]int32, nu) // masters per unit
	for pi := range masterLeaf {
		l := mh.pop()
		masterLeaf[pi] = l
		mastersIn[unitOf[l]]++
	}

	// Remaining slave need per domain, bucketed by value so that the
	// domains that need most are found without scanning them all; and by
	// g = slack + index of the current partition, where slack is the number
	// of remaining partitions the domain may still take minus its need, so
	// that the critical domains (slack 0) are those with g equal to the
	// current index.
	need := make([]int32, nu)
	npos := make([]int32, nu)
	nb := make([][]int32, p+1)
	g := make([]int32, nu)
	gpos := make([]int32, nu)
	gb := make([][]int32, 2*p+2)
	rmax := int32(0)
	var active []int32 // domains with need left
	apos := make([]int32, nu)
	for i, u := range units {
		need[i] = quota[u] - mastersIn[i]
		g[i] = int32(p) - quota[u]
		if need[i] > 0 {
			apos[i] = int32(len(active))
			active = append(active, int32(i))
			npos[i] = int32(len(nb[need[i]]))
			nb[need[i]] = append(nb[need[i]], int32(i))
			rmax = max(rmax, need[i])
			gpos[i] = int32(len(gb[g[i]]))
			gb[g[i]] = append(gb[g[i]], int32(i))
		}
	}
	unbucket := func(b [][]int32, pos []int32, key, i int32) {
		s := b[key]
		last := s[len(s)-1]
		s[pos[i]] = last
		pos[last] = pos[i]
		b[key] = s[:len(s)-1]
	}
	bucket := func(b [][]int32, pos []int32, key, i int32) {
		pos[i] = int32(len(b[key]))
		b[key] = append(b[key], i)
	}
	// bump records that unit i took a slave (took) or the current
	// partition's master: its slack is unchanged while the index moves on.
	bump := func(i int32, took bool) {
		if need[i] == 0 {
			return
		}
		unbucket(gb, gpos, g[i], i)
		g[i]++
		if took {
			unbucket(nb, npos, need[i], i)
			need[i]--
			if need[i] == 0 {
				last := active[len(active)-1]
				active[apos[i]] = last
				apos[last] = apos[i]
				active = active[:len(active)-1]
				return
			}
			bucket(nb, npos, need[i], i)
		}
		bucket(gb, gpos, g[i], i)
	}

	// Ancestors of each domain above the rule level, for the spread key.
	uanc := make([][depthLeaf]int32, nu)
	for i, u := range units {
		v := u
		for d := dep; d > depthRoot; d-- {
			if d < depthLeaf {
				uanc[i][d] = v
			}
			v = t.tn[v].parent
		}
	}

	// Nodes of each domain, in a heap ordered by remaining slave
	// need/quota.
	left := make([]int32, len(t.tn))
	heaps := make([]leafHeap, nu)
	for i, u := range units {
		h := &heaps[i]
		h.seed, h.left, h.quota = mix(seed, 2), left, quota
		t.leavesUnder(u, func(l int32) {
			if quota[l] > mquota[l] {
				left[l] = quota[l] - mquota[l]
				h.items = append(h.items, l)
			}
		})
		h.init()
	}

	out := make([][]int32, p)
	flat := make([]int32, 0, p*r)
	const extra = 8
	cands := make([]int32, 0, 4*r+extra)
	chosen := make([]int32, 0, r) // units, master's first
	base := int64(r + 1)
	for pi := 0; pi < p; pi++ {
		mu := unitOf[masterLeaf[pi]]
		chosen = append(chosen[:0], mu)
		for _, c := range gb[pi] {
			if c != mu {
				chosen = append(chosen, c)
			}
		}
		for rmax > 0 && len(nb[rmax]) == 0 {
			rmax--
		}
		// Candidates: all domains with need left when they are few,
		// otherwise the ones that need most, sampled with a stride so that
		// they come from all over the tree.
		cands = cands[:0]
		want := 4*r + extra
		ps := mix(seed, uint64(pi))
		rv := rmax
		if len(active) <= 2*want {
			cands = append(cands, active...)
			rv = 0
		}
		for steps := 0; rv >= 1 && len(cands) < want; rv, steps = rv-1, steps+1 {
			if steps == 4*want {
				// Needs are sparse: sample the active domains instead.
				cands = cands[:0]
				stride := max(1, len(active)/want)
				off := int(mix(ps, 0) % uint64(len(active)))
				for j := 0; j < want && j*stride < len(active); j++ {
					cands = append(cands, active[(off+j*stride)%len(active)])
				}
				break
			}
			b := nb[rv]
			k := want - len(cands)
			if len(b) <= k {
				cands = append(cands, b...)
				continue
			}
			stride := len(b) / k
			off := int(mix(ps, uint64(rv)) % uint64(len(b)))
			for j := 0; j < k; j++ {
				cands = append(cands, b[(off+j*stride)%len(b)])
			}
		}
		for len(chosen) < r {
			best, bestScore, bestTie := -1, int64(0), uint64(0)
			for ci, c := range cands {
				if c < 0 || c == mu || g[c] == int32(pi) {
					continue // taken, the master's, or already chosen
				}
				score := int64(0)
				for d := depthZone; d < dep; d++ {
					n := int64(0)
					for _, o := range chosen {
						if uanc[o][d] == uanc[c][d] {
							n++
						}
					}
					score = score*base + n
				}
				// Lower spread score first, then less slack, then hash.
				score = score*int64(2*p+2) + int64(g[c]-int32(pi))
				tie := mix(ps, uint64(c))
				if best < 0 || score < bestScore || (score == bestScore && tie < bestTie) {
					best, bestScore, bestTie = ci, score, tie
				}
			}
			if best < 0 {
				break // cannot happen: r-1 domains with need left always exist
			}
			chosen = append(chosen, cands[best])
			cands[best] = -1
		}
		start := len(flat)
		flat = append(flat, t.tn[masterLeaf[pi]].node)
		bump(mu, false)
		for _, c := range chosen[1:] {
			flat = append(flat, t.tn[heaps[c].pop()].node)
			bump(c, true)
		}
		out[pi] = flat[start:len(flat):len(flat)]
	}
	return out
}

// leavesUnder calls fn for every leaf below vertex v, in tree order.
func (t *topology) leavesUnder(v int32, fn func(leaf int32)) {
	if t.tn[v].depth == depthLeaf {
		fn(v)
		return
	}
	for _, c := range t.tn[v].children {
		t.leavesUnder(c, fn)
	}
}

// leavesUnderExcept calls fn for every leaf below v but not below skip (-1
// for none), in tree order, until fn returns false.
func (t *topology) leavesUnderExcept(v, skip int32, fn func(leaf int32) bool) bool {
	if v == skip {
		return true
	}
	if t.tn[v].depth == depthLeaf {
		return fn(v)
	}
	for _, c := range t.tn[v].children {
		if !t.leavesUnderExcept(c, skip, fn) {
			return false
		}
	}
	return true
}

// leafHeap orders leaves by remaining need relative to quota, largest
// first, ties in a pseudo-random order that changes as leaves progress.
type leafHeap struct {
	seed  uint64
	items []int32
	left  []int32 // remaining need per leaf vertex (shared)
	quota []int32 // quota per vertex (shared)
}

func (h *leafHeap) less(a, b int32) bool {
	x := int64(h.left[a]) * int64(h.quota[b])
	y := int64(h.left[b]) * int64(h.quota[a])
	if x != y {
		return x > y
	}
	// Equal progress (common with equal weights): order by a hash of the
	// leaf and its progress, so that ties fall differently every round and
	// the partitions a node shares with each other node are spread out.
	ta := mix(h.seed, uint64(a)<<32|uint64(h.left[a]))
	tb := mix(h.seed, uint64(b)<<32|uint64(h.left[b]))
	if ta != tb {
		return ta < tb
	}
	return a < b
}

func (h *leafHeap) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *leafHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h.items) {
			return
		}
		j := l
		if r := l + 1; r < len(h.items) && h.less(h.items[r], h.items[l]) {
			j = r
		}
		if !h.less(h.items[j], h.items[i]) {
			return
		}
		h.items[i], h.items[j] = h.items[j], h.items[i]
		i = j
	}
}

// pop takes one unit of need from the top leaf and returns it.
func (h *leafHeap) pop() int32 {
	top := h.items[0]
	h.left[top]--
	if h.left[top] == 0 {
		last := len(h.items) - 1
		h.items[0] = h.items[last]
		h.items = h.items[:last]
	}
	if len(h.items) > 0 {
		h.down(0)
	}
	return top
}
