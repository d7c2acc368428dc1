package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Membership changes run on the leader, one Raft configuration change at
// a time (the group uses ordered configuration changes: each request
// names the configuration it was computed from, and dragonboat rejects it
// if another change was applied meanwhile).
//
// The Raft membership is the truth; the map's Meta list follows it and
// adds each member's RPC address. An added member is recorded with its
// Raft address only; it fills in its RPC address when it has started and
// registers itself. A removed member leaves the Raft group first and the
// map after, so a member that is still in the group is never missing
// from the map for long. A removed member that applies its removal
// unloads its replica (dragonboat does), so it stops answering for the
// group; one that never learns of it keeps its stale state until its
// process is stopped, which the operator does after the removal.
//
// Every change is checked against the members that are live right now: a
// member other than the leader is live when it answers a status request
// within probeTimeout naming this leader in the current term. A follower
// learns the leader only from the leader's own Raft messages and forgets
// it within an election timeout when they stop (it becomes a pre-vote
// candidate), so such an answer shows that both its RPC listener and its
// Raft link to the leader work. A member that has never recorded its RPC
// address (added but not started) is not live. The checks follow etcd's
// strict reconfiguration check:
//
//   - a removal must leave at least a quorum of the remaining members
//     live;
//   - an addition must leave at least a quorum of the grown group live
//     without counting the new member, so that the group does not stall
//     until the new member has started and caught up; the one exception
//     is growing a single-member group, which cannot be done otherwise.
//
// The leader never removes itself directly: dragonboat makes a replica
// that applies its own removal step down and unload itself, so it could
// neither finish the change (the map update) nor answer. Instead it hands
// leadership to another live member and answers not-leader with that
// member's address; the caller retries there, and the new leader removes
// its predecessor as an ordinary follower.

// registerMembership installs the handlers that change the meta group's
// membership.
func (s *Server) registerMembership(srv *rpc.Server) {
	srv.Handle(wire.KindMetaMembers, s.handleMembers)
}

// maxRejections bounds how often one change is recomputed after a
// concurrent membership change made dragonboat reject it.
const maxRejections = 20

func (s *Server) handleMembers(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.MemberChangeRequest](body)
	if err != nil {
		return nil, err
	}
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "membership changes are run by the meta leader", Addr: s.leaderAddr(s.Map())}
	}
	switch req.Op {
	case wire.MemberList:
	case wire.MemberAdd:
		var reply *wire.MemberChangeReply
		if reply, err = s.addMember(ctx, req.ID, req.RaftAddr); reply != nil || err != nil {
			return reply, err
		}
	case wire.MemberRemove:
		err = s.removeMember(ctx, req.ID)
	case wire.MemberReplace:
		err = s.replaceMember(ctx, req.Replace, req.ID, req.RaftAddr)
	default:
		return nil, wire.Errorf(wire.CodeInvalid, "meta members: unknown operation %d", req.Op)
	}
	if err != nil {
		return nil, err
	}
	v, err := s.groupView(ctx)
	if err != nil {
		return nil, err
	}
	return &wire.MemberChangeReply{Epoch: v.m.Epoch, Members: v.statuses()}, nil
}

// RaftMembers returns this member's own view of the Raft membership,
// replica IDs to Raft addresses, as it has applied it (nil before it has
// applied any, or once it has been removed and unloaded). It is meant for
// tests and tools.
func (s *Server) RaftMembers() map[uint64]string {
	info := s.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if info == nil {
		return nil
	}
	for _, si := range info.ShardInfoList {
		if si.ShardID == shardID && !si.Pending {
			return maps.Clone(si.Replicas)
		}
	}
	return nil
}

// groupState is the group as the leader sees it for one decision.
type groupState struct {
	self uint64
	mem  *dragonboat.Membership
	m    *placement.Map
	// live holds the voting members that are live (see the comment at
	// the top of this file).
	live map[uint64]bool
	// leader is the leader's replica ID when the view was taken.
	leader uint64
}

// groupView reads the membership and the map (both linearizably) and
// probes the members.
func (s *Server) groupView(ctx context.Context) (*groupState, error) {
	mem, err := s.membership(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	leader, term := s.Leader()
	if leader != s.cfg.ReplicaID {
		// Leadership moved: the probes would find no member naming
		// this one, and the change belongs to the new leader anyway.
		return nil, &wire.Error{Code: wire.CodeNotLeader, Msg: "leadership changed", Addr: s.leaderAddr(m)}
	}
	return &groupState{self: s.cfg.ReplicaID, mem: mem, m: m, leader: leader, live: s.probeMembers(ctx, mem, m, term)}, nil
}

// membership reads the group's Raft membership by a linearizable read.
func (s *Server) membership(ctx context.Context) (*dragonboat.Membership, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		mem, err := s.nh.SyncGetShardMembership(rctx, shardID)
		cancel()
		if err == nil {
			return mem, nil
		}
		if err := s.retryable(ctx, err); err != nil {
			return nil, fmt.Errorf("read the meta membership: %w", err)
		}
	}
}

// probeTimeout bounds one liveness probe.
func (s *Server) probeTimeout() time.Duration { return max(s.callTimeout()/2, 250*time.Millisecond) }

// probeMembers returns the voting members that are live: this member, and
// every other one that answers a status request within probeTimeout
// naming this member as the leader of term.
func (s *Server) probeMembers(ctx context.Context, mem *dragonboat.Membership, m *placement.Map, term uint64) map[uint64]bool {
	live := make(map[uint64]bool, len(mem.Nodes))
	if _, ok := mem.Nodes[s.cfg.ReplicaID]; ok {
		live[s.cfg.ReplicaID] = true
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for id := range mem.Nodes {
		addr := rpcAddrOf(m, id)
		if id == s.cfg.ReplicaID || addr == "" {
			continue
		}
		wg.Add(1)
		if !s.group.Go(func() {
			defer wg.Done()
			if s.probe(ctx, id, addr, term) {
				mu.Lock()
				live[id] = true
				mu.Unlock()
			}
		}) {
			wg.Done() // stopping: the member counts as not live
		}
	}
	wg.Wait()
	return live
}

// probe reports whether member id answers at addr naming this member as
// the leader of term. A member that answers without naming it yet (right
// after an election) is asked again until probeTimeout has passed.
func (s *Server) probe(ctx context.Context, id uint64, addr string, term uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, s.probeTimeout())
	defer cancel()
	for {
		var st wire.StatusReply
		if err := s.pool.Call(ctx, addr, wire.KindMetaStatus, &wire.StatusRequest{}, &st); err != nil {
			return false
		}
		if st.Self != id {
			return false // another process answers there
		}
		if st.LeaderID == s.cfg.ReplicaID && st.Term == term {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func rpcAddrOf(m *placement.Map, id uint64) string {
	if mm := metaMember(m, id); mm != nil {
		return mm.RPCAddr
	}
	return ""
}

func metaMember(m *placement.Map, id uint64) *placement.MetaMember {
	for i := range m.Meta {
		if m.Meta[i].ID == id {
			return &m.Meta[i]
		}
	}
	return nil
}

// statuses lists the members, voting members then non-voting ones, each
// by ID.
func (v *groupState) statuses() []wire.MemberStatus {
	var out []wire.MemberStatus
	add := func(nodes map[uint64]string, voting bool) {
		for _, id := range slices.Sorted(maps.Keys(nodes)) {
			mm := placement.MetaMember{ID: id, RaftAddr: nodes[id], RPCAddr: rpcAddrOf(v.m, id)}
			out = append(out, wire.MemberStatus{MetaMember: mm, Leader: id == v.leader, Voting: voting, Reachable: v.live[id]})
		}
	}
	add(v.mem.Nodes, true)
	add(v.mem.NonVotings, false)
	return out
}

func (v *groupState) voters() []uint64 { return slices.Sorted(maps.Keys(v.mem.Nodes)) }

func (v *groupState) isVoter(id uint64) bool {
	_, ok := v.mem.Nodes[id]
	return ok
}

// memberAt returns the member whose Raft address is addr, or 0.
func (v *groupState) memberAt(addr string) uint64 {
	for _, nodes := range []map[uint64]string{v.mem.Nodes, v.mem.NonVotings, v.mem.Witnesses} {
		for id, a := range nodes {
			if a == addr {
				return id
			}
		}
	}
	return 0
}

// liveOf returns the members of ids that are live.
func (v *groupState) liveOf(ids []uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if v.live[id] {
			out = append(out, id)
		}
	}
	return out
}

func quorum(n int) int { return n/2 + 1 }

func without(ids []uint64, id uint64) []uint64 {
	return slices.DeleteFunc(slices.Clone(ids), func(x uint64) bool { return x == id })
}

func idList(ids []uint64) string {
	if len(ids) == 0 {
		return "none"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ", ")
}

// checkAdd refuses adding member id at raftAddr when the group would
// stall until it has started: fewer live members than the grown group's
// quorum. A single-member group may always grow.
func (v *groupState) checkAdd(id uint64) error {
	voters := v.voters()
	live := v.liveOf(voters)
	n := len(voters) + 1
	if len(voters) > 1 && len(live) < quorum(n) {
		return wire.Errorf(wire.CodeInvalid,
			"add member %d: the group would have %d members and need %d to commit, but only %d are live (%s) until the new member has started and caught up; replace a member that is down instead",
			id, n, quorum(n), len(live), idList(live))
	}
	return nil
}

// checkRemove refuses removing member id when it is the last member or
// when fewer than a quorum of the remaining members are live.
func (v *groupState) checkRemove(id uint64) error {
	rest := without(v.voters(), id)
	if len(rest) == 0 {
		return wire.Errorf(wire.CodeInvalid, "remove member %d: it is the only member of the meta group", id)
	}
	live := v.liveOf(rest)
	if len(live) < quorum(len(rest)) {
		return wire.Errorf(wire.CodeInvalid,
			"remove member %d: of the %d members left (%s) only %d would be live (%s), fewer than their quorum of %d; bring the members that are down back, or replace them, first",
			id, len(rest), idList(rest), len(live), idList(live), quorum(len(rest)))
	}
	return nil
}

// checkRaftAddr validates the Raft address of a member to add.
func checkRaftAddr(id uint64, addr string) error {
	if addr == "" {
		return wire.Errorf(wire.CodeInvalid, "add member %d: a Raft address is required", id)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return wire.Errorf(wire.CodeInvalid, "add member %d: Raft address %q: %v", id, addr, err)
	}
	if host == "" {
		return wire.Errorf(wire.CodeInvalid, "add member %d: Raft address %q has no host", id, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return wire.Errorf(wire.CodeInvalid, "add member %d: Raft address %q: the port must be within 1..65535", id, addr)
	}
	return nil
}

// checkNew refuses a new member that clashes with the group: an ID in use
// or used before, or a Raft address in use.
func (v *groupState) checkNew(id uint64, raftAddr string) error {
	if id == 0 {
		return wire.Errorf(wire.CodeInvalid, "add member: the ID must be ≥ 1")
	}
	for _, nodes := range []map[uint64]string{v.mem.Nodes, v.mem.NonVotings, v.mem.Witnesses} {
		if addr, ok := nodes[id]; ok {
			return wire.Errorf(wire.CodeInvalid, "add member %d: it is a member already (Raft address %s)", id, addr)
		}
	}
	if _, ok := v.mem.Removed[id]; ok {
		return wire.Errorf(wire.CodeInvalid, "add member %d: the ID belonged to a removed member and cannot be used again; pick a new ID", id)
	}
	if other := v.memberAt(raftAddr); other != 0 {
		return wire.Errorf(wire.CodeInvalid, "add member %d: Raft address %s is member %d's", id, raftAddr, other)
	}
	return nil
}

// addMember adds member id at raftAddr. When it grows a single-member
// group, which cannot commit again before the new member runs, it leaves
// the map to the new member (which records itself when it starts) and
// returns the reply, made from what this member knows; otherwise it
// returns a nil reply.
func (s *Server) addMember(ctx context.Context, id uint64, raftAddr string) (*wire.MemberChangeReply, error) {
	if id == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "add member: the ID must be ≥ 1")
	}
	if err := checkRaftAddr(id, raftAddr); err != nil {
		return nil, err
	}
	v, err := s.groupView(ctx)
	if err != nil {
		return nil, err
	}
	if err := v.checkNew(id, raftAddr); err != nil {
		return nil, err
	}
	if len(v.voters()) > 1 {
		return nil, s.addStep(ctx, v, id, raftAddr)
	}
	if err := s.addRaft(ctx, v, id, raftAddr); err != nil {
		return nil, err
	}
	grown := *v
	grown.mem = &dragonboat.Membership{Nodes: maps.Clone(v.mem.Nodes), NonVotings: v.mem.NonVotings}
	grown.mem.Nodes[id] = raftAddr
	return &wire.MemberChangeReply{Epoch: v.m.Epoch, Members: grown.statuses()}, nil
}

func (s *Server) removeMember(ctx context.Context, id uint64) error {
	v, err := s.groupView(ctx)
	if err != nil {
		return err
	}
	if !v.isVoter(id) {
		if _, ok := v.mem.Removed[id]; ok {
			// Removed already (a retry of this call, say): finish the
			// map's part if it was left undone.
			return s.forgetMember(ctx, id)
		}
		return &wire.Error{Code: wire.CodeNotFound, Msg: fmt.Sprintf("remove member %d: not a member of the meta group (members: %s)", id, idList(v.voters()))}
	}
	if err := v.checkRemove(id); err != nil {
		return err
	}
	return s.removeStep(ctx, v, id)
}

// replaceMember adds member id at raftAddr and removes member dead, in
// the order that keeps the group able to commit throughout: the addition
// first when a quorum of the grown group is live without the new member
// (the group keeps its redundancy meanwhile), else the removal first (a
// three-member group with one member down, say). Repeating a replacement
// that was interrupted finishes what is left of it.
func (s *Server) replaceMember(ctx context.Context, dead, id uint64, raftAddr string) error {
	switch {
	case dead == 0:
		return wire.Errorf(wire.CodeInvalid, "replace member: name the member to replace (ID ≥ 1)")
	case id == 0:
		return wire.Errorf(wire.CodeInvalid, "replace member %d: the new member's ID must be ≥ 1", dead)
	case id == dead:
		return wire.Errorf(wire.CodeInvalid, "replace member %d: the new member needs a new ID (IDs of removed members are never used again)", dead)
	}
	if err := checkRaftAddr(id, raftAddr); err != nil {
		return err
	}
	v, err := s.groupView(ctx)
	if err != nil {
		return err
	}
	added := false
	if addr, ok := v.mem.Nodes[id]; ok && addr == raftAddr {
		// Added already: by an earlier attempt of this replacement, or
		// before the former leader handed over to remove itself.
		added = true
	} else if err := v.checkNew(id, raftAddr); err != nil {
		return err
	}
	if !v.isVoter(dead) {
		if _, ok := v.mem.Removed[dead]; ok {
			// Removed already, by an earlier attempt of this
			// replacement: finish what is left.
			if err := s.forgetMember(ctx, dead); err != nil || added {
				return err
			}
			return s.addStep(ctx, v, id, raftAddr)
		}
		return &wire.Error{Code: wire.CodeNotFound, Msg: fmt.Sprintf("replace member %d: not a member of the meta group (members: %s)", dead, idList(v.voters()))}
	}
	if added {
		if err := v.checkRemove(dead); err != nil {
			return err
		}
		return s.removeStep(ctx, v, dead)
	}
	voters := v.voters()
	live := v.liveOf(voters)
	rest := without(voters, dead)
	liveRest := v.liveOf(rest)
	n := len(voters)
	switch {
	case len(live) >= quorum(n+1) && len(liveRest) >= quorum(n):
		if err := s.addStep(ctx, v, id, raftAddr); err != nil {
			return err
		}
		return s.removeStep(ctx, nil, dead)
	case len(rest) > 0 && len(liveRest) >= quorum(n):
		// quorum(n) ≥ quorum(n-1): the smaller group can commit too.
		if err := s.removeStep(ctx, v, dead); err != nil {
			return err
		}
		return s.addStep(ctx, nil, id, raftAddr)
	}
	if n == 1 {
		return wire.Errorf(wire.CodeInvalid,
			"replace member %d: it is the only member; add the new member, start it, then remove member %d", dead, dead)
	}
	return wire.Errorf(wire.CodeInvalid,
		"replace member %d: only %d of the %d members are live (%s); the group could not commit the change in either order",
		dead, len(live), n, idList(live))
}

// addStep adds member id to the Raft group and records it in the map.
// v is the view the change was checked against (nil: take a new one).
func (s *Server) addStep(ctx context.Context, v *groupState, id uint64, raftAddr string) error {
	if err := s.addRaft(ctx, v, id, raftAddr); err != nil {
		return err
	}
	return s.recordMember(ctx, id, raftAddr)
}

// addRaft adds member id to the Raft group. v is the view the change was
// checked against (nil: take a new one). After a rejection it recomputes
// the change on a new view, checks included.
func (s *Server) addRaft(ctx context.Context, v *groupState, id uint64, raftAddr string) error {
	for attempt := 0; ; attempt++ {
		if v == nil {
			var err error
			if v, err = s.groupView(ctx); err != nil {
				return err
			}
			if addr, ok := v.mem.Nodes[id]; ok {
				if addr != raftAddr {
					return wire.Errorf(wire.CodeInvalid, "add member %d: it was added meanwhile with Raft address %s", id, addr)
				}
				return nil // an earlier attempt committed
			}
			if err := v.checkNew(id, raftAddr); err != nil {
				return err
			}
		}
		if err := v.checkAdd(id); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		err := s.nh.SyncRequestAddReplica(rctx, shardID, id, raftAddr, v.mem.ConfigChangeID)
		cancel()
		if err == nil {
			s.log.Info("meta: member added", "id", id, "raft", raftAddr)
			return nil
		}
		if err := s.configRetry(ctx, err, attempt, "add member %d", id); err != nil {
			return err
		}
		v = nil
	}
}

// removeStep removes member id from the Raft group, then from the map. v
// is the view the change was checked against (nil: take a new one). The
// leader does not remove itself: it hands leadership over and answers
// not-leader (see the comment at the top of this file).
func (s *Server) removeStep(ctx context.Context, v *groupState, id uint64) error {
	for attempt := 0; ; attempt++ {
		if v == nil {
			var err error
			if v, err = s.groupView(ctx); err != nil {
				return err
			}
			if !v.isVoter(id) {
				break // an earlier attempt committed
			}
			if err := v.checkRemove(id); err != nil {
				return err
			}
		}
		if id == s.cfg.ReplicaID {
			return s.handOver(ctx, v)
		}
		rctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		err := s.nh.SyncRequestDeleteReplica(rctx, shardID, id, v.mem.ConfigChangeID)
		cancel()
		if err == nil {
			s.log.Info("meta: member removed", "id", id)
			break
		}
		if err := s.configRetry(ctx, err, attempt, "remove member %d", id); err != nil {
			return err
		}
		v = nil
	}
	return s.forgetMember(ctx, id)
}

// configRetry decides whether a configuration change that failed with err
// is tried again (on a new view): it returns nil if so, else the error to
// give up with. A rejection means another change was applied first.
func (s *Server) configRetry(ctx context.Context, err error, attempt int, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, dragonboat.ErrRejected) {
		if attempt >= maxRejections {
			return wire.Errorf(wire.CodeWait, "%s: the membership keeps changing, retry", what)
		}
		return nil
	}
	if err := s.retryable(ctx, err); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// handOver asks another live member of the group to take the leadership
// over, so that it can remove this member, and answers not-leader with
// that member's address once it leads.
func (s *Server) handOver(ctx context.Context, v *groupState) error {
	others := v.liveOf(without(v.voters(), s.cfg.ReplicaID))
	if len(others) == 0 {
		return wire.Errorf(wire.CodeInvalid, "remove member %d: it leads and no other member is live to take over", s.cfg.ReplicaID)
	}
	target := others[0]
	s.log.Info("meta: handing leadership over to be removed", "to", target)
	if err := s.nh.RequestLeaderTransfer(shardID, target); err != nil {
		return fmt.Errorf("remove member %d: hand leadership to member %d: %w", s.cfg.ReplicaID, target, err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.NewTimer(s.callTimeout())
	defer deadline.Stop()
	for {
		if id, _ := s.Leader(); id != 0 && id != s.cfg.ReplicaID {
			return &wire.Error{Code: wire.CodeNotLeader, Addr: s.leaderAddr(s.Map()),
				Msg: fmt.Sprintf("member %d handed leadership to member %d, which removes it", s.cfg.ReplicaID, id)}
		}
		select {
		case <-ctx.Done():
			return wire.Errorf(wire.CodeUnavailable, "remove member %d: leadership not handed over: %v", s.cfg.ReplicaID, ctx.Err())
		case <-s.stop:
			return errClosed
		case <-deadline.C:
			return wire.Errorf(wire.CodeUnavailable, "remove member %d: member %d did not take the leadership over in time, retry", s.cfg.ReplicaID, target)
		case <-t.C:
		}
	}
}

// recordMember records an added member with its Raft address, unless it
// has recorded itself already (it fills in its RPC address when it
// starts).
func (s *Server) recordMember(ctx context.Context, id uint64, raftAddr string) error {
	for range maxRejections {
		m, err := s.read(ctx)
		if err != nil {
			return err
		}
		if mm := metaMember(m, id); mm != nil && mm.RaftAddr == raftAddr {
			return nil
		}
		code, res, err := s.propose(ctx, &command{Op: opSetMember, ExpectEpoch: m.Epoch, Member: &placement.MetaMember{ID: id, RaftAddr: raftAddr}})
		if err != nil {
			return fmt.Errorf("record member %d: %w", id, err)
		}
		switch code {
		case resOK:
			return nil
		case resConflict:
			continue
		}
		return wire.Errorf(wire.CodeInvalid, "record member %d: %s", id, res.Err)
	}
	return wire.Errorf(wire.CodeWait, "record member %d: the map keeps changing, retry", id)
}

// forgetMember drops a removed member from the map.
func (s *Server) forgetMember(ctx context.Context, id uint64) error {
	code, res, err := s.propose(ctx, &command{Op: opRemoveMember, Member: &placement.MetaMember{ID: id}})
	if err != nil {
		return fmt.Errorf("forget member %d: %w", id, err)
	}
	switch code {
	case resOK, resNotFound:
		return nil
	}
	return wire.Errorf(wire.CodeInvalid, "forget member %d: %s", id, res.Err)
}

// applyRemoveMember drops a member from the map's list of meta members.
func applyRemoveMember(m *placement.Map, mm *placement.MetaMember) (uint64, *placement.Table, error) {
	if mm == nil || mm.ID == 0 {
		return resInvalid, nil, fmt.Errorf("remove member: no member ID")
	}
	i := slices.IndexFunc(m.Meta, func(x placement.MetaMember) bool { return x.ID == mm.ID })
	if i < 0 {
		return resNotFound, nil, fmt.Errorf("remove member: member %d is not in the map", mm.ID)
	}
	m.Meta = slices.Delete(m.Meta, i, i+1)
	m.Epoch++
	return resOK, nil, nil
}
