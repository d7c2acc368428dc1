package meta

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
	"unicode"

	"github.com/zeppelin-kv/zeppelin/internal/planner"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Limits on table creation.
const (
	maxPartitions  = 1 << 16
	maxReplication = 7
)

// Register installs the meta service's handlers on srv.
func (s *Server) Register(srv *rpc.Server) {
	srv.Handle(wire.KindMetaPull, s.handlePull)
	srv.Handle(wire.KindMetaRegister, s.handleRegister)
	srv.Handle(wire.KindMetaHeartbeat, s.handleHeartbeat)
	srv.Handle(wire.KindMetaCreateTable, s.handleCreateTable)
	srv.Handle(wire.KindMetaDropTable, s.handleDropTable)
	srv.Handle(wire.KindMetaStatus, s.handleStatus)
	srv.Handle(wire.KindMetaPlan, s.handlePlan)
	srv.Handle(wire.KindMetaSetMaster, s.handleSetMaster)
	srv.Handle(wire.KindMetaRebalance, s.handleRebalance)
	srv.Handle(wire.KindMetaHandOff, s.handleHandOff)
	s.registerMigrations(srv)
	s.registerMembership(srv)
	s.registerInSync(srv)
}

// maxRequestElements bounds the arrays of one meta request (a heartbeat
// lists the node's replicas).
const maxRequestElements = 1 << 18

// decode decodes the body of a meta request (see wire.Decode).
func decode[T any](body []byte) (*T, error) { return wire.Decode[T](body, maxRequestElements) }

// handlePull answers from the local copy: any member may answer, and the
// caller ignores a map older than one it has.
func (s *Server) handlePull(_ context.Context, body []byte) (any, error) {
	req, err := decode[wire.PullRequest](body)
	if err != nil {
		return nil, err
	}
	m := s.Map()
	if req.Known >= m.Epoch {
		return &wire.PullReply{Epoch: m.Epoch}, nil
	}
	return &wire.PullReply{Epoch: m.Epoch, Map: m}, nil
}

func (s *Server) handleRegister(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.RegisterRequest](body)
	if err != nil {
		return nil, err
	}
	n := req.Node
	if n.ID == "" || n.Addr == "" {
		return nil, wire.Errorf(wire.CodeInvalid, "register: node ID and address are required")
	}
	if err := s.checkTimers(req); err != nil {
		s.log.Warn("meta: node refused: its timers do not fit the meta group's", "target", n.ID, "err", err)
		return nil, err
	}
	cur := s.Map().Node(n.ID)
	if cur != nil && cur.StoreID != "" && cur.StoreID != n.StoreID {
		return s.registerLostStore(ctx, n)
	}
	approval := s.cfg.NodeAdmission == AdmitApproved
	if approval && cur == nil && !admitted(s.Map(), n.ID) {
		// Confirm against the committed map before refusing: this
		// member's copy may be behind an approval.
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		if m.Node(n.ID) == nil && !admitted(m, n.ID) {
			return nil, s.refusedForApproval(ctx, m, n)
		}
	}
	code, res, err := s.propose(ctx, &command{Op: opRegisterNode, Node: &n, NeedApproval: approval})
	if err != nil {
		return nil, err
	}
	switch code {
	case resOK:
		if approval && cur == nil {
			s.log.Info("meta: admitted node registered", "target", n.ID, "addr", n.Addr)
		}
		return &wire.RegisterReply{Epoch: res.Epoch}, nil
	case resConflict:
		// The store changed after all (this member's map was behind).
		return s.registerLostStore(ctx, n)
	case resRefused:
		return nil, s.refusedForApproval(ctx, s.Map(), n)
	}
	return nil, wire.Errorf(wire.CodeInvalid, "register: %s", res.Err)
}

// registerLostStore re-registers a node that came back with a new store:
// whatever it held is gone, so every partition it masters fails over to the
// best complete slave in the same proposal (it stays on as a slave and is
// resynchronised in full). Only the leader has the replica reports this
// needs.
func (s *Server) registerLostStore(ctx context.Context, n placement.Node) (any, error) {
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "a node with a new store registers with the leader", Addr: s.leaderAddr(s.Map())}
	}
	s.det.forget(n.ID)
	for attempt := 0; attempt < 20; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		parts := lostStore(m, n.ID, s.det.view())
		code, res, err := s.propose(ctx, &command{Op: opUpdate, ExpectEpoch: m.Epoch, Node: &n, Partitions: parts})
		if err != nil {
			return nil, err
		}
		switch code {
		case resOK:
			s.log.Warn("meta: node came back with a new store: its data is gone", "target", n.ID, "failovers", len(parts), "epoch", res.Epoch)
			now := time.Now()
			for _, pc := range parts {
				kind := "failover"
				if pc.New.Master == "" {
					kind = "unavailable"
				}
				s.events.add(Event{Time: now, Kind: kind, Table: pc.Table, Partition: pc.Partition, Node: pc.New.Master, From: n.ID, Gen: pc.New.Gen, Epoch: res.Epoch})
			}
			return &wire.RegisterReply{Epoch: res.Epoch}, nil
		case resConflict:
			continue
		default:
			return nil, wire.Errorf(wire.CodeInvalid, "register: %s", res.Err)
		}
	}
	return nil, wire.Errorf(wire.CodeWait, "register: the map keeps changing, retry")
}

// handleHeartbeat acknowledges a data node's heartbeat, but only once a
// linearizable read has confirmed that this member still leads: the node's
// master lease runs from when it sent the heartbeat, and no other member
// can declare it down before the lease has expired.
func (s *Server) handleHeartbeat(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.HeartbeatRequest](body)
	if err != nil {
		return nil, err
	}
	id, term := s.Leader()
	if id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "heartbeats go to the meta leader", Addr: s.leaderAddr(s.Map())}
	}
	rctx, cancel := context.WithTimeout(ctx, max(s.cfg.HeartbeatInterval, 100*time.Millisecond))
	m, err := s.read(rctx)
	cancel()
	if err != nil {
		return nil, wire.Errorf(wire.CodeUnavailable, "confirm leadership: %v", err)
	}
	if id2, term2 := s.Leader(); id2 != id || term2 != term {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "leadership changed", Addr: s.leaderAddr(m)}
	}
	if !s.det.observe(term, req, time.Now()) {
		// The leader is declaring this node down: acknowledging now would
		// renew a master lease across the failover.
		return nil, wire.Errorf(wire.CodeUnavailable, "node %s is being declared down", req.Node)
	}
	if n := m.Node(req.Node); n != nil && n.State == placement.NodeDown {
		// Bring the node back up without waiting for the next tick.
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return &wire.HeartbeatReply{Epoch: m.Epoch}, nil
}

func (s *Server) handleCreateTable(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.CreateTableRequest](body)
	if err != nil {
		return nil, err
	}
	if err := validateCreate(req); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		if t := m.Table(req.Name); t != nil {
			return nil, wire.Errorf(wire.CodeTableExists, "table %q already exists", req.Name)
		}
		parts, warnings, err := assign(m, req)
		if err != nil {
			return nil, err
		}
		t := placement.Table{
			Name: req.Name, Replication: req.Replication, Mode: req.Mode,
			Fenced: req.Fenced || req.Mode == placement.ModeSync, MinInSync: req.MinInSync,
			Domain: req.Domain, Partitions: parts,
		}
		if t.Mode == placement.ModeSync {
			if t.MinInSync == 0 {
				t.MinInSync = defaultMinInSync(t.Replication)
			}
			// Every replica of a new partition is empty, hence in sync.
			for i := range t.Partitions {
				t.Partitions[i].InSync = t.Partitions[i].Replicas()
			}
		}
		code, res, err := s.propose(ctx, &command{Op: opCreateTable, ExpectEpoch: m.Epoch, Table: &t})
		if err != nil {
			return nil, err
		}
		switch code {
		case resOK:
			return &wire.TableReply{Epoch: res.Epoch, Table: *res.Table, Warnings: warnings}, nil
		case resConflict:
			if attempt < 20 {
				continue
			}
			return nil, wire.Errorf(wire.CodeWait, "create table: the map keeps changing, retry")
		case resExists:
			return nil, wire.Errorf(wire.CodeTableExists, "%s", res.Err)
		default:
			return nil, wire.Errorf(wire.CodeInvalid, "create table: %s", res.Err)
		}
	}
}

// validateCreate checks a create-table request before anything is
// proposed. A table name is 1 to maxTableName ASCII letters, digits, '_',
// '-' and '.', starting with a letter, a digit or '_': it can be typed in a
// shell, never reads as a flag, and is never "." or "..".
func validateCreate(req *wire.CreateTableRequest) error {
	if why := badTableName(req.Name); why != "" {
		return wire.Errorf(wire.CodeInvalid, "create table: invalid table name %q: %s", req.Name, why)
	}
	switch {
	case req.Partitions < 1 || req.Partitions > maxPartitions:
		return wire.Errorf(wire.CodeInvalid, "create table: partitions must be within 1..%d, got %d", maxPartitions, req.Partitions)
	case req.Replication < 1 || req.Replication > maxReplication:
		return wire.Errorf(wire.CodeInvalid, "create table: replication must be within 1..%d, got %d", maxReplication, req.Replication)
	case req.Mode != placement.ModeAsync && req.Mode != placement.ModeSync:
		return wire.Errorf(wire.CodeInvalid, "create table: unknown mode %d", req.Mode)
	case req.Domain > placement.DomainZone:
		return wire.Errorf(wire.CodeInvalid, "create table: unknown failure domain %d", req.Domain)
	case req.MinInSync < 0 || req.MinInSync > req.Replication:
		return wire.Errorf(wire.CodeInvalid, "create table: min in-sync %d outside 1..%d (the replication factor)", req.MinInSync, req.Replication)
	case req.MinInSync > 0 && req.Mode != placement.ModeSync:
		return wire.Errorf(wire.CodeInvalid, "create table: min in-sync applies to sync tables only")
	}
	return nil
}

// maxTableName is the longest table name, in characters.
const maxTableName = 64

// badTableName says what is wrong with name as a table name, or returns "".
func badTableName(name string) string {
	if name == "" {
		return "empty"
	}
	for _, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.') {
			return fmt.Sprintf("%q is not allowed (use letters, digits, '_', '-' and '.')", r)
		}
	}
	switch {
	case len(name) > maxTableName:
		return fmt.Sprintf("longer than %d characters", maxTableName)
	case name[0] == '-' || name[0] == '.':
		return fmt.Sprintf("starts with %q (start with a letter, a digit or '_')", name[0])
	}
	return ""
}

// defaultMinInSync is a majority of the replication factor.
func defaultMinInSync(replication int) int { return replication/2 + 1 }

// assign computes the replica assignment of a new table over the up data
// nodes with the placement package, with every partition at generation 1.
// Rules the topology cannot satisfy come back as warnings.
func assign(m *placement.Map, req *wire.CreateTableRequest) ([]placement.Partition, []string, error) {
	spec := planner.TableSpec{ID: m.NextTableID, Name: req.Name, Partitions: req.Partitions,
		Replication: req.Replication, Domain: req.Domain}
	parts, rep, err := planner.Place(plannerNodes(m), m.Tables, spec)
	if err != nil {
		return nil, nil, wire.Errorf(wire.CodeInvalid, "create table: %v", err)
	}
	for i := range parts {
		parts[i].ID = placement.PartitionID(i)
		parts[i].Gen = 1
		parts[i].State = placement.PartitionActive
	}
	var warnings []string
	for _, v := range rep.Violations {
		warnings = append(warnings, v.String())
	}
	return parts, append(warnings, rep.Warnings...), nil
}

func (s *Server) handleDropTable(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.DropTableRequest](body)
	if err != nil {
		return nil, err
	}
	code, res, err := s.propose(ctx, &command{Op: opDropTable, Name: req.Name})
	if err != nil {
		return nil, err
	}
	switch code {
	case resOK:
		return &wire.EpochReply{Epoch: res.Epoch}, nil
	case resNotFound:
		return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: res.Err, Epoch: res.Epoch}
	}
	return nil, wire.Errorf(wire.CodeInvalid, "drop table: %s", res.Err)
}

func (s *Server) handleStatus(_ context.Context, body []byte) (any, error) {
	req, err := decode[wire.StatusRequest](body)
	if err != nil {
		return nil, err
	}
	m := s.Map()
	id, term := s.Leader()
	if req.Leader && id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "status from the leader", Addr: s.leaderAddr(m)}
	}
	reply := &wire.StatusReply{
		Epoch: m.Epoch, LeaderID: id, LeaderAddr: s.leaderAddr(m),
		Self: s.cfg.ReplicaID, Term: term, Map: m,
		Role: s.raftRole(id), Applied: s.AppliedIndex(),
	}
	for _, mm := range m.Meta {
		reply.Members = append(reply.Members, wire.MemberStatus{MetaMember: mm, Leader: mm.ID == id})
	}
	leading := id == s.cfg.ReplicaID
	v := s.det.view()
	now := time.Now()
	for _, n := range m.Nodes {
		ns := wire.NodeStatus{Node: n, HeartbeatAgeMs: -1}
		if r := v.nodes[n.ID]; leading && r != nil && v.term == term {
			ns.HeartbeatAgeMs = now.Sub(r.last).Milliseconds()
			for _, rs := range r.replicas {
				ns.Replicas = append(ns.Replicas, rs)
			}
			sortReplicas(ns.Replicas)
		}
		reply.Nodes = append(reply.Nodes, ns)
	}
	return reply, nil
}

func sortReplicas(rs []wire.ReplicaStatus) {
	slices.SortFunc(rs, func(a, b wire.ReplicaStatus) int {
		if c := cmp.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}

// handlePlan answers a dry run: the moves a rebalance would make now, with
// counts, without changing anything.
func (s *Server) handlePlan(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.PlanRequest](body)
	if err != nil {
		return nil, err
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	tables := m.Tables
	if req.Table != "" {
		t := m.Table(req.Table)
		if t == nil {
			return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", req.Table), Epoch: m.Epoch}
		}
		tables = []placement.Table{*t}
	}
	var plan *planner.Plan
	if req.MastersOnly {
		plan, err = planner.RebalanceMasters(plannerNodes(m), tables)
	} else {
		plan, err = planner.Rebalance(plannerNodes(m), tables)
	}
	if err != nil {
		return nil, wire.Errorf(wire.CodeInvalid, "plan: %v", err)
	}
	names := make(map[placement.TableID]string, len(m.Tables))
	for _, t := range m.Tables {
		names[t.ID] = t.Name
	}
	reply := &wire.PlanReply{
		Epoch:         m.Epoch,
		ReplicaMoves:  plan.Summary.ReplicaMoves,
		MasterChanges: plan.Summary.MasterChanges,
		Minimum:       plan.Summary.MinReplicaMoves,
		Summary:       plan.String(),
		Warnings:      plan.Report.Warnings,
	}
	for _, v := range plan.Report.Violations {
		reply.Warnings = append(reply.Warnings, v.String())
	}
	for _, mv := range plan.Moves {
		reply.Moves = append(reply.Moves, wire.PlanMove{Table: names[mv.Table], Partition: mv.Partition,
			Kind: mv.Kind.String(), From: mv.From, To: mv.To})
	}
	return reply, nil
}
