package meta

import (
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// detector is the leader's in-memory failure detector: the last heartbeat
// of every node and the replica progress it reported. It is reset whenever
// this member starts a new term as leader, so a new leader starts from
// nothing and waits a full DownTimeout before declaring anything down.
type detector struct {
	mu    sync.Mutex
	term  uint64
	since time.Time
	nodes map[placement.NodeID]*nodeReport
	// condemned are the nodes a proposal is declaring down right now:
	// their heartbeats are recorded but not acknowledged, so none of them
	// renews a master lease across the decision.
	condemned map[placement.NodeID]bool
}

type nodeReport struct {
	last     time.Time
	epoch    placement.Epoch
	replicas map[replicaKey]wire.ReplicaStatus
}

type replicaKey struct {
	table placement.TableID
	part  placement.PartitionID
}

func (d *detector) init() {
	d.nodes = make(map[placement.NodeID]*nodeReport)
	d.condemned = make(map[placement.NodeID]bool)
}

// enterTerm resets the detector when term is a new leadership term.
func (d *detector) enterTerm(term uint64, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.term != term {
		d.term = term
		d.since = now
		clear(d.nodes)
	}
}

// termStart returns when the detector started the term it is in: its
// grace period before declaring a node down runs from then.
func (d *detector) termStart() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.since
}

// observe records a heartbeat received in term. It reports whether the
// heartbeat may be acknowledged: not while the node is being declared down.
func (d *detector) observe(term uint64, req *wire.HeartbeatRequest, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.term != term {
		d.term = term
		d.since = now
		clear(d.nodes)
	}
	r := &nodeReport{last: now, epoch: req.Epoch, replicas: make(map[replicaKey]wire.ReplicaStatus, len(req.Replicas))}
	for _, rs := range req.Replicas {
		r.replicas[replicaKey{rs.Table, rs.Partition}] = rs
	}
	d.nodes[req.Node] = r
	return !d.condemned[req.Node]
}

// condemn marks nodes as being declared down, provided every one of them
// has still been silent for longer than downTimeout at now (a heartbeat may
// have arrived since the decision was taken); otherwise it marks nothing
// and reports false. The caller absolves them once its proposal is over.
func (d *detector) condemn(nodes []placement.NodeID, now time.Time, downTimeout time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range nodes {
		if r := d.nodes[n]; r != nil && now.Sub(r.last) <= downTimeout {
			return false
		}
	}
	for _, n := range nodes {
		d.condemned[n] = true
	}
	return true
}

// absolve ends what condemn started.
func (d *detector) absolve(nodes []placement.NodeID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range nodes {
		delete(d.condemned, n)
	}
}

// restartGrace starts the grace period over: the leader could not confirm
// its leadership, so heartbeats may have gone unacknowledged meanwhile and
// the silence it sees is its own.
func (d *detector) restartGrace(now time.Time) {
	d.mu.Lock()
	d.since = now
	d.mu.Unlock()
}

// forget drops what the detector knows of node (its reports describe a
// store that no longer exists).
func (d *detector) forget(node placement.NodeID) {
	d.mu.Lock()
	delete(d.nodes, node)
	d.mu.Unlock()
}

// lostStore returns the failover of every partition mastered by node, whose
// store is gone: each goes to its best complete up slave, or is left
// without a master when there is none.
func lostStore(m *placement.Map, node placement.NodeID, v view) []partitionChange {
	eff := make(map[placement.NodeID]placement.NodeState, len(m.Nodes))
	for _, n := range m.Nodes {
		eff[n.ID] = n.State
	}
	eff[node] = placement.NodeDown
	var out []partitionChange
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.Master != node {
				continue
			}
			if np, changed := failover(&t, p, eff, v); changed {
				out = append(out, partitionChange{Table: t.ID, Partition: p.ID, New: np})
			}
		}
	}
	return out
}

// view is a consistent copy of the detector's state.
type view struct {
	term  uint64
	since time.Time
	nodes map[placement.NodeID]*nodeReport // reports are never mutated after insertion
}

func (d *detector) view() view {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := view{term: d.term, since: d.since, nodes: make(map[placement.NodeID]*nodeReport, len(d.nodes))}
	for k, r := range d.nodes {
		v.nodes[k] = r
	}
	return v
}

// changes computes what the leader should propose now: node state changes
// (down after DownTimeout of silence, but never before the leader has led
// for DownTimeout; up again once heartbeating) and the failover of every
// partition whose master is down or missing. The result is empty when
// nothing needs to change. deaf reports that every node up in the map has
// been silent for DownTimeout: then nothing is declared down (the silence
// is more likely the leader's than every node's, and no replica could be
// promoted anyway) and the result is empty.
func changes(m *placement.Map, v view, now time.Time, downTimeout time.Duration) (_ []nodeStateChange, _ []partitionChange, deaf bool) {
	var states []nodeStateChange
	eff := make(map[placement.NodeID]placement.NodeState, len(m.Nodes))
	graceOver := now.Sub(v.since) >= downTimeout
	for _, n := range m.Nodes {
		st := n.State
		r := v.nodes[n.ID]
		switch {
		case n.State != placement.NodeDown && graceOver && (r == nil || now.Sub(r.last) > downTimeout):
			st = placement.NodeDown
		case n.State == placement.NodeDown && r != nil && now.Sub(r.last) <= downTimeout:
			st = placement.NodeUp
		}
		if st != n.State {
			states = append(states, nodeStateChange{Node: n.ID, State: st, Since: now.UnixMilli()})
		}
		eff[n.ID] = st
	}
	up, silent := 0, 0
	for _, n := range m.Nodes {
		if n.State != placement.NodeDown {
			up++
			if eff[n.ID] == placement.NodeDown {
				silent++
			}
		}
	}
	if up > 0 && silent == up {
		return nil, nil, true
	}

	if !graceOver {
		// A new leader (or one that could not confirm its leadership)
		// promotes nobody until it has heard from everyone who is alive:
		// the first replica to report is not the best one.
		return states, nil, false
	}
	var parts []partitionChange
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			switch {
			case p.Master == "":
				// Recover a masterless partition only once every replica
				// has reported or is down, so the best copy wins.
				unheard := func(n placement.NodeID) bool { return eff[n] != placement.NodeDown && v.nodes[n] == nil }
				if slices.ContainsFunc(p.Slaves, unheard) {
					continue
				}
			case eff[p.Master] == placement.NodeDown:
			case masterIncomplete(t.ID, p, v):
				// A master without a complete copy serves nothing; a
				// complete slave should take over.
			default:
				// A healthy master: only its in-sync set may need to lose
				// slaves that are down.
				if t.Mode == placement.ModeSync {
					if in, changed := shrinkInSync(p, eff); changed {
						np := p.Clone()
						np.InSync = in
						parts = append(parts, partitionChange{Table: t.ID, Partition: p.ID, New: np})
					}
				}
				continue
			}
			np, changed := failover(&t, p, eff, v)
			if changed && np.Master != p.Master {
				parts = append(parts, partitionChange{Table: t.ID, Partition: p.ID, New: np})
			}
		}
	}
	return states, parts, false
}

// masterIncomplete reports whether p's master says its copy is incomplete.
func masterIncomplete(table placement.TableID, p placement.Partition, v view) bool {
	r := v.nodes[p.Master]
	if r == nil {
		return false
	}
	rs, ok := r.replicas[replicaKey{table, p.ID}]
	return ok && rs.Incomplete
}

// failover picks a new master for a partition whose master is down or
// missing: the up, complete slave with the highest reported (gen, seq),
// ties broken by node ID — for a sync-mode table only among the members of
// its in-sync set, since only they hold every acknowledged write. Without
// one the partition is left without a master (unavailable) and the old
// master stays among the replicas, so it can rejoin. The new in-sync set
// is the old one without the members that are down (the old master among
// them).
func failover(t *placement.Table, p placement.Partition, eff map[placement.NodeID]placement.NodeState, v view) (placement.Partition, bool) {
	sync := t.Mode == placement.ModeSync
	// The longest copy reported by any replica: an empty replica is never
	// promoted over one that holds records.
	var longest uint64
	for _, n := range p.Replicas() {
		if r := v.nodes[n]; r != nil {
			if rs, ok := r.replicas[replicaKey{t.ID, p.ID}]; ok {
				longest = max(longest, rs.Seq)
			}
		}
	}
	var best placement.NodeID
	var bestGen, bestSeq uint64
	for _, n := range p.Slaves {
		if eff[n] == placement.NodeDown || (sync && !slices.Contains(p.InSync, n)) {
			continue
		}
		r := v.nodes[n]
		if r == nil {
			continue
		}
		rs, ok := r.replicas[replicaKey{t.ID, p.ID}]
		if !ok || rs.Incomplete || (rs.Seq == 0 && longest > 0 && !sync) {
			continue
		}
		if best == "" || rs.Gen > bestGen || (rs.Gen == bestGen && rs.Seq > bestSeq) ||
			(rs.Gen == bestGen && rs.Seq == bestSeq && n < best) {
			best, bestGen, bestSeq = n, rs.Gen, rs.Seq
		}
	}
	np := p.Clone()
	switch {
	case best != "":
		np.Slaves = slices.DeleteFunc(np.Slaves, func(n placement.NodeID) bool { return n == best })
		if p.Master != "" {
			np.Slaves = append(np.Slaves, p.Master)
		}
		np.Master = best
		np.Gen = p.Gen + 1
		np.State = placement.PartitionActive
		if sync {
			np.InSync = slices.DeleteFunc(slices.Clone(p.InSync), func(n placement.NodeID) bool {
				return n == p.Master || eff[n] == placement.NodeDown
			})
		} else {
			np.InSync = nil
		}
		return np, true
	case p.Master != "":
		np.Slaves = append(np.Slaves, p.Master)
		np.Master = ""
		return np, true
	}
	return p, false
}

// shrinkInSync returns p's in-sync set without the slaves that are down,
// and whether that removed any. The master waits for every in-sync slave's
// acknowledgement before it acknowledges a write, so it cannot acknowledge
// anything a removed slave lacks until it has learnt of the removal.
func shrinkInSync(p placement.Partition, eff map[placement.NodeID]placement.NodeState) ([]placement.NodeID, bool) {
	out := slices.DeleteFunc(slices.Clone(p.InSync), func(n placement.NodeID) bool {
		return n != p.Master && eff[n] == placement.NodeDown
	})
	return out, len(out) != len(p.InSync)
}
