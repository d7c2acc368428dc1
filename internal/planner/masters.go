package planner

// masterSet chooses, for each partition of one table, a master among its
// eligible replicas so that every node masters its target count, moving as
// few masters as possible.
type masterSet struct {
	t      *topology
	seed   uint64
	reps   [][]int32 // per partition: eligible replicas (node indices)
	master []int32   // per partition: master node index, or -1
	count  []int32   // per node: partitions mastered
	owned  [][]int32 // per node: partitions mastered
	held   [][]int32 // per node: partitions held
	tgt    []int32   // per node: target count
	lo, hi []int32   // per node: floor and ceiling of its share
	band   []int8    // per node: rounding band (see ledger.band)

	stamp []int32 // BFS scratch, per node
	gen   int32
	from  []int32
	via   []int32
}

// newMasterSet starts from master (copied; -1 where a partition has none).
// A master on an ineligible node is kept until balance moves it away.
func newMasterSet(t *topology, reps [][]int32, master []int32, seed uint64) *masterSet {
	n := len(t.nodes)
	ms := &masterSet{
		t: t, seed: seed, reps: reps, master: append([]int32(nil), master...),
		count: make([]int32, n), owned: make([][]int32, n), held: make([][]int32, n),
		tgt: make([]int32, n), lo: make([]int32, n), hi: make([]int32, n), band: make([]int8, n),
		stamp: make([]int32, n), from: make([]int32, n), via: make([]int32, n),
	}
	for p, rs := range reps {
		for _, x := range rs {
			ms.held[x] = append(ms.held[x], int32(p))
		}
		if m := ms.master[p]; m >= 0 {
			ms.count[m]++
			ms.owned[m] = append(ms.owned[m], int32(p))
		}
	}
	return ms
}

// mastered returns the number of partitions that can have an eligible
// master: those with at least one eligible replica.
func (ms *masterSet) mastered() int {
	n := 0
	for _, rs := range ms.reps {
		if len(rs) > 0 {
			n++
		}
	}
	return n
}

// targets computes the master shares and target counts. cur selects the
// move-saving rounding (prefer the nodes that already master their
// ceiling).
func (ms *masterSet) targets(led *ledger, cur bool) (share []float64, quota []int32) {
	t := ms.t
	caps := make([]int32, len(t.nodes))
	for n := range caps {
		caps[n] = int32(len(ms.held[n]))
	}
	total := ms.mastered()
	share = t.masterShares(caps, total)
	var c []int32
	if cur {
		c = t.treeCounts(ms.count)
	}
	quota = t.round(share, total, depthLeaf, 0, c, led, ms.seed^0x6d6173746572)
	for _, n := range t.eligible {
		l := t.leafOf(n)
		ms.tgt[n] = quota[l]
		ms.lo[n], ms.hi[n] = floorCeil(share[l])
		ms.band[n], _ = led.band(l, share[l])
	}
	return share, quota
}

// assignMissing gives a master to every partition without one: the
// replica furthest below its target when one is below it; otherwise a
// replica whose target may grow by one, taking that unit of target from a
// node below its target (no switchover is added); otherwise the replica
// nearest its target, for balance to fix.
func (ms *masterSet) assignMissing() {
	var unplaced []int
	for p, rs := range ms.reps {
		if ms.master[p] >= 0 || len(rs) == 0 {
			continue
		}
		if best, gap := ms.mostRoom(p); gap > 0 {
			ms.setMaster(p, best)
		} else {
			unplaced = append(unplaced, p)
		}
	}
	for _, p := range unplaced {
		if best, gap := ms.mostRoom(p); gap > 0 {
			ms.setMaster(p, best)
			continue
		}
		if ms.tradeAssign(p) {
			continue
		}
		best, _ := ms.mostRoom(p)
		ms.setMaster(p, best)
	}
}

// mostRoom returns p's replica furthest below its target, and by how much.
func (ms *masterSet) mostRoom(p int) (best, gap int32) {
	best = -1
	var bestTie uint64
	for _, x := range ms.reps[p] {
		g := ms.tgt[x] - ms.count[x]
		tie := mix(ms.seed, uint64(p)<<20^uint64(x))
		if best < 0 || g > gap || (g == gap && tie < bestTie) {
			best, gap, bestTie = x, g, tie
		}
	}
	return best, gap
}

// tradeAssign makes a replica y of p its master, raising y's target by one
// and lowering that of a node below its target, when both stay between the
// floor and the ceiling of their share and within their rounding bands.
func (ms *masterSet) tradeAssign(p int) bool {
	for _, y := range ms.reps[p] {
		if ms.tgt[y] >= ms.hi[y] || ms.band[y] == 2 {
			continue
		}
		for _, z := range ms.t.eligible {
			if ms.count[z] < ms.tgt[z] && ms.tgt[z] > ms.lo[z] && ms.band[z] != 0 {
				ms.tgt[y]++
				ms.tgt[z]--
				ms.setMaster(p, y)
				return true
			}
		}
	}
	return false
}

func (ms *masterSet) setMaster(p int, x int32) {
	ms.master[p] = x
	ms.count[x]++
	ms.owned[x] = append(ms.owned[x], int32(p))
}

// balance moves masters until every node masters its target count, or,
// where the replica layout makes that impossible, between the floor and the
// ceiling of its share when possible. A node over target hands a partition
// straight to a node under target when they share one; otherwise it trades
// targets with a node that can (both staying between floor and ceiling);
// only then does it use a chain of switchovers, the shortest one.
func (ms *masterSet) balance() {
	n := int32(len(ms.t.nodes))
	room := func(y int32) int32 { return ms.tgt[y] - ms.count[y] }
	for depth := 1; depth <= 2; depth++ {
		for progress := true; progress; {
			progress = false
			for a := int32(0); a < n; a++ {
				for ms.count[a] > ms.tgt[a] {
					if !ms.push(a, room, 1) && !ms.trade(a) && (depth == 1 || !ms.push(a, room, n)) {
						break
					}
					progress = true
				}
			}
		}
	}
	for a := int32(0); a < n; a++ {
		for ms.count[a] > ms.hi[a] && ms.push(a, func(y int32) int32 { return ms.hi[y] - ms.count[y] }, n) {
		}
	}
	for b := int32(0); b < n; b++ {
		for ms.count[b] < ms.lo[b] && ms.pull(b, func(x int32) int32 { return ms.count[x] - ms.lo[x] }) {
		}
	}
}

// trade relieves a, over target but allowed one more than its target, by
// lowering the target of a node z that masters a partition shared with a
// node under target and may master one less, and switching that partition
// to the node under target: one switchover instead of a chain. Neither
// target may leave the bounds of its share, nor go against the rounding
// band that keeps the cluster-wide count balanced.
func (ms *masterSet) trade(a int32) bool {
	if !ms.t.up[a] || ms.tgt[a] >= ms.hi[a] || ms.band[a] == 2 {
		return false
	}
	for _, b := range ms.t.eligible {
		if ms.count[b] >= ms.tgt[b] {
			continue
		}
		for _, p := range ms.held[b] {
			z := ms.master[p]
			if z < 0 || z == a || z == b || !ms.t.up[z] || ms.tgt[z] <= ms.lo[z] || ms.band[z] == 0 || ms.count[z] > ms.tgt[z] {
				continue
			}
			ms.tgt[a]++
			ms.tgt[z]--
			ms.switchMaster(p, z, b)
			return true
		}
	}
	return false
}

// push hands one mastership away from a, through at most maxDepth
// switchovers, to the nearest node with room(y) > 0, the one with most room
// among the nearest. It reports whether it found one.
func (ms *masterSet) push(a int32, room func(y int32) int32, maxDepth int32) bool {
	ms.gen++
	ms.stamp[a] = ms.gen
	frontier := []int32{a}
	var next []int32
	for depth := int32(0); len(frontier) > 0 && depth < maxDepth; depth++ {
		best, bestRoom := int32(-1), int32(0)
		next = next[:0]
		for _, x := range frontier {
			for _, p := range ms.owned[x] {
				for _, y := range ms.reps[p] {
					if y == x || ms.stamp[y] == ms.gen {
						continue
					}
					ms.stamp[y] = ms.gen
					ms.from[y], ms.via[y] = x, p
					if r := room(y); r > 0 {
						if best < 0 || r > bestRoom || (r == bestRoom && y < best) {
							best, bestRoom = y, r
						}
					} else {
						next = append(next, y)
					}
				}
			}
		}
		if best >= 0 {
			for y := best; y != a; {
				x := ms.from[y]
				ms.switchMaster(ms.via[y], x, y)
				y = x
			}
			return true
		}
		frontier, next = next, frontier
	}
	return false
}

// pull brings one mastership to b from the nearest node with spare(x) > 0,
// the one with most to spare among the nearest. It reports whether it found
// one.
func (ms *masterSet) pull(b int32, spare func(x int32) int32) bool {
	ms.gen++
	ms.stamp[b] = ms.gen
	frontier := []int32{b}
	var next []int32
	for len(frontier) > 0 {
		best, bestSpare := int32(-1), int32(0)
		next = next[:0]
		for _, z := range frontier {
			for _, p := range ms.held[z] {
				x := ms.master[p]
				if x < 0 || x == z || ms.stamp[x] == ms.gen {
					continue
				}
				ms.stamp[x] = ms.gen
				ms.from[x], ms.via[x] = z, p
				if s := spare(x); s > 0 {
					if best < 0 || s > bestSpare || (s == bestSpare && x < best) {
						best, bestSpare = x, s
					}
				} else if ms.t.up[x] {
					next = append(next, x)
				}
			}
		}
		if best >= 0 {
			for x := best; x != b; {
				z := ms.from[x]
				ms.switchMaster(ms.via[x], x, z)
				x = z
			}
			return true
		}
		frontier, next = next, frontier
	}
	return false
}

// switchMaster makes y the master of p instead of x.
func (ms *masterSet) switchMaster(p, x, y int32) {
	ms.master[p] = y
	ms.count[x]--
	ms.count[y]++
	o := ms.owned[x]
	for i, q := range o {
		if q == p {
			o[i] = o[len(o)-1]
			ms.owned[x] = o[:len(o)-1]
			break
		}
	}
	ms.owned[y] = append(ms.owned[y], p)
}

// lowerBound returns the fewest master changes that any assignment with
// every eligible node between the floor and the ceiling of its share needs,
// given the masters in initial (a partition whose initial master is -1 or
// not among its eligible replicas must change).
func (ms *masterSet) lowerBound(initial []int32) int {
	kept := make([]int32, len(ms.t.nodes))
	forced := 0
	for p, m := range initial {
		if len(ms.reps[p]) == 0 {
			continue
		}
		ok := false
		if m >= 0 && ms.t.up[m] {
			for _, x := range ms.reps[p] {
				if x == m {
					ok = true
					break
				}
			}
		}
		if ok {
			kept[m]++
		} else {
			forced++
		}
	}
	over, under := 0, 0
	for _, n := range ms.t.eligible {
		over += int(max(0, kept[n]-ms.hi[n]))
		under += int(max(0, ms.lo[n]-kept[n]))
	}
	return max(forced+over, under)
}
