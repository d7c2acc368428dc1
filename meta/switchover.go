package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// A planned switchover moves a partition's master to one of its slaves
// without losing a write:
//
//  1. wait until the slave is nearly caught up (writes still flow);
//  2. mark the partition stuck: the master stops taking writes (clients
//     get a retryable wait) and drains the group it is committing;
//  3. wait until the slave holds the master's last seq;
//  4. commit the slave as master with gen+1, the old master as a slave,
//     and the partition active again, in one proposal.
//
// Any failure before step 4 makes the partition active again under its old
// master. Progress is polled straight from the two nodes (node status
// RPCs), so a switchover takes a few milliseconds plus the map
// propagation, not heartbeat intervals.

// Switchover limits.
const (
	// catchUpSlack is how far (in records) the slave may still be behind
	// when the partition is marked stuck.
	catchUpSlack = 256
	// stuckTimeout bounds how long writes may be held in step 3.
	stuckTimeout = 3 * time.Second
	// catchUpTimeout bounds step 1: a slave still loading a snapshot is
	// not a switchover target yet.
	catchUpTimeout = 10 * time.Second
)

// switchovers tracks the handovers this leader runs, one per partition.
type switchovers struct {
	mu      sync.Mutex
	running map[replicaKey]bool
}

func (sw *switchovers) begin(k replicaKey) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.running == nil {
		sw.running = make(map[replicaKey]bool)
	}
	if sw.running[k] {
		return false
	}
	sw.running[k] = true
	return true
}

func (sw *switchovers) end(k replicaKey) {
	sw.mu.Lock()
	delete(sw.running, k)
	sw.mu.Unlock()
}

func (sw *switchovers) active(k replicaKey) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.running[k]
}

func (s *Server) handleSetMaster(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.SetMasterRequest](body)
	if err != nil {
		return nil, err
	}
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "switchovers are run by the meta leader", Addr: s.leaderAddr(s.Map())}
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	t := m.Table(req.Table)
	if t == nil {
		return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", req.Table), Epoch: m.Epoch}
	}
	if int(req.Partition) >= len(t.Partitions) {
		return nil, wire.Errorf(wire.CodeInvalid, "table %s has %d partitions, no partition %d", t.Name, len(t.Partitions), req.Partition)
	}
	if t.Partitions[req.Partition].Master == req.Node {
		return &wire.EpochReply{Epoch: m.Epoch}, nil
	}
	epoch, err := s.switchover(ctx, t.ID, req.Partition, req.Node)
	if err != nil {
		return nil, err
	}
	return &wire.EpochReply{Epoch: epoch}, nil
}

// switchover runs a planned handover of one partition to its slave to and
// returns the epoch that commits it.
func (s *Server) switchover(ctx context.Context, table placement.TableID, part placement.PartitionID, to placement.NodeID) (placement.Epoch, error) {
	return s.handover(ctx, table, part, to, handoverOpts{})
}

// handoverOpts shape a handover.
type handoverOpts struct {
	// migration, when not zero, is the migration the handover completes:
	// the target may be a learner, the migration moves to Handover when
	// writes are held, back to Copying when the handover fails and to Done
	// when it commits, each atomically with the partition's change.
	migration uint64
	// drop removes the old master from the partition instead of keeping
	// it as a slave (a migration moving the master away).
	drop bool
}

// handover moves the master of one partition to node to without losing a
// write (see the steps above) and returns the epoch that commits it.
func (s *Server) handover(ctx context.Context, table placement.TableID, part placement.PartitionID, to placement.NodeID, o handoverOpts) (placement.Epoch, error) {
	k := replicaKey{table, part}
	if !s.sw.begin(k) {
		return 0, wire.Errorf(wire.CodeWait, "a switchover of table %d partition %d is already running", table, part)
	}
	defer s.sw.end(k)

	check := func(m *placement.Map) (*placement.Partition, error) {
		t := m.TableByID(table)
		if t == nil {
			return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %d was dropped", table), Epoch: m.Epoch}
		}
		p := &t.Partitions[part]
		n := m.Node(to)
		switch {
		case p.Master == "":
			return nil, wire.Errorf(wire.CodeUnavailable, "table %s partition %d has no master to hand over from", t.Name, part)
		case !p.IsSlave(to) && !(o.migration != 0 && p.IsLearner(to)):
			return nil, wire.Errorf(wire.CodeInvalid, "%s is not a slave of table %s partition %d", to, t.Name, part)
		case n == nil || n.State != placement.NodeUp:
			return nil, wire.Errorf(wire.CodeInvalid, "%s is not up", to)
		case m.Node(p.Master) == nil || m.Node(p.Master).State == placement.NodeDown:
			return nil, wire.Errorf(wire.CodeUnavailable, "master %s of table %s partition %d is down: failover handles it", p.Master, t.Name, part)
		}
		return p, nil
	}
	// migrationStep returns the change that moves the handover's migration
	// from one state to another, or nil without a migration.
	migrationStep := func(m *placement.Map, from, to placement.MigrationState, reason string) *migrationChange {
		if o.migration == 0 {
			return nil
		}
		mc := &migrationChange{ID: o.migration, Expect: from, State: to, Updated: time.Now().UnixMilli(), Error: reason}
		if mg := m.Migration(o.migration); mg != nil {
			mc.Attempts = mg.Attempts
		}
		if to == placement.MigrationCopying {
			mc.Attempts++ // a failed handover
		}
		return mc
	}

	m, err := s.read(ctx)
	if err != nil {
		return 0, err
	}
	p, err := check(m)
	if err != nil {
		return 0, err
	}
	from := p.Master
	fromAddr, toAddr := m.NodeAddr(from), m.NodeAddr(to)

	// 1. Let the slave catch up while writes still flow.
	cctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	err = s.waitCaughtUp(cctx, table, part, p.Gen, fromAddr, toAddr, 0, catchUpSlack)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("switchover to %s: %w", to, err)
	}

	// 2. Hold writes.
	stuck := p.Clone()
	stuck.State = placement.PartitionStuck
	heldAt := time.Now()
	stuckEpoch, err := s.proposePartition(ctx, table, part, p, stuck,
		migrationStep(m, placement.MigrationCopying, placement.MigrationHandover, ""))
	if err != nil {
		return 0, fmt.Errorf("switchover to %s: hold writes: %w", to, err)
	}
	release := func(cause error) {
		rctx, cancel := s.opContext()
		defer cancel()
		active := stuck.Clone()
		active.State = placement.PartitionActive
		var mc *migrationChange
		if cur, err := s.read(rctx); err == nil {
			mc = migrationStep(cur, placement.MigrationHandover, placement.MigrationCopying, fmt.Sprintf("handover failed: %v", cause))
		}
		// Fails harmlessly when the partition moved on meanwhile (a
		// failover made it active with another master).
		_, _ = s.proposePartition(rctx, table, part, &stuck, active, mc)
	}

	if o.migration != 0 {
		s.cfg.Migration.hook("held", o.migration)
	}

	// 3. Wait until the slave has everything the master committed.
	wctx, cancel := context.WithTimeout(ctx, stuckTimeout)
	err = s.waitCaughtUp(wctx, table, part, p.Gen, fromAddr, toAddr, stuckEpoch, 0)
	cancel()
	if err != nil {
		release(err)
		return 0, fmt.Errorf("switchover to %s: %w", to, err)
	}

	// 4. Commit the new master.
	m, err = s.read(ctx)
	if err != nil {
		release(err)
		return 0, err
	}
	if p, err = check(m); err != nil || p.Master != from || p.State != placement.PartitionStuck {
		if err == nil {
			err = wire.Errorf(wire.CodeWait, "table %d partition %d changed during the switchover", table, part)
		}
		release(err)
		return 0, err
	}
	np := p.Clone()
	np.Master = to
	np.Slaves = slices.DeleteFunc(np.Slaves, func(n placement.NodeID) bool { return n == to })
	np.Learners = slices.DeleteFunc(np.Learners, func(n placement.NodeID) bool { return n == to })
	if !o.drop {
		np.Slaves = append(np.Slaves, from)
	}
	np.Gen = p.Gen + 1
	np.State = placement.PartitionActive
	// The new master holds every record the old one had: it is in sync,
	// and so is the old master unless it leaves the partition.
	np.InSync = nil
	if len(p.InSync) > 0 {
		np.InSync = slices.DeleteFunc(slices.Clone(p.InSync), func(n placement.NodeID) bool { return n == to || (o.drop && n == from) })
		np.InSync = append(np.InSync, to)
	}
	epoch, err := s.proposePartition(ctx, table, part, p, np,
		migrationStep(m, placement.MigrationHandover, placement.MigrationDone, ""))
	if err != nil {
		release(err)
		return 0, fmt.Errorf("switchover to %s: commit: %w", to, err)
	}
	kind := "switchover"
	if o.migration != 0 {
		kind = "migrated"
	}
	s.events.add(Event{Time: time.Now(), Kind: kind, Table: table, Partition: part, Node: to, From: from, Gen: np.Gen, Epoch: epoch})
	s.log.Info("meta: "+kind, "table", s.tableName(table), "partition", part, "from", from, "to", to, "gen", np.Gen, "epoch", epoch,
		"writes_held", time.Since(heldAt).Round(100*time.Microsecond))
	return epoch, nil
}

var errConflict = errors.New("meta: the map changed")

// isConflict reports whether err is a compare-and-set that lost a race.
func isConflict(err error) bool { return errors.Is(err, errConflict) }

// proposePartition commits one partition's new assignment if the
// partition is still exactly expect, together with mc when it is not nil.
func (s *Server) proposePartition(ctx context.Context, table placement.TableID, part placement.PartitionID, expect *placement.Partition, np placement.Partition, mc *migrationChange) (placement.Epoch, error) {
	cur := expect.Clone()
	cmd := &command{Op: opUpdate, Partitions: []partitionChange{{Table: table, Partition: part, New: np, Expect: &cur}}}
	if mc != nil {
		cmd.MigrationChanges = []migrationChange{*mc}
	}
	code, res, err := s.propose(ctx, cmd)
	if err != nil {
		return 0, err
	}
	switch code {
	case resOK:
		return res.Epoch, nil
	case resConflict:
		return 0, fmt.Errorf("%w: %s", errConflict, res.Err)
	}
	return 0, wire.Errorf(wire.CodeInvalid, "%s", res.Err)
}

// waitCaughtUp polls the master and the slave until the slave streams from
// the master under map generation gen and is at most slack records behind
// (with slack 0: holds exactly the master's (gen, seq)). With minEpoch set,
// the master must have applied a map of at least that epoch first (then
// its seq is final). It polls at most every 20 ms, or from every 0.5 ms
// up to every 2 ms with minEpoch set: the partition's writes are held
// then, and every millisecond between the slave catching up and the poll
// that sees it adds to their pause (a poll is two small status calls,
// made at once).
func (s *Server) waitCaughtUp(ctx context.Context, table placement.TableID, part placement.PartitionID, gen uint64, masterAddr, slaveAddr string, minEpoch placement.Epoch, slack uint64) error {
	wait, maxWait := time.Millisecond, 20*time.Millisecond
	if minEpoch != 0 {
		wait, maxWait = 500*time.Microsecond, 2*time.Millisecond
	}
	var last error
	for {
		// Both at once: while the partition is held every round trip
		// saved shortens the pause.
		var ss nodeReplica
		var serr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			ss, serr = s.replicaStatus(ctx, slaveAddr, table, part)
		}()
		ms, err := s.replicaStatus(ctx, masterAddr, table, part)
		<-done
		if err == nil && ms.epoch < minEpoch {
			err = fmt.Errorf("master at %s has not applied epoch %d yet", masterAddr, minEpoch)
		}
		if err == nil {
			err = serr
		}
		if err == nil {
			// A replica that is not streaming from this master (an old
			// master that rejoined and has not been resynchronised, say)
			// may report a long log that is not the master's.
			switch {
			case ss.Incomplete:
				err = fmt.Errorf("slave at %s holds no complete copy", slaveAddr)
			case (ss.Role != wire.RoleSlave && ss.Role != wire.RoleLearner) || ss.MapGen != gen || ss.State != wire.ReplStreaming:
				err = fmt.Errorf("replica at %s is not streaming from the master of generation %d (%v, %v, generation %d)", slaveAddr, gen, ss.Role, ss.State, ss.MapGen)
			case ss.Seq > ms.Seq:
				err = fmt.Errorf("slave at %s is ahead of its master (%d > %d): it has diverged", slaveAddr, ss.Seq, ms.Seq)
			case ss.Seq+slack < ms.Seq:
				err = fmt.Errorf("slave at %s is %d records behind", slaveAddr, ms.Seq-ss.Seq)
			case slack == 0 && ss.Gen != ms.Gen:
				err = fmt.Errorf("slave at %s holds (gen %d, seq %d), the master (gen %d, seq %d)", slaveAddr, ss.Gen, ss.Seq, ms.Gen, ms.Seq)
			case slack == 0 && !inSyncAcked(s.Map(), table, part, ms.ReplicaStatus):
				// A sync master answers the writes it holds once its whole
				// in-sync set has them: let it, so that none of them ends
				// with an unknown outcome when it hands over.
				err = fmt.Errorf("the in-sync slaves have not acknowledged the master's seq %d yet", ms.Seq)
			default:
				return nil
			}
		}
		last = err
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return wire.Errorf(wire.CodeTimeout, "slave did not catch up: %v", last)
		case <-s.stop:
			t.Stop()
			return errClosed
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// inSyncAcked reports whether, by the master's report ms, every other
// member of a sync partition's in-sync set has acknowledged the master's
// last record (true for an async table).
func inSyncAcked(m *placement.Map, table placement.TableID, part placement.PartitionID, ms wire.ReplicaStatus) bool {
	t := m.TableByID(table)
	if t == nil || t.Mode != placement.ModeSync || int(part) >= len(t.Partitions) {
		return true
	}
	p := t.Partitions[part]
	for _, n := range p.InSync {
		if n == p.Master {
			continue
		}
		i := slices.IndexFunc(ms.Slaves, func(sp wire.SlaveProgress) bool { return sp.Node == n })
		if i < 0 || ms.Slaves[i].Acked < ms.Seq {
			return false
		}
	}
	return true
}

type nodeReplica struct {
	wire.ReplicaStatus
	epoch placement.Epoch
}

// replicaStatus asks the node at addr for one replica's status.
func (s *Server) replicaStatus(ctx context.Context, addr string, table placement.TableID, part placement.PartitionID) (nodeReplica, error) {
	var reply wire.NodeStatusReply
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.pool.Call(cctx, addr, wire.KindNodeStatus, &wire.NodeStatusRequest{}, &reply); err != nil {
		return nodeReplica{}, err
	}
	for _, r := range reply.Replicas {
		if r.Table == table && r.Partition == part {
			return nodeReplica{ReplicaStatus: r, epoch: reply.Epoch}, nil
		}
	}
	return nodeReplica{}, fmt.Errorf("node at %s holds no replica of table %d partition %d", addr, table, part)
}

// handleHandOff moves every master role of a node that is about to stop
// to its most caught-up slave, by planned switchovers, a few at a time.
func (s *Server) handleHandOff(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.HandOffRequest](body)
	if err != nil {
		return nil, err
	}
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "hand-offs are run by the meta leader", Addr: s.leaderAddr(s.Map())}
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	type move struct {
		table placement.TableID
		part  placement.PartitionID
		to    placement.NodeID
	}
	var moves []move
	reply := &wire.HandOffReply{}
	v := s.det.view()
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.Master != req.Node {
				continue
			}
			to := bestSlave(t.ID, p, m, v)
			if to == "" {
				reply.Failed = append(reply.Failed, fmt.Sprintf("table %s partition %d: no up, complete slave", t.Name, p.ID))
				continue
			}
			moves = append(moves, move{t.ID, p.ID, to})
		}
	}
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, mv := range moves {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := s.switchover(ctx, mv.table, mv.part, mv.to)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				reply.Failed = append(reply.Failed, fmt.Sprintf("table %d partition %d → %s: %v", mv.table, mv.part, mv.to, err))
				return
			}
			reply.Moved++
		}()
	}
	wg.Wait()
	reply.Epoch = s.Map().Epoch
	s.log.Info("meta: handed off master roles", "target", req.Node, "moved", reply.Moved, "failed", len(reply.Failed))
	return reply, nil
}

// bestSlave returns the up, complete slave of p with the highest reported
// (gen, seq) (an in-sync one for a sync table), ties broken by node ID, or
// "" when there is none.
func bestSlave(table placement.TableID, p placement.Partition, m *placement.Map, v view) placement.NodeID {
	t := m.TableByID(table)
	if t == nil {
		return ""
	}
	eff := make(map[placement.NodeID]placement.NodeState, len(m.Nodes))
	for _, n := range m.Nodes {
		eff[n.ID] = n.State
	}
	np, changed := failover(t, p, eff, v)
	if !changed {
		return ""
	}
	return np.Master
}
