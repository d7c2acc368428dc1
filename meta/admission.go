package meta

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Admission says how the meta group admits a data node ID it does not
// know yet. Nodes already in the map re-register freely either way.
type Admission uint8

const (
	// AdmitOpen places every node that registers (and, when the cluster
	// authenticates, proved the secret or its certificate).
	AdmitOpen Admission = iota
	// AdmitApproved registers a new node ID only once an administrator
	// approved it (NodeApprove, before or after the node first asked);
	// until then its registrations are refused and it is listed as
	// pending.
	AdmitApproved
)

// String returns the admission's configuration name.
func (a Admission) String() string {
	switch a {
	case AdmitOpen:
		return "open"
	case AdmitApproved:
		return "admin-approved"
	}
	return fmt.Sprintf("Admission(%d)", uint8(a))
}

// ParseAdmission parses a configuration name ("open", "admin-approved";
// empty means open).
func ParseAdmission(s string) (Admission, error) {
	switch s {
	case "", "open":
		return AdmitOpen, nil
	case "admin-approved":
		return AdmitApproved, nil
	}
	return 0, fmt.Errorf("node admission %q: want open or admin-approved", s)
}

const (
	// maxPending bounds the nodes a leader remembers as waiting for
	// approval; the one heard from least recently makes room.
	maxPending = 256
	// pendingExpiry forgets a pending node that stopped asking.
	pendingExpiry = 10 * time.Minute
	// maxApproved bounds the approvals waiting for their node.
	maxApproved = 1024
	// maxNodeIDLen bounds an approved node ID.
	maxNodeIDLen = 256
)

// pendingNodes remembers, on the leader, the nodes whose registration was
// refused for want of approval, so that operators can see and approve
// them. It is not replicated: a node keeps asking, so a new leader learns
// of it again within a heartbeat interval.
type pendingNodes struct {
	mu    sync.Mutex
	nodes map[placement.NodeID]*wire.PendingNode
}

// note records a refused registration of n from remote.
func (p *pendingNodes) note(n placement.Node, remote string, now time.Time) (first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodes == nil {
		p.nodes = make(map[placement.NodeID]*wire.PendingNode)
	}
	ms := now.UnixMilli()
	if e := p.nodes[n.ID]; e != nil {
		e.Node, e.RemoteAddr, e.LastMs = n, remote, ms
		e.Attempts++
		return false
	}
	if len(p.nodes) >= maxPending {
		var oldest placement.NodeID
		var at int64
		for id, e := range p.nodes {
			if oldest == "" || e.LastMs < at {
				oldest, at = id, e.LastMs
			}
		}
		delete(p.nodes, oldest)
	}
	p.nodes[n.ID] = &wire.PendingNode{Node: n, RemoteAddr: remote, FirstMs: ms, LastMs: ms, Attempts: 1}
	return true
}

// forget drops id and reports whether it was pending.
func (p *pendingNodes) forget(id placement.NodeID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.nodes[id]
	delete(p.nodes, id)
	return ok
}

// list returns the nodes heard from within pendingExpiry that are not
// in m, by ID, and forgets the others.
func (p *pendingNodes) list(m *placement.Map, now time.Time) []wire.PendingNode {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wire.PendingNode, 0, len(p.nodes))
	for id, e := range p.nodes {
		if now.Sub(time.UnixMilli(e.LastMs)) > pendingExpiry || m.Node(id) != nil {
			delete(p.nodes, id)
			continue
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b wire.PendingNode) int {
		switch {
		case a.Node.ID < b.Node.ID:
			return -1
		case a.Node.ID > b.Node.ID:
			return 1
		}
		return 0
	})
	return out
}

// checkTimers refuses a node whose master lease and heartbeat interval do
// not fit this member's DownTimeout: such a node could still take fenced
// writes as master after meta declared it down and promoted another.
func (s *Server) checkTimers(req *wire.RegisterRequest) error {
	if req.LeaseMs <= 0 || req.HeartbeatMs <= 0 {
		return nil
	}
	lease := time.Duration(req.LeaseMs) * time.Millisecond
	hb := time.Duration(req.HeartbeatMs) * time.Millisecond
	if lease+2*hb > s.cfg.DownTimeout {
		return wire.Errorf(wire.CodeRefused,
			"register %s: its MasterLease (%v) plus two HeartbeatIntervals (%v) exceed the meta group's DownTimeout (%v): "+
				"a master could still accept writes when it is replaced; shorten the node's lease or lengthen DownTimeout",
			req.Node.ID, lease, hb, s.cfg.DownTimeout)
	}
	if hb > s.cfg.DownTimeout/2 {
		return wire.Errorf(wire.CodeRefused,
			"register %s: its HeartbeatInterval (%v) is more than half the meta group's DownTimeout (%v): it would be declared down between heartbeats",
			req.Node.ID, hb, s.cfg.DownTimeout)
	}
	return nil
}

// admitted reports whether id may register in m under AdmitApproved: it
// is approved, or the data node of a meta member.
func admitted(m *placement.Map, id placement.NodeID) bool {
	return slices.Contains(m.Approved, id) || slices.ContainsFunc(m.Meta, func(mm placement.MetaMember) bool { return mm.Node == id })
}

// refusedForApproval answers a registration that needs an approval it
// does not have, remembering the node as pending. While the meta members
// have not all recorded themselves and their data nodes (they do so as
// they start), a node that may be one of theirs is asked to wait instead.
func (s *Server) refusedForApproval(ctx context.Context, m *placement.Map, n placement.Node) error {
	if n.ID == s.cfg.LocalNode || slices.ContainsFunc(m.Meta, func(mm placement.MetaMember) bool {
		return mm.RPCAddr == "" || (mm.RPCAddr == n.Addr && mm.Node == "")
	}) {
		return wire.Errorf(wire.CodeWait, "node %s: its meta member has not recorded it yet, retry", n.ID)
	}
	if id, _ := s.Leader(); id != s.cfg.ReplicaID {
		// The leader keeps the list of pending nodes.
		return &wire.Error{Code: wire.CodeNotLeader, Msg: "a node waiting for approval registers with the meta leader", Addr: s.leaderAddr(m)}
	}
	remote := ""
	if p := rpc.PeerFromContext(ctx); p != nil {
		remote = p.Remote
	}
	if s.pending.note(n, remote, time.Now()) {
		s.log.Warn("meta: a new node waits for approval", "target", n.ID, "addr", n.Addr, "remote", remote)
	}
	return wire.Errorf(wire.CodeRefused, "node %s is not admitted yet: this cluster admits new nodes only once an administrator approves them (zeppelin node approve %s)", n.ID, n.ID)
}

// nodeApproval handles NodeApprove, NodeRevoke and NodePending.
func (s *Server) nodeApproval(ctx context.Context, req *wire.NodeAdminRequest) (*wire.NodeAdminReply, error) {
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if req.Op == wire.NodePending {
		return &wire.NodeAdminReply{Epoch: m.Epoch, Pending: s.pending.list(m, time.Now()), Approved: slices.Clone(m.Approved)}, nil
	}
	if req.Node == "" || len(req.Node) > maxNodeIDLen {
		return nil, wire.Errorf(wire.CodeInvalid, "node ID: want 1 to %d bytes, got %d", maxNodeIDLen, len(req.Node))
	}
	na := &nodeAdmin{Node: req.Node, Op: nodeOpApprove}
	if req.Op == wire.NodeRevoke {
		na.Op = nodeOpRevoke
		wasPending := s.pending.forget(req.Node)
		if wasPending && !slices.Contains(m.Approved, req.Node) {
			return &wire.NodeAdminReply{Epoch: m.Epoch}, nil
		}
	}
	epoch, err := s.proposeNodeAdmin(ctx, na)
	if err != nil {
		return nil, err
	}
	if req.Op == wire.NodeApprove {
		s.pending.forget(req.Node)
		s.log.Info("meta: node approved", "target", req.Node)
	} else {
		s.log.Info("meta: node approval revoked", "target", req.Node)
	}
	return &wire.NodeAdminReply{Epoch: epoch}, nil
}

// applyApproval records or withdraws the approval of a node ID not
// registered yet.
func applyApproval(m *placement.Map, na *nodeAdmin) (uint64, *placement.Table, error) {
	has := slices.Contains(m.Approved, na.Node)
	switch na.Op {
	case nodeOpApprove:
		if m.Node(na.Node) != nil {
			return resInvalid, nil, fmt.Errorf("node %s is already a member of the cluster", na.Node)
		}
		if has {
			return resOK, nil, nil
		}
		if len(m.Approved) >= maxApproved {
			return resInvalid, nil, fmt.Errorf("%d approvals wait for their nodes already: revoke some first", len(m.Approved))
		}
		m.Approved = append(m.Approved, na.Node)
		slices.Sort(m.Approved)
	case nodeOpRevoke:
		if !has {
			return resNotFound, nil, fmt.Errorf("node %s is neither approved nor waiting for approval", na.Node)
		}
		m.Approved = withoutID(m.Approved, na.Node)
	}
	m.Epoch++
	return resOK, nil, nil
}

// withoutID returns ids without id, nil when nothing is left (as a
// decoded map has it).
func withoutID(ids []placement.NodeID, id placement.NodeID) []placement.NodeID {
	ids = slices.DeleteFunc(ids, func(x placement.NodeID) bool { return x == id })
	if len(ids) == 0 {
		return nil
	}
	return ids
}
