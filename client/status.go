package client

import (
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Status is the cluster status as the meta leader sees it, as Status
// returns it.
type Status struct {
	// Epoch is the epoch of the leader's map.
	Epoch placement.Epoch
	// LeaderID is the meta leader's replica ID in the Raft group, and
	// LeaderAddr its RPC address.
	LeaderID   uint64
	LeaderAddr string
	// Self is the replica ID of the member that answered: the leader.
	Self uint64
	// Term is the Raft term the leader leads.
	Term uint64
	// Role is the answering member's Raft role ("leader" here; "follower",
	// "non-voting" or "candidate" for a member that is not the leader).
	Role string
	// Applied is the index of the last Raft entry the leader's state
	// machine applied.
	Applied uint64
	// Members are the meta group's members, as the map lists them.
	Members []MemberStatus
	// Nodes are the data nodes of the map, with their heartbeat ages and
	// the replica states they last reported.
	Nodes []NodeStatus
	// Map is the leader's cluster map.
	Map *placement.Map
}

// MemberStatus is one meta member in a Status. MetaMembers says more
// about each member: see MetaMemberStatus.
type MemberStatus struct {
	// ID is the member's replica ID in the Raft group.
	ID uint64
	// RaftAddr is the address of the member's Raft transport.
	RaftAddr string
	// RPCAddr is the member's RPC address; it is empty until a member
	// that was added has started and recorded itself.
	RPCAddr string
	// Node is the ID of the data node in the member's process, if any.
	Node placement.NodeID
	// Leader is set for the member leading the group.
	Leader bool
}

// NodeStatus is the meta leader's view of one data node in a Status.
type NodeStatus struct {
	// Node is the node's entry in the map.
	Node placement.Node
	// HeartbeatAgeMs is the time in milliseconds since the leader last
	// heard from the node, -1 when it has not heard from it since it
	// became leader.
	HeartbeatAgeMs int64
	// Replicas are the node's replicas as its last heartbeat reported
	// them (none when it has not reported since the leader was elected).
	Replicas []ReplicaStatus
}

// NodeReport is a data node's own report of its replicas, as NodeStatus
// returns it.
type NodeReport struct {
	// Node is the node's ID.
	Node placement.NodeID
	// Epoch is the epoch of the map the node serves under.
	Epoch placement.Epoch
	// Replicas are the node's partition replicas.
	Replicas []ReplicaStatus
}

// ReplicaStatus is one partition replica as its node reports it.
type ReplicaStatus struct {
	// Table and Partition name the partition.
	Table     placement.TableID
	Partition placement.PartitionID
	// Role is the replica's role on its node.
	Role Role
	// State is the replica's replication state.
	State ReplicaState
	// Gen and Seq are the generation and sequence of the last record the
	// replica holds.
	Gen uint64
	Seq uint64
	// FirstSeq is the sequence of the oldest binlog record the replica
	// retains.
	FirstSeq uint64
	// MapGen is the partition generation of the map the node serves
	// under.
	MapGen uint64
	// LagRecords and LagMs are a slave's distance behind its master, in
	// records and in milliseconds.
	LagRecords uint64
	LagMs      int64
	// Incomplete marks a replica whose full sync has not finished: it
	// holds no usable data.
	Incomplete bool
	// FullSyncs counts the full syncs the replica completed since its
	// node started.
	FullSyncs uint64
	// LoadedBytes counts what the full sync in progress (or the last one)
	// has loaded.
	LoadedBytes int64
	// Bytes is a master's estimate of its partition's size.
	Bytes int64
	// Slaves is a master's view of each of its slaves (empty on a slave).
	Slaves []SlaveProgress
}

// SlaveProgress is a master's view of one of its slaves.
type SlaveProgress struct {
	// Node is the slave's node.
	Node placement.NodeID
	// Acked is the highest sequence the slave durably applied.
	Acked uint64
	// LagMs is the age in milliseconds of the oldest record the slave has
	// not acknowledged.
	LagMs int64
}

// Role is a replica's role on its node.
type Role uint8

// Replica roles.
const (
	// RoleNone is a replica that serves no role (yet).
	RoleNone Role = iota
	// RoleMaster is the master of its partition: it takes the writes.
	RoleMaster
	// RoleSlave follows its master's binlog.
	RoleSlave
	// RoleLearner is a slave a migration is filling: it serves nothing.
	RoleLearner
)

// String returns "none", "master", "slave" or "learner".
func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleSlave:
		return "slave"
	case RoleLearner:
		return "learner"
	}
	return "none"
}

// ReplicaState is a replica's replication state.
type ReplicaState uint8

// Replication states.
const (
	// ReplicaIdle is a master, or a slave that has not started following.
	ReplicaIdle ReplicaState = iota
	// ReplicaConnecting is a slave handshaking with its master.
	ReplicaConnecting
	// ReplicaFullSyncing is a slave loading a snapshot of its master.
	ReplicaFullSyncing
	// ReplicaStreaming is a slave applying its master's binlog stream.
	ReplicaStreaming
)

// String returns "idle", "connecting", "full-syncing", "streaming", or
// "unknown" for a state this version does not know.
func (s ReplicaState) String() string {
	switch s {
	case ReplicaIdle:
		return "idle"
	case ReplicaConnecting:
		return "connecting"
	case ReplicaFullSyncing:
		return "full-syncing"
	case ReplicaStreaming:
		return "streaming"
	}
	return "unknown"
}

// Plan is a dry-run rebalance plan, as PlanRebalance returns it.
type Plan struct {
	// Epoch is the epoch of the map the plan was made from.
	Epoch placement.Epoch
	// ReplicaMoves and MasterChanges count the replica migrations and
	// the master switchovers the plan makes.
	ReplicaMoves  int
	MasterChanges int
	// Minimum is a lower bound on ReplicaMoves for any assignment that
	// gives every node its share of every table.
	Minimum int
	// Summary describes the plan for people.
	Summary string
	// Moves are the plan's steps.
	Moves []PlanMove
	// Warnings reports placement rules the topology could not satisfy
	// and the ones the current placement breaks.
	Warnings []string
}

// PlanMove is one step of a Plan.
type PlanMove struct {
	// Table and Partition name the partition concerned.
	Table     string
	Partition placement.PartitionID
	// Kind is "add" (To gets a new replica), "remove" (From's replica is
	// dropped) or "master" (To, already a replica, becomes the master).
	Kind string
	// From is the node losing a replica or the mastership (empty for an
	// add, or for a master step of a partition without a master); To the
	// node gaining one (empty for a remove).
	From placement.NodeID
	To   placement.NodeID
}

func statusFromWire(w *wire.StatusReply) *Status {
	s := &Status{Epoch: w.Epoch, LeaderID: w.LeaderID, LeaderAddr: w.LeaderAddr, Self: w.Self, Term: w.Term,
		Role: w.Role, Applied: w.Applied, Map: w.Map}
	if w.Members != nil {
		s.Members = make([]MemberStatus, len(w.Members))
		for i, m := range w.Members {
			s.Members[i] = MemberStatus{ID: m.ID, RaftAddr: m.RaftAddr, RPCAddr: m.RPCAddr, Node: m.Node, Leader: m.Leader}
		}
	}
	if w.Nodes != nil {
		s.Nodes = make([]NodeStatus, len(w.Nodes))
		for i, n := range w.Nodes {
			s.Nodes[i] = NodeStatus{Node: n.Node, HeartbeatAgeMs: n.HeartbeatAgeMs, Replicas: replicasFromWire(n.Replicas)}
		}
	}
	return s
}

func replicasFromWire(rs []wire.ReplicaStatus) []ReplicaStatus {
	if rs == nil {
		return nil
	}
	out := make([]ReplicaStatus, len(rs))
	for i := range rs {
		out[i] = replicaFromWire(&rs[i])
	}
	return out
}

func replicaFromWire(r *wire.ReplicaStatus) ReplicaStatus {
	out := ReplicaStatus{Table: r.Table, Partition: r.Partition, Role: Role(r.Role), State: ReplicaState(r.State),
		Gen: r.Gen, Seq: r.Seq, FirstSeq: r.FirstSeq, MapGen: r.MapGen, LagRecords: r.LagRecords, LagMs: r.LagMs,
		Incomplete: r.Incomplete, FullSyncs: r.FullSyncs, LoadedBytes: r.LoadedBytes, Bytes: r.Bytes}
	if r.Slaves != nil {
		out.Slaves = make([]SlaveProgress, len(r.Slaves))
		for i, sp := range r.Slaves {
			out.Slaves[i] = SlaveProgress{Node: sp.Node, Acked: sp.Acked, LagMs: sp.LagMs}
		}
	}
	return out
}

func nodeReportFromWire(w *wire.NodeStatusReply) *NodeReport {
	return &NodeReport{Node: w.Node, Epoch: w.Epoch, Replicas: replicasFromWire(w.Replicas)}
}

func planFromWire(w *wire.PlanReply) *Plan {
	p := &Plan{Epoch: w.Epoch, ReplicaMoves: w.ReplicaMoves, MasterChanges: w.MasterChanges, Minimum: w.Minimum,
		Summary: w.Summary, Warnings: w.Warnings}
	if w.Moves != nil {
		p.Moves = make([]PlanMove, len(w.Moves))
		for i, m := range w.Moves {
			p.Moves[i] = PlanMove{Table: m.Table, Partition: m.Partition, Kind: m.Kind, From: m.From, To: m.To}
		}
	}
	return p
}
