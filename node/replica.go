package node

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// roleInfo is an immutable description of a replica's role under one map.
type roleInfo struct {
	role       wire.Role
	mapGen     uint64
	master     placement.NodeID
	masterAddr string
	slaves     []placement.NodeID
	learners   []placement.NodeID
	stuck      bool
	fenced     bool
	epoch      placement.Epoch
	// rateBytes bounds a learner's full-sync copy (bytes/s, 0: none), as
	// its migration asks.
	rateBytes int64
	// sync marks a sync-mode table; inSync is the partition's in-sync set
	// and minInSync the table's minimum.
	sync      bool
	inSync    []placement.NodeID
	minInSync int
	// replication is the table's replication factor.
	replication int
}

// replica is the node's handle on one partition replica.
type replica struct {
	s    *Server
	key  rkey
	part *partition.Replica

	info atomic.Pointer[roleInfo]

	// Slave side.
	state      atomic.Uint32 // wire.ReplState
	lagRecords atomic.Uint64
	lagMs      atomic.Int64
	fullSyncs  atomic.Uint64
	// loadedBytes counts what the current (or last) full sync loaded.
	loadedBytes atomic.Int64

	mu          sync.Mutex
	slaveCancel context.CancelFunc
	slaveDone   chan struct{}
	slaveOf     placement.NodeID // master the running loop follows
	slaveGen    uint64           // map generation the loop runs under
	// Master side: what each slave has acknowledged.
	progress map[placement.NodeID]*slaveProgress
	// ackCh is closed and replaced whenever an acknowledgement moves on or
	// the role changes; joining are the slaves a sync master waits for
	// before they are in the in-sync set (since when); shrinking marks a
	// removal request in flight (insync.go).
	ackCh     chan struct{}
	joining   map[placement.NodeID]time.Time
	shrinking bool
}

type slaveProgress struct {
	acked     uint64
	lastFetch time.Time
	// lagSince is when the slave first fell behind the master's last seq
	// without catching up since (zero while caught up).
	lagSince time.Time
}

func newReplica(s *Server, k rkey, p *partition.Replica) *replica {
	r := &replica{s: s, key: k, part: p, progress: make(map[placement.NodeID]*slaveProgress),
		ackCh: make(chan struct{}), joining: make(map[placement.NodeID]time.Time)}
	r.info.Store(&roleInfo{})
	return r
}

// update applies the replica's assignment in map m. A slave loop it
// starts runs until ctx ends or the role changes.
func (r *replica) update(ctx context.Context, t *placement.Table, p *placement.Partition, m *placement.Map) {
	self := r.s.cfg.NodeID
	info := &roleInfo{
		mapGen: p.Gen, master: p.Master, masterAddr: m.NodeAddr(p.Master),
		slaves: slices.Clone(p.Slaves), learners: slices.Clone(p.Learners),
		stuck:  p.State == placement.PartitionStuck,
		fenced: t.Fenced || t.Mode == placement.ModeSync, epoch: m.Epoch,
		sync: t.Mode == placement.ModeSync, inSync: slices.Clone(p.InSync), minInSync: t.MinInSync,
		replication: t.Replication,
	}
	defer r.settleInSync(info)
	old := r.info.Load()
	switch {
	case p.Master == self && info.stuck:
		// Held for a handover: stop taking writes and let the group in
		// progress commit, so the seq reported next is final.
		info.role = wire.RoleMaster
		r.stopSlave()
		r.part.Demote()
		r.state.Store(uint32(wire.ReplIdle))
	case p.Master == self:
		info.role = wire.RoleMaster
		r.stopSlave()
		if !r.part.State().Incomplete {
			if err := r.part.Promote(p.Gen); err != nil {
				r.s.log.Error("node: cannot become master", "table", t.Name, "partition", p.ID, "gen", p.Gen, "err", err)
				info.role = wire.RoleNone
			}
		}
		r.state.Store(uint32(wire.ReplIdle))
		r.lagRecords.Store(0)
		r.lagMs.Store(0)
	default:
		// A learner replicates as a slave does; it only serves nothing.
		info.role = wire.RoleSlave
		if p.IsLearner(self) {
			info.role = wire.RoleLearner
			if mg := m.Moving(t.ID, p.ID); mg != nil && mg.To == self {
				info.rateBytes = mg.RateBytes
			}
		}
		if old.role == wire.RoleMaster {
			r.part.Demote()
		}
		// The replication loop reads the new role (a learner's copy rate).
		r.info.Store(info)
		r.startSlave(ctx, p.Master, p.Gen)
		return
	}
	r.info.Store(info)
}

// startSlave makes sure a replication loop follows master under map
// generation gen, restarting it when either changed. The loop runs until
// ctx ends or stopSlave; it is not started once ctx has ended or the node
// is closing.
func (r *replica) startSlave(ctx context.Context, master placement.NodeID, gen uint64) {
	r.mu.Lock()
	if r.slaveCancel != nil && r.slaveOf == master && r.slaveGen == gen {
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.stopSlave()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil || r.s.closing() {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.state.Store(uint32(wire.ReplConnecting))
	if !r.s.group.Go(func() {
		defer close(done)
		r.follow(ctx, master, gen)
	}) {
		cancel()
		return
	}
	r.slaveCancel, r.slaveDone, r.slaveOf, r.slaveGen = cancel, done, master, gen
}

// stopSlave stops the replication loop, if any, and waits for it.
func (r *replica) stopSlave() {
	r.mu.Lock()
	cancel, done := r.slaveCancel, r.slaveDone
	r.slaveCancel, r.slaveDone, r.slaveOf, r.slaveGen = nil, nil, "", 0
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// noteFetch records a slave's acknowledgement (master side).
func (r *replica) noteFetch(n placement.NodeID, acked uint64, now time.Time) {
	last := r.part.State().Seq
	r.mu.Lock()
	sp := r.progress[n]
	if sp == nil {
		sp = &slaveProgress{}
		r.progress[n] = sp
	}
	moved := sp.acked != acked
	sp.acked = acked
	sp.lastFetch = now
	switch {
	case acked >= last:
		sp.lagSince = time.Time{}
	case sp.lagSince.IsZero():
		sp.lagSince = now
	}
	if moved {
		r.wakeLocked()
	}
	r.mu.Unlock()
	r.maybeJoin(n, acked)
}

// settleInSync, after the replica's role info became info, stops treating
// as joining the slaves the in-sync set now lists, and wakes the waiters so
// that they decide again under the new role.
func (r *replica) settleInSync(info *roleInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := range r.joining {
		if slices.Contains(info.inSync, n) || info.role != wire.RoleMaster || !info.sync {
			delete(r.joining, n)
		}
	}
	r.wakeLocked()
}

// solo reports whether the replica is a master that no slave can continue
// from: its table has replication factor 1 and the partition lists no slave
// or learner. Such a master keeps its binlog within Retention.Solo.
func (r *replica) solo() bool {
	info := r.info.Load()
	return info.role == wire.RoleMaster && info.replication == 1 && len(info.slaves) == 0 && len(info.learners) == 0
}

// keepFrom returns the oldest seq a connected slave still needs: the binlog
// is not purged from there on unless a hard cap is hit.
func (r *replica) keepFrom() uint64 {
	info := r.info.Load()
	if info.role != wire.RoleMaster {
		return ^uint64(0)
	}
	keep := r.s.snaps.keepFrom(r.key) // full syncs in progress
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	// A streaming slave fetches at least every FetchWait; one silent for
	// much longer is not connected and does not hold the log back (it
	// full-syncs if it falls out of it).
	connected := max(5*r.s.cfg.FetchWait, 2*time.Second)
	for _, n := range slices.Concat(info.slaves, info.learners) {
		sp := r.progress[n]
		if sp == nil || now.Sub(sp.lastFetch) > connected {
			continue
		}
		keep = min(keep, sp.acked+1)
	}
	return keep
}

// unacked counts the connected slaves that have not acknowledged the
// master's last record.
func (r *replica) unacked() int {
	info := r.info.Load()
	last := r.part.State().Seq
	connected := max(5*r.s.cfg.FetchWait, 2*time.Second)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range info.slaves {
		if sp := r.progress[id]; sp != nil && now.Sub(sp.lastFetch) < connected && sp.acked < last {
			n++
		}
	}
	return n
}

func (r *replica) status() wire.ReplicaStatus {
	st := r.part.State()
	info := r.info.Load()
	rs := wire.ReplicaStatus{
		Table: r.key.table, Partition: r.key.part, Role: info.role,
		State: wire.ReplState(r.state.Load()), Gen: st.Gen, Seq: st.Seq, FirstSeq: st.FirstSeq,
		MapGen: info.mapGen, Incomplete: st.Incomplete, FullSyncs: r.fullSyncs.Load(),
	}
	rs.LoadedBytes = r.loadedBytes.Load()
	switch info.role {
	case wire.RoleSlave, wire.RoleLearner:
		rs.LagRecords = r.lagRecords.Load()
		rs.LagMs = r.lagMs.Load()
	case wire.RoleMaster:
		if len(info.learners) > 0 {
			// A migration is copying this partition: tell meta how much
			// there is to copy.
			rs.Bytes = r.part.SizeEstimate()
		}
		now := time.Now()
		r.mu.Lock()
		for _, n := range info.slaves {
			sp := r.progress[n]
			p := wire.SlaveProgress{Node: n}
			if sp != nil {
				p.Acked = sp.acked
				if !sp.lagSince.IsZero() {
					p.LagMs = now.Sub(sp.lagSince).Milliseconds()
				}
			}
			rs.Slaves = append(rs.Slaves, p)
		}
		r.mu.Unlock()
	}
	return rs
}

func sortStatuses(rs []wire.ReplicaStatus) {
	slices.SortFunc(rs, func(a, b wire.ReplicaStatus) int {
		if c := cmp.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}
