package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/planner"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// A migration moves one replica of a partition from node From to node To
// (DESIGN.md §9, docs/design.md "Migration"). Its record lives in the map,
// so every member knows it and a new leader picks it up; only the leader
// drives it, on its run loop:
//
//	Pending   → Copying: a slot is free (at most MigrationConfig.PerNode
//	            moves touch a node, MigrationConfig.Total run in all);
//	            To becomes a learner of the partition, in the same
//	            proposal, and copies the master's snapshot, then follows
//	            its binlog.
//	Copying   → Done: the learner streams from the master, at most
//	            migrateSlack records behind; one proposal swaps it in for
//	            From (a slave, a lost replica, or nothing).
//	Copying   → Handover → Done: From is the master; a handover (the
//	            switchover path) holds the partition's writes, waits until
//	            To has the master's last record, then makes To the master
//	            with gen+1 and removes From, in one proposal. A handover
//	            that fails releases the partition (back to Copying) and is
//	            tried again, a bounded number of times.
//	any       → Cancelled | Failed: cancelled by an operator, or the target
//	            went down, the table was dropped, or nothing progressed for
//	            MigrationConfig.Stall; the learner is removed in the same
//	            proposal, and the node deletes its partial copy.
//
// A new leader finds Handover migrations without a handover running: it
// releases their partitions (back to Copying) and starts again.

// MigrationConfig bounds migrations. Zero fields take the defaults.
type MigrationConfig struct {
	// PerNode bounds the moves running that copy to or from one node
	// (default 2); Total bounds those running in the cluster (default 4).
	PerNode, Total int
	// RateBytes is the default copy bandwidth of a move, in bytes per
	// second (0: unlimited).
	RateBytes int64
	// Stall fails a move that has made no progress for this long
	// (default 5 minutes).
	Stall time.Duration
	// ReplaceTimeout, when positive, re-creates the replicas of a node
	// that has been down this long on other nodes (off by default).
	ReplaceTimeout time.Duration
	// AutoRebalance, when set, rebalances replicas on its own when a data
	// node holding nothing joins (off by default).
	AutoRebalance bool
	// Hook, when set, is called as migrations reach stages, for tests:
	// "copying" once the target is a learner and "ready" once it has caught
	// up (both on the leader's run loop: it must not block), and "held"
	// when a moving master's handover has held the partition's writes,
	// before it waits for the target (it may block, holding the handover).
	Hook func(stage string, id uint64)
}

func (c *MigrationConfig) hook(stage string, id uint64) {
	if c.Hook != nil {
		c.Hook(stage, id)
	}
}

func (c *MigrationConfig) setDefaults() {
	if c.PerNode <= 0 {
		c.PerNode = 2
	}
	if c.Total <= 0 {
		c.Total = 4
	}
	if c.Stall <= 0 {
		c.Stall = 5 * time.Minute
	}
}

const (
	// migrateSlack is how far behind the master (in records) a learner may
	// be when it is swapped in for a slave, or its handover starts.
	migrateSlack = 256
	// maxHandoverAttempts bounds the failed handovers of a moving master
	// before its migration fails.
	maxHandoverAttempts = 5
)

// migrator is the leader's in-memory side of migrations.
type migrator struct {
	mu sync.Mutex
	// handovers are the handovers running, by migration ID.
	handovers map[uint64]*runningHandover
	// progress is the last progress seen per migration, for stall
	// detection and the copy rate.
	progress map[uint64]*migrationProgress
	// replaced are the down nodes whose replicas were queued for
	// re-creation, and filled the empty nodes already rebalanced onto.
	replaced, filled map[placement.NodeID]bool
	// batches are the batches seen unfinished, to rebalance masters once
	// each completes.
	batches map[uint64]bool
}

type runningHandover struct {
	cancel context.CancelFunc
	done   chan struct{}
}

type migrationProgress struct {
	seq    uint64
	loaded int64
	at     time.Time // last change
	// rate samples
	sampleAt    time.Time
	sampleBytes int64
	rate        int64
}

func (mi *migrator) init() {
	mi.handovers = make(map[uint64]*runningHandover)
	mi.progress = make(map[uint64]*migrationProgress)
	mi.replaced = make(map[placement.NodeID]bool)
	mi.filled = make(map[placement.NodeID]bool)
	mi.batches = make(map[uint64]bool)
}

// registerMigrations installs the migration, rebalance and node
// administration handlers.
func (s *Server) registerMigrations(srv *rpc.Server) {
	srv.Handle(wire.KindMetaMigrate, s.handleMigrate)
	srv.Handle(wire.KindMetaCancel, s.handleCancelMigration)
	srv.Handle(wire.KindMetaMigrations, s.handleMigrations)
	srv.Handle(wire.KindMetaNodeAdmin, s.handleNodeAdmin)
}

func (s *Server) notLeader(what string) error {
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		return &wire.Error{Code: wire.CodeNotLeader, Msg: what + " are run by the meta leader", Addr: s.leaderAddr(s.Map())}
	}
	return nil
}

// handleMigrate queues the move of one replica, after checking it can be
// done now.
func (s *Server) handleMigrate(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.MigrateRequest](body)
	if err != nil {
		return nil, err
	}
	if err := s.notLeader("migrations"); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		mg, err := checkMigrate(m, req)
		if err != nil {
			return nil, err
		}
		if mg.RateBytes == 0 {
			mg.RateBytes = s.cfg.Migration.RateBytes
		}
		ids, err := s.queueMigrations(ctx, m, []placement.Migration{mg}, false)
		if errors.Is(err, errConflict) && attempt < 20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("meta: migration queued", "id", ids[0], "table", req.Table, "partition", req.Partition, "from", req.From, "to", req.To)
		return &wire.MigrateReply{Epoch: s.Map().Epoch, ID: ids[0]}, nil
	}
}

// checkMigrate validates a move against map m and returns it as a
// migration to queue.
func checkMigrate(m *placement.Map, req *wire.MigrateRequest) (placement.Migration, error) {
	t := m.Table(req.Table)
	if t == nil {
		return placement.Migration{}, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", req.Table), Epoch: m.Epoch}
	}
	if int(req.Partition) >= len(t.Partitions) {
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "table %s has %d partitions, no partition %d", t.Name, len(t.Partitions), req.Partition)
	}
	p := &t.Partitions[req.Partition]
	to := m.Node(req.To)
	switch {
	case req.From == req.To:
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: source and target are both %s", req.To)
	case m.Node(req.From) == nil:
		return placement.Migration{}, wire.Errorf(wire.CodeNotFound, "migrate: unknown node %s", req.From)
	case !p.HasReplica(req.From):
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: %s holds no replica of table %s partition %d (replicas: %v)", req.From, t.Name, req.Partition, p.Replicas())
	case to == nil:
		return placement.Migration{}, wire.Errorf(wire.CodeNotFound, "migrate: unknown node %s", req.To)
	case p.Holds(req.To):
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: %s already holds a replica of table %s partition %d", req.To, t.Name, req.Partition)
	case to.State != placement.NodeUp:
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: %s is %v", req.To, to.State)
	case to.Drain:
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: %s is being drained", req.To)
	}
	if mg := m.Moving(t.ID, req.Partition); mg != nil {
		return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: table %s partition %d is already moving (migration %d, %s → %s, %v)", t.Name, req.Partition, mg.ID, mg.From, mg.To, mg.State)
	}
	if !req.Force {
		for _, r := range p.Replicas() {
			if r == req.From {
				continue
			}
			if n := m.Node(r); n != nil && sameDomain(*n, *to, t.Domain.Effective()) {
				return placement.Migration{}, wire.Errorf(wire.CodeInvalid, "migrate: %s shares a failure domain (%v) with %s, which holds another replica of table %s partition %d (force to move anyway)",
					req.To, t.Domain.Effective(), r, t.Name, req.Partition)
			}
		}
	}
	return placement.Migration{Table: t.ID, Partition: req.Partition, From: req.From, To: req.To, RateBytes: req.RateBytes, Created: time.Now().UnixMilli()}, nil
}

// sameDomain reports whether two nodes share a failure domain at level d.
// A node without the label of a level is a domain of its own at that level.
func sameDomain(a, b placement.Node, d placement.Domain) bool {
	if a.ID == b.ID {
		return true
	}
	same := func(x, y string) bool { return x != "" && x == y }
	switch d {
	case placement.DomainHost:
		return same(a.Labels.Host, b.Labels.Host)
	case placement.DomainRack:
		return same(a.Labels.Zone+"/"+a.Labels.Rack, b.Labels.Zone+"/"+b.Labels.Rack) && a.Labels.Rack != ""
	case placement.DomainZone:
		return same(a.Labels.Zone, b.Labels.Zone)
	}
	return false
}

// queueMigrations proposes migrations as pending, in a new batch when batch
// is set, and returns their IDs. It fails with errConflict when IDs were
// taken meanwhile (the caller recomputes and retries).
func (s *Server) queueMigrations(ctx context.Context, m *placement.Map, migs []placement.Migration, batch bool) ([]uint64, error) {
	now := time.Now().UnixMilli()
	for i := range migs {
		if migs[i].Created == 0 {
			migs[i].Created = now
		}
	}
	code, res, err := s.propose(ctx, &command{Op: opMigrate, IDBase: m.NextID, NewBatch: batch, Migrations: migs})
	if err != nil {
		return nil, err
	}
	switch code {
	case resOK:
	case resConflict:
		return nil, fmt.Errorf("%w: %s", errConflict, res.Err)
	case resNotFound:
		return nil, wire.Errorf(wire.CodeNotFound, "%s", res.Err)
	default:
		return nil, wire.Errorf(wire.CodeInvalid, "%s", res.Err)
	}
	next := m.NextID
	if batch {
		next++
	}
	ids := make([]uint64, len(migs))
	for i := range ids {
		next++
		ids[i] = next
	}
	return ids, nil
}

// handleCancelMigration cancels one migration, or every unfinished one of
// a batch, and returns once they are rolled back.
func (s *Server) handleCancelMigration(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.CancelMigrationRequest](body)
	if err != nil {
		return nil, err
	}
	if err := s.notLeader("migrations"); err != nil {
		return nil, err
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	switch {
	case req.ID != 0:
		mg := m.Migration(req.ID)
		if mg == nil {
			return nil, wire.Errorf(wire.CodeNotFound, "cancel: no migration %d", req.ID)
		}
		if mg.State.Finished() {
			return nil, wire.Errorf(wire.CodeInvalid, "cancel: migration %d has already finished (%v)", req.ID, mg.State)
		}
		ids = []uint64{req.ID}
	case req.Batch != 0:
		for _, mg := range m.Migrations {
			if mg.Batch == req.Batch && !mg.State.Finished() {
				ids = append(ids, mg.ID)
			}
		}
	default:
		return nil, wire.Errorf(wire.CodeInvalid, "cancel: name a migration or a batch")
	}
	for _, id := range ids {
		if err := s.finishMigration(ctx, id, placement.MigrationCancelled, "cancelled"); err != nil {
			return nil, err
		}
	}
	return &wire.EpochReply{Epoch: s.Map().Epoch}, nil
}

// finishMigration ends an unfinished migration as state (Cancelled or
// Failed) with reason: it stops its handover if one runs, then removes the
// learner and releases the partition if it is held, in one proposal. A
// migration that finished meanwhile is left as it is (ending a Done one
// as cancelled is refused).
func (s *Server) finishMigration(ctx context.Context, id uint64, state placement.MigrationState, reason string) error {
	s.stopHandover(id)
	for attempt := 0; attempt < 20; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return err
		}
		mg := m.Migration(id)
		if mg == nil {
			return wire.Errorf(wire.CodeNotFound, "no migration %d", id)
		}
		if mg.State.Finished() {
			if mg.State == placement.MigrationDone && state == placement.MigrationCancelled {
				return wire.Errorf(wire.CodeInvalid, "migration %d finished before it could be cancelled", id)
			}
			return nil
		}
		cmd := &command{Op: opUpdate, MigrationChanges: []migrationChange{{
			ID: id, Expect: mg.State, State: state, Updated: time.Now().UnixMilli(), Attempts: mg.Attempts, Error: reason,
		}}}
		if t := m.TableByID(mg.Table); t != nil && int(mg.Partition) < len(t.Partitions) {
			p := t.Partitions[mg.Partition]
			if p.IsLearner(mg.To) || p.State == placement.PartitionStuck {
				np := p.Clone()
				np.Learners = slices.DeleteFunc(np.Learners, func(n placement.NodeID) bool { return n == mg.To })
				np.State = placement.PartitionActive
				expect := p.Clone()
				cmd.Partitions = []partitionChange{{Table: mg.Table, Partition: mg.Partition, New: np, Expect: &expect}}
			}
		}
		code, res, err := s.propose(ctx, cmd)
		if err != nil {
			return err
		}
		switch code {
		case resOK:
			s.events.add(Event{Time: time.Now(), Kind: "migration " + state.String(), Table: mg.Table, Partition: mg.Partition, Node: mg.To, From: mg.From, Epoch: res.Epoch})
			s.log.Info("meta: migration "+state.String(), "id", id, "table", s.tableName(mg.Table), "partition", mg.Partition, "from", mg.From, "to", mg.To, "reason", reason)
			return nil
		case resConflict:
			continue
		}
		return wire.Errorf(wire.CodeInvalid, "%s", res.Err)
	}
	return wire.Errorf(wire.CodeWait, "migration %d: the map keeps changing, retry", id)
}

// stopHandover cancels the handover of migration id, if one runs, and
// waits for it to end.
func (s *Server) stopHandover(id uint64) {
	s.mig.mu.Lock()
	h := s.mig.handovers[id]
	s.mig.mu.Unlock()
	if h != nil {
		h.cancel()
		<-h.done
	}
}

// handleMigrations lists migrations with the leader's view of their
// progress (other members answer from the map alone).
func (s *Server) handleMigrations(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.MigrationsRequest](body)
	if err != nil {
		return nil, err
	}
	m := s.Map()
	if err := s.notLeader("migration reports"); err == nil {
		if m, err = s.read(ctx); err != nil {
			return nil, err
		}
	}
	v := s.det.view()
	reply := &wire.MigrationsReply{Epoch: m.Epoch}
	for _, mg := range m.Migrations {
		if req.Batch != 0 && mg.Batch != req.Batch {
			continue
		}
		reply.Migrations = append(reply.Migrations, s.migrationStatus(m, v, mg))
	}
	return reply, nil
}

func (s *Server) migrationStatus(m *placement.Map, v view, mg placement.Migration) wire.MigrationStatus {
	st := wire.MigrationStatus{Migration: mg}
	t := m.TableByID(mg.Table)
	if t == nil {
		return st
	}
	st.TableName = t.Name
	if mg.State.Finished() || int(mg.Partition) >= len(t.Partitions) {
		return st
	}
	p := t.Partitions[mg.Partition]
	key := replicaKey{mg.Table, mg.Partition}
	if r := v.nodes[mg.To]; r != nil {
		if rs, ok := r.replicas[key]; ok {
			st.CopiedBytes = rs.LoadedBytes
			if r := v.nodes[p.Master]; r != nil {
				if ms, ok := r.replicas[key]; ok {
					st.TotalBytes = ms.Bytes
					if ms.Seq > rs.Seq {
						st.LagRecords = ms.Seq - rs.Seq
					}
				}
			}
		}
	}
	s.mig.mu.Lock()
	if pr := s.mig.progress[mg.ID]; pr != nil {
		st.RateBytes = pr.rate
	}
	s.mig.mu.Unlock()
	return st
}

// handleNodeAdmin drains, undrains or removes a data node, or sets its
// weight.
func (s *Server) handleNodeAdmin(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.NodeAdminRequest](body)
	if err != nil {
		return nil, err
	}
	if err := s.notLeader("node changes"); err != nil {
		return nil, err
	}
	switch req.Op {
	case wire.NodeApprove, wire.NodeRevoke, wire.NodePending:
		return s.nodeApproval(ctx, req)
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	n := m.Node(req.Node)
	if n == nil {
		return nil, wire.Errorf(wire.CodeNotFound, "unknown node %s", req.Node)
	}
	na := &nodeAdmin{Node: req.Node, Weight: req.Weight}
	switch req.Op {
	case wire.NodeDrain:
		na.Op = nodeOpDrain
		// Check the node's replicas have somewhere to go before marking it.
		drained := m.Clone()
		drained.Node(req.Node).Drain = true
		if _, err := planner.Rebalance(plannerNodes(drained), drained.Tables); err != nil {
			return nil, wire.Errorf(wire.CodeInvalid, "drain %s: its replicas have nowhere to go: %v", req.Node, err)
		}
	case wire.NodeUndrain:
		na.Op = nodeOpUndrain
	case wire.NodeRemove:
		na.Op = nodeOpRemove
	case wire.NodeWeight:
		na.Op = nodeOpWeight
		if req.Weight < 1 || req.Weight > 1000 {
			return nil, wire.Errorf(wire.CodeInvalid, "node %s: weight %d outside 1..1000", req.Node, req.Weight)
		}
	default:
		return nil, wire.Errorf(wire.CodeInvalid, "unknown node operation %d", req.Op)
	}
	epoch, err := s.proposeNodeAdmin(ctx, na)
	if err != nil {
		return nil, err
	}
	reply := &wire.NodeAdminReply{Epoch: epoch}
	if req.Op == wire.NodeDrain {
		batch, n, err := s.rebalance(ctx, "", 0, func(mg placement.Migration) bool { return mg.From == req.Node })
		if err != nil {
			return nil, err
		}
		reply.Batch, reply.Migrations = batch, n
		s.log.Info("meta: draining node", "target", req.Node, "migrations", n, "batch", batch)
	}
	return reply, nil
}

// proposeNodeAdmin proposes a node change and returns the epoch that
// commits it, or the refusal as a client error.
func (s *Server) proposeNodeAdmin(ctx context.Context, na *nodeAdmin) (placement.Epoch, error) {
	code, res, err := s.propose(ctx, &command{Op: opNodeAdmin, NodeAdmin: na})
	if err != nil {
		return 0, err
	}
	switch code {
	case resOK:
		return res.Epoch, nil
	case resNotFound:
		return 0, wire.Errorf(wire.CodeNotFound, "%s", res.Err)
	}
	return 0, wire.Errorf(wire.CodeInvalid, "%s", res.Err)
}

// rebalance plans the moves that balance the replicas of table (every
// table when empty) and queues those keep accepts (all when nil) as one
// batch. It returns the batch and how many migrations it holds (0, 0 when
// there is nothing to move).
func (s *Server) rebalance(ctx context.Context, table string, rate int64, keep func(placement.Migration) bool) (uint64, int, error) {
	if rate == 0 {
		rate = s.cfg.Migration.RateBytes
	}
	for attempt := 0; ; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return 0, 0, err
		}
		tables := m.Tables
		if table != "" {
			t := m.Table(table)
			if t == nil {
				return 0, 0, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", table), Epoch: m.Epoch}
			}
			tables = []placement.Table{*t}
		}
		plan, err := planner.Rebalance(plannerNodes(m), tables)
		if err != nil {
			return 0, 0, wire.Errorf(wire.CodeInvalid, "rebalance: %v", err)
		}
		var migs []placement.Migration
		for _, mg := range planMigrations(plan) {
			if m.Moving(mg.Table, mg.Partition) != nil || (keep != nil && !keep(mg)) {
				continue
			}
			mg.RateBytes = rate
			migs = append(migs, mg)
		}
		if len(migs) == 0 {
			return 0, 0, nil
		}
		ids, err := s.queueMigrations(ctx, m, migs, true)
		if errors.Is(err, errConflict) && attempt < 20 {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		return ids[0] - 1, len(ids), nil
	}
}

// planMigrations turns a plan's replica moves into migrations: per
// partition, each replica removed is paired with one added (a move), an
// added replica without a removed one re-creates a lost replica (no
// source), a removed one without an added one is dropped (no target).
// Master changes are left to the master rebalancing that follows.
func planMigrations(plan *planner.Plan) []placement.Migration {
	type key struct {
		t placement.TableID
		p placement.PartitionID
	}
	adds := map[key][]placement.NodeID{}
	removes := map[key][]placement.NodeID{}
	var order []key
	for _, mv := range plan.Moves {
		k := key{mv.Table, mv.Partition}
		if _, ok := adds[k]; !ok {
			if _, ok := removes[k]; !ok {
				order = append(order, k)
			}
		}
		switch mv.Kind {
		case planner.AddReplica:
			adds[k] = append(adds[k], mv.To)
		case planner.RemoveReplica:
			removes[k] = append(removes[k], mv.From)
		}
	}
	var out []placement.Migration
	for _, k := range order {
		a, r := adds[k], removes[k]
		for len(a) > 0 || len(r) > 0 {
			mg := placement.Migration{Table: k.t, Partition: k.p}
			if len(r) > 0 {
				mg.From, r = r[0], r[1:]
			}
			if len(a) > 0 {
				mg.To, a = a[0], a[1:]
			}
			out = append(out, mg)
		}
	}
	return out
}

// driveMigrations moves every unfinished migration on as far as it can
// now, and queues re-replication and automatic rebalancing when they are
// due. It runs on the leader's run loop after the failure detector, with
// the detector's view v.
func (s *Server) driveMigrations(ctx context.Context, m *placement.Map, v view, now time.Time) {
	cfg := s.cfg.Migration
	running := map[placement.NodeID]int{}
	total := 0
	active := map[uint64]bool{}
	for _, mg := range m.Migrations {
		if mg.State == placement.MigrationCopying || mg.State == placement.MigrationHandover {
			running[mg.From]++
			running[mg.To]++
			total++
		}
	}
	for _, mg := range m.Migrations {
		if mg.State.Finished() {
			continue
		}
		if mg.Batch != 0 {
			active[mg.Batch] = true
		}
		switch mg.State {
		case placement.MigrationPending:
			if total >= cfg.Total || (mg.From != "" && running[mg.From] >= cfg.PerNode) || (mg.To != "" && running[mg.To] >= cfg.PerNode) {
				continue
			}
			if first := m.Moving(mg.Table, mg.Partition); first != nil && first.ID != mg.ID {
				continue // one move of a partition at a time, in order
			}
			if s.startMigration(ctx, m, mg, now) {
				running[mg.From]++
				running[mg.To]++
				total++
			}
		case placement.MigrationCopying:
			s.advanceMigration(ctx, m, v, mg, now)
		case placement.MigrationHandover:
			s.mig.mu.Lock()
			h := s.mig.handovers[mg.ID]
			s.mig.mu.Unlock()
			if h == nil {
				// A previous leader's handover, interrupted: release the
				// partition and try again.
				s.releaseHandover(ctx, m, mg, now)
			}
		}
	}
	// Batches that have just completed: balance masters again.
	s.mig.mu.Lock()
	for b := range s.mig.batches {
		if !active[b] {
			delete(s.mig.batches, b)
			s.auto.schedule(now)
		}
	}
	for b := range active {
		s.mig.batches[b] = true
	}
	for id := range s.mig.progress {
		if mg := m.Migration(id); mg == nil || mg.State.Finished() {
			delete(s.mig.progress, id)
		}
	}
	s.mig.mu.Unlock()
	s.replaceLostNodes(ctx, m, now)
	s.fillNewNodes(ctx, m)
}

// startMigration makes a pending migration's target a learner (or, with no
// target, goes straight on) and reports whether it started.
func (s *Server) startMigration(ctx context.Context, m *placement.Map, mg placement.Migration, now time.Time) bool {
	t := m.TableByID(mg.Table)
	fail := func(reason string) {
		s.proposeMigration(ctx, mg, placement.MigrationFailed, reason, nil, now)
	}
	if t == nil || int(mg.Partition) >= len(t.Partitions) {
		fail("the table was dropped")
		return false
	}
	p := t.Partitions[mg.Partition]
	switch {
	case mg.From != "" && !p.HasReplica(mg.From):
		fail(fmt.Sprintf("%s no longer holds a replica", mg.From))
		return false
	case mg.To != "" && p.Holds(mg.To):
		fail(fmt.Sprintf("%s already holds a copy", mg.To))
		return false
	case mg.To != "" && (m.Node(mg.To) == nil || m.Node(mg.To).State != placement.NodeUp):
		return false // wait for the target to be up
	}
	np := p.Clone()
	if mg.To != "" {
		np.Learners = append(np.Learners, mg.To)
	}
	if !s.proposeMigration(ctx, mg, placement.MigrationCopying, "", &np, now) {
		return false
	}
	s.cfg.Migration.hook("copying", mg.ID)
	return true
}

// proposeMigration moves mg (as read from the map) to state, with the
// partition's new assignment np when not nil (compare-and-set against the
// map's current one), and reports whether it committed.
func (s *Server) proposeMigration(ctx context.Context, mg placement.Migration, state placement.MigrationState, reason string, np *placement.Partition, now time.Time) bool {
	cmd := &command{Op: opUpdate, MigrationChanges: []migrationChange{{
		ID: mg.ID, Expect: mg.State, State: state, Updated: now.UnixMilli(), Attempts: mg.Attempts, Error: reason,
	}}}
	if np != nil {
		m := s.Map()
		t := m.TableByID(mg.Table)
		if t == nil || int(mg.Partition) >= len(t.Partitions) {
			return false
		}
		expect := t.Partitions[mg.Partition].Clone()
		cmd.Partitions = []partitionChange{{Table: mg.Table, Partition: mg.Partition, New: *np, Expect: &expect}}
	}
	pctx, cancel := context.WithTimeout(ctx, 3*s.callTimeout())
	defer cancel()
	code, res, err := s.propose(pctx, cmd)
	if err != nil || code != resOK {
		if err == nil {
			err = errors.New(res.Err)
		}
		s.log.Debug("meta: migration step not applied", "id", mg.ID, "to_state", state, "err", err)
		return false
	}
	if state != mg.State {
		kind := "migration " + state.String()
		s.events.add(Event{Time: now, Kind: kind, Table: mg.Table, Partition: mg.Partition, Node: mg.To, From: mg.From, Epoch: res.Epoch})
		s.log.Info("meta: "+kind, "id", mg.ID, "table", s.tableName(mg.Table), "partition", mg.Partition, "from", mg.From, "to", mg.To, "reason", reason, "epoch", res.Epoch)
	}
	return true
}

// advanceMigration moves a copying migration on: fails it when it cannot
// go on, swaps its learner in once caught up, or starts the handover of a
// moving master.
func (s *Server) advanceMigration(ctx context.Context, m *placement.Map, v view, mg placement.Migration, now time.Time) {
	t := m.TableByID(mg.Table)
	if t == nil || int(mg.Partition) >= len(t.Partitions) {
		s.proposeMigration(ctx, mg, placement.MigrationFailed, "the table was dropped", nil, now)
		return
	}
	p := t.Partitions[mg.Partition]
	rollback := func(reason string) {
		np := p.Clone()
		np.Learners = slices.DeleteFunc(np.Learners, func(n placement.NodeID) bool { return n == mg.To })
		s.proposeMigration(ctx, mg, placement.MigrationFailed, reason, &np, now)
	}
	if mg.To != "" {
		if n := m.Node(mg.To); n == nil || n.State == placement.NodeDown {
			rollback(fmt.Sprintf("target %s is down", mg.To))
			return
		}
		if !p.IsLearner(mg.To) {
			rollback(fmt.Sprintf("%s is no longer a learner of the partition", mg.To))
			return
		}
	}
	if mg.From != "" && !p.HasReplica(mg.From) {
		rollback(fmt.Sprintf("%s no longer holds a replica", mg.From))
		return
	}
	if p.Master == "" || (m.Node(p.Master) != nil && m.Node(p.Master).State == placement.NodeDown) {
		return // a failover comes first
	}
	key := replicaKey{mg.Table, mg.Partition}
	var ls, ms wire.ReplicaStatus
	var lok, mok bool
	if r := v.nodes[mg.To]; r != nil {
		ls, lok = r.replicas[key]
	}
	if r := v.nodes[p.Master]; r != nil {
		ms, mok = r.replicas[key]
	}
	if mg.To != "" && !s.progressed(mg, ls, now) {
		rollback(fmt.Sprintf("no progress for %v", s.cfg.Migration.Stall))
		return
	}
	ready := mg.To == "" || (lok && mok && ls.Role == wire.RoleLearner && ls.State == wire.ReplStreaming &&
		ls.MapGen == p.Gen && !ls.Incomplete && ls.Seq+migrateSlack >= ms.Seq)
	if !ready {
		return
	}
	s.cfg.Migration.hook("ready", mg.ID)
	if mg.From == p.Master {
		if mg.To == "" {
			// Dropping the master's replica: hand the master role to a
			// slave first; the migration completes on a later tick.
			if to := bestSlave(mg.Table, p, m, v); to != "" {
				s.startHandover(mg, to, false)
			}
			return
		}
		s.startHandover(mg, mg.To, true)
		return
	}
	np := p.Clone()
	np.Learners = slices.DeleteFunc(np.Learners, func(n placement.NodeID) bool { return n == mg.To })
	if mg.From != "" {
		np.Slaves = slices.DeleteFunc(np.Slaves, func(n placement.NodeID) bool { return n == mg.From })
		np.InSync = slices.DeleteFunc(np.InSync, func(n placement.NodeID) bool { return n == mg.From })
	}
	if mg.To != "" {
		np.Slaves = append(np.Slaves, mg.To)
	}
	s.proposeMigration(ctx, mg, placement.MigrationDone, "", &np, now)
}

// progressed records the learner's progress and reports false once it has
// not moved for the stall timeout. It also samples the copy rate.
func (s *Server) progressed(mg placement.Migration, ls wire.ReplicaStatus, now time.Time) bool {
	s.mig.mu.Lock()
	defer s.mig.mu.Unlock()
	pr := s.mig.progress[mg.ID]
	if pr == nil {
		pr = &migrationProgress{seq: ls.Seq, loaded: ls.LoadedBytes, at: now, sampleAt: now, sampleBytes: ls.LoadedBytes}
		s.mig.progress[mg.ID] = pr
		return true
	}
	if ls.Seq != pr.seq || ls.LoadedBytes != pr.loaded || ls.State == wire.ReplStreaming {
		pr.seq, pr.loaded, pr.at = ls.Seq, ls.LoadedBytes, now
	}
	if d := now.Sub(pr.sampleAt); d >= time.Second {
		if ls.LoadedBytes >= pr.sampleBytes {
			pr.rate = int64(float64(ls.LoadedBytes-pr.sampleBytes) / d.Seconds())
		}
		pr.sampleAt, pr.sampleBytes = now, ls.LoadedBytes
	}
	return now.Sub(pr.at) < s.cfg.Migration.Stall
}

// startHandover runs, unless one runs already, the handover that moves the
// master of mg's partition to node to (dropping the old master when drop
// is set) and completes the migration. It runs in the leader's group and
// ends with it.
func (s *Server) startHandover(mg placement.Migration, to placement.NodeID, drop bool) {
	s.mig.mu.Lock()
	defer s.mig.mu.Unlock()
	if s.mig.handovers[mg.ID] != nil {
		return
	}
	ctx, cancel := s.group.Context(context.Background())
	h := &runningHandover{cancel: cancel, done: make(chan struct{})}
	migID := mg.ID
	if !drop {
		migID = 0 // a plain switchover ahead of dropping the old master
	}
	if !s.group.Go(func() {
		defer close(h.done)
		defer cancel()
		defer func() {
			s.mig.mu.Lock()
			delete(s.mig.handovers, mg.ID)
			s.mig.mu.Unlock()
		}()
		hctx, hcancel := context.WithTimeout(ctx, catchUpTimeout+stuckTimeout+10*time.Second)
		defer hcancel()
		_, err := s.handover(hctx, mg.Table, mg.Partition, to, handoverOpts{migration: migID, drop: drop})
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Info("meta: migration handover failed, will retry", "id", mg.ID, "table", s.tableName(mg.Table), "partition", mg.Partition, "to", to, "err", err)
		if drop {
			m := s.Map()
			if cur := m.Migration(mg.ID); cur != nil && cur.State == placement.MigrationCopying && cur.Attempts >= maxHandoverAttempts {
				fctx, fcancel := context.WithTimeout(ctx, 3*s.callTimeout())
				defer fcancel()
				_ = s.finishMigration(fctx, mg.ID, placement.MigrationFailed, fmt.Sprintf("handover failed %d times, last: %v", cur.Attempts, err))
			}
		}
	}) {
		cancel()
		return
	}
	s.mig.handovers[mg.ID] = h
}

// releaseHandover makes a partition held by an interrupted handover active
// again, its migration back to copying.
func (s *Server) releaseHandover(ctx context.Context, m *placement.Map, mg placement.Migration, now time.Time) {
	t := m.TableByID(mg.Table)
	if t == nil || int(mg.Partition) >= len(t.Partitions) {
		s.proposeMigration(ctx, mg, placement.MigrationFailed, "the table was dropped", nil, now)
		return
	}
	np := t.Partitions[mg.Partition].Clone()
	np.State = placement.PartitionActive
	mg.Attempts++
	s.proposeMigration(ctx, mg, placement.MigrationCopying, "the handover was interrupted", &np, now)
}

// replaceLostNodes queues, once per node and leadership, the re-creation
// elsewhere of the replicas of every node down for longer than
// ReplaceTimeout.
func (s *Server) replaceLostNodes(ctx context.Context, m *placement.Map, now time.Time) {
	rt := s.cfg.Migration.ReplaceTimeout
	if rt <= 0 {
		return
	}
	for _, n := range m.Nodes {
		if n.State != placement.NodeDown || n.Since == 0 || now.Sub(time.UnixMilli(n.Since)) < rt || holdings(m, n.ID) == 0 {
			continue
		}
		s.mig.mu.Lock()
		done := s.mig.replaced[n.ID]
		s.mig.mu.Unlock()
		if done {
			continue
		}
		dead := n.ID
		batch, count, err := s.rebalance(ctx, "", 0, func(mg placement.Migration) bool { return mg.From == dead })
		if err != nil {
			s.log.Warn("meta: cannot re-create the replicas of a lost node", "target", dead, "err", err)
			continue
		}
		s.mig.mu.Lock()
		s.mig.replaced[dead] = true
		s.mig.mu.Unlock()
		s.log.Warn("meta: node down for longer than the replace timeout: re-creating its replicas elsewhere",
			"target", dead, "down_for", now.Sub(time.UnixMilli(n.Since)).Round(time.Second), "migrations", count, "batch", batch)
	}
}

// fillNewNodes rebalances replicas onto data nodes that hold nothing, once
// each, when AutoRebalance is on and no migration is running.
func (s *Server) fillNewNodes(ctx context.Context, m *placement.Map) {
	if !s.cfg.Migration.AutoRebalance || len(m.Tables) == 0 {
		return
	}
	for _, mg := range m.Migrations {
		if !mg.State.Finished() {
			return
		}
	}
	var empty []placement.NodeID
	for _, n := range m.Nodes {
		s.mig.mu.Lock()
		seen := s.mig.filled[n.ID]
		s.mig.mu.Unlock()
		if n.State == placement.NodeUp && !n.Drain && !seen && holdings(m, n.ID) == 0 {
			empty = append(empty, n.ID)
		}
	}
	if len(empty) == 0 {
		return
	}
	batch, count, err := s.rebalance(ctx, "", 0, nil)
	if err != nil {
		s.log.Warn("meta: automatic rebalance failed", "err", err)
		return
	}
	s.mig.mu.Lock()
	for _, n := range empty {
		s.mig.filled[n] = true
	}
	s.mig.mu.Unlock()
	if count > 0 {
		s.log.Info("meta: rebalancing onto new nodes", "nodes", empty, "migrations", count, "batch", batch)
	}
}
