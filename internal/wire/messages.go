package wire

import "github.com/zeppelin-kv/zeppelin/placement"

// Roles is a bit set of the roles a process plays.
type Roles uint8

// Role bits.
const (
	RoleMeta Roles = 1 << iota
	RoleData
)

// Hello opens every connection.
type Hello struct {
	Version uint32 `msgpack:"v"`
	// From names the dialer (a node ID, or empty for a client).
	From string `msgpack:"f,omitempty"`
	// Node says the dialer is the cluster node From (a data node or meta
	// member), not a client: only nodes may call the node-only kinds.
	Node bool `msgpack:"nd,omitempty"`
	// Nonce is the dialer's challenge (auth.NonceLen random bytes) when it
	// authenticates: with a cluster secret, or as User.
	Nonce []byte `msgpack:"nc,omitempty"`
	// User names the user the dialer authenticates as; empty for the
	// cluster secret.
	User string `msgpack:"u,omitempty"`
}

// HelloReply tells the dialer who it reached and how to find the meta group.
type HelloReply struct {
	Version    uint32                 `msgpack:"v"`
	NodeID     string                 `msgpack:"n,omitempty"`
	Roles      Roles                  `msgpack:"r"`
	GossipAddr string                 `msgpack:"g,omitempty"`
	Meta       []placement.MetaMember `msgpack:"m,omitempty"`
	Epoch      placement.Epoch        `msgpack:"e"`
	// Proof answers the dialer's Nonce on an authenticated connection:
	// the server's proof that it knows the key the dialer's proof was
	// made with (ProofKey says which), or, for a user, SCRAM's server
	// signature.
	Proof []byte `msgpack:"pf,omitempty"`
	// ProofKey is the index, in AuthProof.Proofs, of the proof the server
	// accepted.
	ProofKey int `msgpack:"pk,omitempty"`
	// IdleMs is how long the server keeps a connection with nothing in
	// flight before it closes it (0: never); dialers close theirs first.
	IdleMs int64 `msgpack:"im,omitempty"`
}

// EpochReply is the reply of calls that only report the resulting epoch.
type EpochReply struct {
	Epoch placement.Epoch `msgpack:"e"`
}

// ---- meta service ----

// PullRequest asks a meta member for the cluster map.
type PullRequest struct {
	// Known is the epoch the caller already has; when the member's map is not
	// newer the reply carries no map.
	Known placement.Epoch `msgpack:"k"`
}

// PullReply carries the map when it is newer than the caller's.
type PullReply struct {
	Epoch placement.Epoch `msgpack:"e"`
	Map   *placement.Map  `msgpack:"m,omitempty"`
}

// RegisterRequest registers (or updates) a data node in the map.
type RegisterRequest struct {
	Node placement.Node `msgpack:"n"`
	// LeaseMs and HeartbeatMs are the node's master lease and heartbeat
	// interval: the meta leader refuses a node whose lease could outlive
	// its own DownTimeout (0: not checked, for nodes that do not say).
	LeaseMs     int64 `msgpack:"lm,omitempty"`
	HeartbeatMs int64 `msgpack:"hm,omitempty"`
}

// RegisterReply reports the epoch after registration.
type RegisterReply struct {
	Epoch placement.Epoch `msgpack:"e"`
}

// Role is a replica's role on its node.
type Role uint8

// Replica roles.
const (
	RoleNone Role = iota
	RoleMaster
	RoleSlave
	RoleLearner // a slave a migration is filling: it serves nothing
)

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

// ReplState is a replica's replication state.
type ReplState uint8

// Replication states.
const (
	ReplIdle        ReplState = iota // master, or slave not started
	ReplConnecting                   // slave: handshaking with the master
	ReplFullSyncing                  // slave: loading a snapshot
	ReplStreaming                    // slave: applying the binlog stream
)

func (s ReplState) String() string {
	switch s {
	case ReplIdle:
		return "idle"
	case ReplConnecting:
		return "connecting"
	case ReplFullSyncing:
		return "full-syncing"
	case ReplStreaming:
		return "streaming"
	}
	return "unknown"
}

// SlaveProgress is a master's view of one slave.
type SlaveProgress struct {
	Node  placement.NodeID `msgpack:"n"`
	Acked uint64           `msgpack:"a"` // highest seq the slave durably applied
	LagMs int64            `msgpack:"l"` // age of the oldest unacknowledged record
}

// ReplicaStatus describes one partition replica on a node.
type ReplicaStatus struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Role      Role                  `msgpack:"r"`
	State     ReplState             `msgpack:"s"`
	// Gen and Seq are the generation and sequence of the last record the
	// replica holds.
	Gen      uint64 `msgpack:"g"`
	Seq      uint64 `msgpack:"q"`
	FirstSeq uint64 `msgpack:"f"` // oldest retained binlog record
	// MapGen is the partition generation of the map the node serves under.
	MapGen uint64 `msgpack:"mg"`
	// LagRecords and LagMs are a slave's distance behind its master.
	LagRecords uint64 `msgpack:"lr"`
	LagMs      int64  `msgpack:"lm"`
	// Incomplete marks a replica whose full sync has not finished: it holds
	// no usable data.
	Incomplete bool   `msgpack:"i,omitempty"`
	FullSyncs  uint64 `msgpack:"fs,omitempty"` // full syncs completed since start
	// LoadedBytes counts what the full sync in progress (or the last one)
	// has loaded; Bytes is a master's estimate of its partition's size.
	LoadedBytes int64           `msgpack:"lb,omitempty"`
	Bytes       int64           `msgpack:"b,omitempty"`
	Slaves      []SlaveProgress `msgpack:"sl,omitempty"` // master only
}

// HeartbeatRequest is sent by every data node to the meta leader.
type HeartbeatRequest struct {
	Node     placement.NodeID `msgpack:"n"`
	Addr     string           `msgpack:"a"`
	Epoch    placement.Epoch  `msgpack:"e"`
	Replicas []ReplicaStatus  `msgpack:"r"`
}

// HeartbeatReply acknowledges a heartbeat. Only a meta leader that has
// confirmed its leadership acknowledges; the node's master lease runs from
// the moment it sent the heartbeat.
type HeartbeatReply struct {
	Epoch placement.Epoch `msgpack:"e"`
}

// CreateTableRequest creates a table.
type CreateTableRequest struct {
	Name        string           `msgpack:"n"`
	Partitions  int              `msgpack:"p"`
	Replication int              `msgpack:"r"`
	Mode        placement.Mode   `msgpack:"m"`
	Fenced      bool             `msgpack:"f"`
	MinInSync   int              `msgpack:"mis,omitempty"`
	Domain      placement.Domain `msgpack:"d,omitempty"`
}

// TableReply returns a table as committed.
type TableReply struct {
	Epoch placement.Epoch `msgpack:"e"`
	Table placement.Table `msgpack:"t"`
	// Warnings reports placement rules the topology could not satisfy.
	Warnings []string `msgpack:"w,omitempty"`
}

// DropTableRequest drops a table.
type DropTableRequest struct {
	Name string `msgpack:"n"`
}

// SetMasterRequest asks for a planned switchover of one partition.
type SetMasterRequest struct {
	Table     string                `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Node      placement.NodeID      `msgpack:"n"`
}

// StatusRequest asks a meta member for the cluster status.
type StatusRequest struct {
	// Leader asks for the leader's view (with heartbeat ages and replica
	// states); other members answer CodeNotLeader with its address.
	Leader bool `msgpack:"l,omitempty"`
}

// MemberStatus describes one meta member.
type MemberStatus struct {
	placement.MetaMember `msgpack:",inline"`
	Leader               bool `msgpack:"l"`
	// Voting and Reachable are set in membership replies only: Voting
	// when the member votes in the Raft group (every member this version
	// adds does), Reachable when it answered the leader in time, naming
	// it as leader in the current term.
	Voting    bool `msgpack:"v,omitempty"`
	Reachable bool `msgpack:"r,omitempty"`
}

// NodeStatus is the meta leader's view of one data node.
type NodeStatus struct {
	Node placement.Node `msgpack:"n"`
	// HeartbeatAgeMs is the time since the leader last heard from the node,
	// -1 when it has not heard from it since it became leader.
	HeartbeatAgeMs int64           `msgpack:"h"`
	Replicas       []ReplicaStatus `msgpack:"r,omitempty"`
}

// StatusReply is the cluster status as one meta member sees it.
type StatusReply struct {
	Epoch      placement.Epoch `msgpack:"e"`
	LeaderID   uint64          `msgpack:"l"`
	LeaderAddr string          `msgpack:"la"`
	Self       uint64          `msgpack:"s"`
	Term       uint64          `msgpack:"t"`
	// Role is the replier's Raft role ("leader", "follower", "non-voting",
	// or "candidate" while it knows no leader) and Applied the index of
	// the last Raft entry its state machine applied.
	Role    string         `msgpack:"ro,omitempty"`
	Applied uint64         `msgpack:"ap,omitempty"`
	Members []MemberStatus `msgpack:"m"`
	// Nodes carries heartbeat ages and replica states when the replier is
	// the leader; otherwise only the map's view.
	Nodes []NodeStatus   `msgpack:"n"`
	Map   *placement.Map `msgpack:"map"`
}

// PlanRequest asks for a dry-run rebalance plan.
type PlanRequest struct {
	Table       string `msgpack:"t,omitempty"` // empty: every table
	MastersOnly bool   `msgpack:"mo,omitempty"`
}

// PlanMove is one step of a plan.
type PlanMove struct {
	Table     string                `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Kind      string                `msgpack:"k"` // add, remove, master
	From      placement.NodeID      `msgpack:"f,omitempty"`
	To        placement.NodeID      `msgpack:"to,omitempty"`
}

// PlanReply is a dry-run plan.
type PlanReply struct {
	Epoch         placement.Epoch `msgpack:"e"`
	ReplicaMoves  int             `msgpack:"rm"`
	MasterChanges int             `msgpack:"mc"`
	Minimum       int             `msgpack:"min"`
	Summary       string          `msgpack:"s"`
	Moves         []PlanMove      `msgpack:"m,omitempty"`
	Warnings      []string        `msgpack:"w,omitempty"`
}

// RebalanceRequest asks the meta leader to balance replicas (by
// migrations) and masters (by planned switchovers), or masters only.
type RebalanceRequest struct {
	Table       string `msgpack:"t,omitempty"`
	MastersOnly bool   `msgpack:"mo"`
	// RateBytes bounds each move's copy bandwidth in bytes per second
	// (0: the cluster's default).
	RateBytes int64 `msgpack:"rb,omitempty"`
}

// RebalanceReply reports what a rebalance started: the migrations queued
// under batch Batch (follow them with MigrationsRequest) and the master
// switchovers made.
type RebalanceReply struct {
	Epoch       placement.Epoch `msgpack:"e"`
	Batch       uint64          `msgpack:"b,omitempty"`
	Migrations  int             `msgpack:"m"`
	Switchovers int             `msgpack:"s"`
	Warnings    []string        `msgpack:"w,omitempty"`
}

// InSyncRequest asks the meta leader to change a sync-mode partition's
// in-sync set: the partition's master (Node, serving generation Gen) asks
// to Remove slaves that stopped acknowledging and to Add slaves that have
// caught up (it already waits for their acknowledgements).
type InSyncRequest struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Node      placement.NodeID      `msgpack:"n"`
	Gen       uint64                `msgpack:"g"`
	Add       []placement.NodeID    `msgpack:"a,omitempty"`
	Remove    []placement.NodeID    `msgpack:"r,omitempty"`
}

// AlterTableRequest changes a table's replication mode, its minimum
// in-sync set or its fencing; nil fields are left as they are.
type AlterTableRequest struct {
	Name      string          `msgpack:"n"`
	Mode      *placement.Mode `msgpack:"m,omitempty"`
	MinInSync *int            `msgpack:"mis,omitempty"`
	Fenced    *bool           `msgpack:"f,omitempty"`
}

// MigrateRequest asks the meta group to move one replica of a partition
// from node From to node To without losing a write.
type MigrateRequest struct {
	Table     string                `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	From      placement.NodeID      `msgpack:"f"`
	To        placement.NodeID      `msgpack:"to"`
	// Force allows a target in the failure domain of another replica.
	Force bool `msgpack:"fo,omitempty"`
	// RateBytes bounds the copy bandwidth in bytes per second (0: the
	// cluster's default).
	RateBytes int64 `msgpack:"rb,omitempty"`
}

// MigrateReply names the migration queued.
type MigrateReply struct {
	Epoch placement.Epoch `msgpack:"e"`
	ID    uint64          `msgpack:"id"`
}

// CancelMigrationRequest cancels a migration (ID) or every unfinished
// migration of a batch (Batch).
type CancelMigrationRequest struct {
	ID    uint64 `msgpack:"id,omitempty"`
	Batch uint64 `msgpack:"b,omitempty"`
}

// MigrationsRequest lists migrations: those in progress and the recent
// finished ones, of one batch when Batch is set.
type MigrationsRequest struct {
	Batch uint64 `msgpack:"b,omitempty"`
}

// MigrationStatus is a migration with the leader's view of its progress.
type MigrationStatus struct {
	placement.Migration `msgpack:",inline"`
	TableName           string `msgpack:"tn"`
	// CopiedBytes and TotalBytes measure the target's full sync (TotalBytes
	// is the master's estimate of the partition's size, 0 when unknown);
	// LagRecords is how far the target's log is behind the master's.
	CopiedBytes int64  `msgpack:"cb"`
	TotalBytes  int64  `msgpack:"tb"`
	LagRecords  uint64 `msgpack:"lr"`
	// RateBytes is the copy rate measured over the last few seconds.
	RateBytes int64 `msgpack:"rate"`
}

// MigrationsReply lists migrations, oldest first.
type MigrationsReply struct {
	Epoch      placement.Epoch   `msgpack:"e"`
	Migrations []MigrationStatus `msgpack:"m"`
}

// NodeOp is an administrative change to a data node.
type NodeOp uint8

// Node operations.
const (
	NodeDrain   NodeOp = iota + 1 // move every replica away (the node keeps serving meanwhile)
	NodeUndrain                   // stop draining: the node may hold replicas again
	NodeRemove                    // forget a node that holds no replica
	NodeWeight                    // set the node's weight
	NodeApprove                   // admit a node ID not registered yet (admin-approved admission)
	NodeRevoke                    // withdraw an approval not used yet, and forget the node's request
	NodePending                   // no change: list the nodes waiting for approval and the approvals not used yet
)

// PendingNode is a data node that asked to register and waits for an
// administrator's approval.
type PendingNode struct {
	Node placement.Node `msgpack:"n"`
	// RemoteAddr is where its last registration came from; FirstMs and
	// LastMs when its first and last attempts came (Unix ms); Attempts
	// counts them.
	RemoteAddr string `msgpack:"ra,omitempty"`
	FirstMs    int64  `msgpack:"f"`
	LastMs     int64  `msgpack:"l"`
	Attempts   int    `msgpack:"c"`
}

// NodeAdminRequest changes a data node.
type NodeAdminRequest struct {
	Op     NodeOp           `msgpack:"op"`
	Node   placement.NodeID `msgpack:"n"`
	Weight int              `msgpack:"w,omitempty"`
}

// NodeAdminReply reports the epoch after the change and, for a drain, the
// batch of migrations that empties the node.
type NodeAdminReply struct {
	Epoch      placement.Epoch `msgpack:"e"`
	Batch      uint64          `msgpack:"b,omitempty"`
	Migrations int             `msgpack:"m,omitempty"`
	// Pending and Approved answer NodePending: the nodes waiting for
	// approval (as the leader saw them since it began to lead) and the
	// approved IDs that have not registered yet.
	Pending  []PendingNode      `msgpack:"p,omitempty"`
	Approved []placement.NodeID `msgpack:"a,omitempty"`
}

// MemberOp is a change to the meta group's membership.
type MemberOp uint8

// Membership operations.
const (
	MemberList    MemberOp = iota + 1 // no change: report the members
	MemberAdd                         // add member ID at RaftAddr (it then starts, joining)
	MemberRemove                      // remove member ID
	MemberReplace                     // add member ID at RaftAddr, then remove member Replace
)

// MemberChangeRequest changes the meta group's membership. Changes go to
// the leader, one at a time.
type MemberChangeRequest struct {
	Op       MemberOp `msgpack:"op"`
	ID       uint64   `msgpack:"id,omitempty"`
	RaftAddr string   `msgpack:"ra,omitempty"`
	Replace  uint64   `msgpack:"rp,omitempty"`
}

// MemberChangeReply lists the members after the change.
type MemberChangeReply struct {
	Epoch   placement.Epoch `msgpack:"e"`
	Members []MemberStatus  `msgpack:"m"`
}

// HandOffRequest asks the meta leader to move every master role of Node to
// one of its slaves by planned switchovers (before a graceful shutdown).
type HandOffRequest struct {
	Node placement.NodeID `msgpack:"n"`
}

// HandOffReply reports how many partitions changed master and which could
// not (no caught-up slave, or the switchover failed).
type HandOffReply struct {
	Epoch  placement.Epoch `msgpack:"e"`
	Moved  int             `msgpack:"m"`
	Failed []string        `msgpack:"f,omitempty"`
}

// ---- data service ----

// OpType is the type of one write operation.
type OpType uint8

// Write operation types.
const (
	OpSet       OpType = iota + 1 // set Key to Value (TTL, Cond, KeepTTL, ReturnOld)
	OpDelete                      // delete Key
	OpIncr                        // add Delta to the integer at Key
	OpExpire                      // set Key's TTL (TTL ≤ 0 deletes the key)
	OpPersist                     // remove Key's TTL
	OpDeleteTag                   // delete every key whose hashtag is Key
	OpFlush                       // delete every key of the partition
)

func (t OpType) String() string {
	switch t {
	case OpSet:
		return "set"
	case OpDelete:
		return "delete"
	case OpIncr:
		return "incr"
	case OpExpire:
		return "expire"
	case OpPersist:
		return "persist"
	case OpDeleteTag:
		return "deletetag"
	case OpFlush:
		return "flush"
	}
	return "op?"
}

// Cond is a set condition.
type Cond uint8

// Set conditions.
const (
	CondNone      Cond = iota
	CondIfAbsent       // only when the key does not exist (NX)
	CondIfPresent      // only when the key exists (XX)
)

// Op is one write operation.
type Op struct {
	Type  OpType `msgpack:"y"`
	Key   []byte `msgpack:"k"`
	Value []byte `msgpack:"v,omitempty"`
	// TTL is relative, in milliseconds; the master turns it into an absolute
	// expiry. Zero means none (for OpSet: no expiry unless KeepTTL).
	TTL       int64 `msgpack:"ttl,omitempty"`
	Cond      Cond  `msgpack:"c,omitempty"`
	KeepTTL   bool  `msgpack:"kt,omitempty"`
	ReturnOld bool  `msgpack:"ro,omitempty"`
	Delta     int64 `msgpack:"d,omitempty"`
}

// WriteGroup is a list of operations on one partition, applied
// all-or-nothing.
type WriteGroup struct {
	Partition placement.PartitionID `msgpack:"p"`
	Ops       []Op                  `msgpack:"o"`
}

// WriteRequest carries one or more write groups for partitions the
// receiving node masters.
type WriteRequest struct {
	Table  placement.TableID `msgpack:"t"`
	Epoch  placement.Epoch   `msgpack:"e"`
	Groups []WriteGroup      `msgpack:"g"`
}

// OpResult is the outcome of one operation.
type OpResult struct {
	// Done: OpSet wrote; OpDelete/OpExpire/OpPersist found the key (and, for
	// OpPersist, it had a TTL).
	Done bool `msgpack:"d,omitempty"`
	// Found and Old: the previous value, when ReturnOld was asked.
	Found bool   `msgpack:"f,omitempty"`
	Old   []byte `msgpack:"o,omitempty"`
	// Int: OpIncr's new value; OpDeleteTag's and OpFlush's count.
	Int int64 `msgpack:"i,omitempty"`
}

// GroupResult is the outcome of one write group: an error (nothing of the
// group was written) or one result per operation.
type GroupResult struct {
	Err     *Error     `msgpack:"err,omitempty"`
	Results []OpResult `msgpack:"r,omitempty"`
	// Seq is the partition's seq once the group was applied (its record's
	// when it wrote one), for WaitReplicasRequest.
	Seq uint64 `msgpack:"q,omitempty"`
}

// WriteReply answers a WriteRequest, one result per group in order.
type WriteReply struct {
	Groups []GroupResult `msgpack:"g"`
	// LeaseMs is, for a fenced async table, how long the master's lease
	// still ran when it sent the reply (see ReadReply.LeaseMs); 0
	// otherwise. A sync table's acknowledged writes survive a late reply:
	// every in-sync member, and so any master to come, holds them.
	LeaseMs int64 `msgpack:"lm,omitempty"`
}

// ReadOp is the type of a read.
type ReadOp uint8

// Read operations.
const (
	ReadGet    ReadOp = iota + 1 // value
	ReadExists                   // existence only
	ReadTTL                      // remaining time to live
)

// KeyRef names one key and its partition.
type KeyRef struct {
	Partition placement.PartitionID `msgpack:"p"`
	Key       []byte                `msgpack:"k"`
}

// ReadRequest reads one or more keys of partitions the node masters.
type ReadRequest struct {
	Table placement.TableID `msgpack:"t"`
	Epoch placement.Epoch   `msgpack:"e"`
	Op    ReadOp            `msgpack:"o"`
	Keys  []KeyRef          `msgpack:"k"`
	// AllowSlave lets a slave answer from its (possibly stale) copy.
	AllowSlave bool `msgpack:"as,omitempty"`
}

// ReadResult is the outcome for one key.
type ReadResult struct {
	Err   *Error `msgpack:"err,omitempty"`
	Found bool   `msgpack:"f,omitempty"`
	Value []byte `msgpack:"v,omitempty"`
	// TTL is the remaining time to live in milliseconds for ReadTTL, -1 when
	// the key has no expiry.
	TTL int64 `msgpack:"ttl,omitempty"`
}

// ReadReply answers a ReadRequest, one result per key in order.
type ReadReply struct {
	Results []ReadResult `msgpack:"r"`
	// LeaseMs is, for a fenced table, how long the master's lease still ran
	// when it sent the reply, in whole milliseconds (≥ 1); 0 for an
	// unfenced table. A reply that reaches the caller later than that
	// after it sent the request may come from a master that has been
	// replaced meanwhile (it was paused, say): the caller treats it as
	// lost.
	LeaseMs int64 `msgpack:"lm,omitempty"`
}

// ListRequest lists the keys of one hashtag, in key order, a page at a time.
type ListRequest struct {
	Table     placement.TableID     `msgpack:"t"`
	Epoch     placement.Epoch       `msgpack:"e"`
	Partition placement.PartitionID `msgpack:"p"`
	Tag       []byte                `msgpack:"g"`
	// After is the last key of the previous page (exclusive), or empty.
	After  []byte `msgpack:"a,omitempty"`
	Limit  int    `msgpack:"l"`
	Values bool   `msgpack:"v,omitempty"`
}

// ListReply is one page of keys.
type ListReply struct {
	Keys   [][]byte `msgpack:"k"`
	Values [][]byte `msgpack:"v,omitempty"`
	More   bool     `msgpack:"m,omitempty"`
	// LeaseMs is as in ReadReply.
	LeaseMs int64 `msgpack:"lm,omitempty"`
}

// CountRequest asks a master for the number of live keys of some of a
// table's partitions.
type CountRequest struct {
	Table      placement.TableID       `msgpack:"t"`
	Epoch      placement.Epoch         `msgpack:"e"`
	Partitions []placement.PartitionID `msgpack:"p"`
}

// CountReply answers a CountRequest: one result per partition, in order.
type CountReply struct {
	Results []CountResult `msgpack:"r"`
}

// CountResult is one partition's key count, or why it has none.
type CountResult struct {
	Err  *Error `msgpack:"err,omitempty"`
	Keys int64  `msgpack:"k,omitempty"`
}

// NotifyRequest tells a data node that the map has reached Epoch, so it
// pulls it now instead of at its next heartbeat. The meta leader sends the
// map itself along (Map, when it is small enough), sparing the node the
// pull. A new leader also announces itself: Leader is its RPC address and
// Term its Raft term, so nodes still heartbeating a predecessor that
// stopped answering move over at once.
type NotifyRequest struct {
	Epoch  placement.Epoch `msgpack:"e"`
	Leader string          `msgpack:"l,omitempty"`
	Term   uint64          `msgpack:"t,omitempty"`
	Map    *placement.Map  `msgpack:"m,omitempty"`
}

// NodeStatusRequest asks a data node for its replicas' states.
type NodeStatusRequest struct{}

// NodeStatusReply describes a data node's replicas.
type NodeStatusReply struct {
	Node     placement.NodeID `msgpack:"n"`
	Epoch    placement.Epoch  `msgpack:"e"`
	Replicas []ReplicaStatus  `msgpack:"r"`
}

// WaitSeq names a partition and the seq to wait for on it.
type WaitSeq struct {
	Partition placement.PartitionID `msgpack:"p"`
	Seq       uint64                `msgpack:"q"`
}

// WaitReplicasRequest asks the master of each partition to wait (up to
// TimeoutMs; 0: until the request's deadline) until Replicas of its slaves
// have acknowledged Seq (Redis WAIT).
type WaitReplicasRequest struct {
	Table     placement.TableID `msgpack:"t"`
	Epoch     placement.Epoch   `msgpack:"e"`
	Seqs      []WaitSeq         `msgpack:"s"`
	Replicas  int               `msgpack:"n"`
	TimeoutMs int64             `msgpack:"w"`
}

// WaitReplicasReply says, per partition in order, how many slaves had
// acknowledged the seq asked for when the wait ended.
type WaitReplicasReply struct {
	Acked []int `msgpack:"a"`
}

// ---- replication ----

// ReplAction is a master's answer to a replication handshake.
type ReplAction uint8

// Handshake answers.
const (
	ReplContinue ReplAction = iota + 1 // stream from the slave's seq + 1
	ReplFullSync                       // load a snapshot first
	ReplRefuse                         // epoch or role mismatch: pull the map, retry
)

func (a ReplAction) String() string {
	switch a {
	case ReplContinue:
		return "continue"
	case ReplFullSync:
		return "full-sync"
	case ReplRefuse:
		return "refuse"
	}
	return "action?"
}

// HandshakeRequest opens replication of one partition from its master.
type HandshakeRequest struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Node      placement.NodeID      `msgpack:"n"`
	Epoch     placement.Epoch       `msgpack:"e"`
	// MapGen is the partition generation in the slave's map.
	MapGen uint64 `msgpack:"mg"`
	// LastGen and LastSeq identify the slave's last record (0, 0 when empty).
	LastGen uint64 `msgpack:"lg"`
	LastSeq uint64 `msgpack:"ls"`
}

// HandshakeReply answers a handshake.
type HandshakeReply struct {
	Action ReplAction `msgpack:"a"`
	Reason string     `msgpack:"r,omitempty"`
	Seq    uint64     `msgpack:"q"` // master's last seq
}

// FetchRequest asks for records after From-1; it also acknowledges Acked,
// the highest seq the slave has durably applied.
type FetchRequest struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Node      placement.NodeID      `msgpack:"n"`
	MapGen    uint64                `msgpack:"mg"`
	From      uint64                `msgpack:"f"`
	Acked     uint64                `msgpack:"a"`
	MaxBytes  int                   `msgpack:"mb"`
	// WaitMs lets the master hold the request up to this long when it has
	// no record at From yet.
	WaitMs int64 `msgpack:"w"`
}

// FetchReply carries encoded binlog records, consecutive from the request's
// From.
type FetchReply struct {
	Records [][]byte `msgpack:"r"`
	Seq     uint64   `msgpack:"q"`            // master's last seq
	Purged  bool     `msgpack:"p,omitempty"`  // From is no longer retained: full sync
	TimeMs  int64    `msgpack:"tm,omitempty"` // master time of its last record
}

// SnapBeginRequest starts a full-sync transfer of one partition.
type SnapBeginRequest struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	Node      placement.NodeID      `msgpack:"n"`
	MapGen    uint64                `msgpack:"mg"`
}

// GenStart records that generation Gen's first record is Seq.
type GenStart struct {
	Gen uint64 `msgpack:"g"`
	Seq uint64 `msgpack:"s"`
}

// SnapBeginReply describes the snapshot: the exact (Gen, Seq) it reflects and
// the master's generation history up to it.
type SnapBeginReply struct {
	ID      uint64     `msgpack:"id"`
	Gen     uint64     `msgpack:"g"`
	Seq     uint64     `msgpack:"q"`
	History []GenStart `msgpack:"h"`
}

// SnapChunkRequest asks for the next chunk of a snapshot. Packed asks for
// the chunk's entries in SnapChunkReply.Packed; a master that predates it
// answers with Entries.
type SnapChunkRequest struct {
	ID       uint64 `msgpack:"id"`
	MaxBytes int    `msgpack:"mb"`
	Packed   bool   `msgpack:"pk,omitempty"`
}

// SnapEntry is one key of a snapshot.
type SnapEntry struct {
	Key      []byte `msgpack:"k"`
	Value    []byte `msgpack:"v"`
	ExpireAt int64  `msgpack:"x,omitempty"` // absolute, Unix milliseconds
}

// SnapChunkReply is one chunk; Done marks the last. Its entries are in
// Entries, or, when the request asked for it, in Packed (see
// AppendSnapEntry): one byte string instead of a msgpack map per entry,
// which costs a copy to encode and decode instead of a walk of every
// entry and an allocation of its key and value.
type SnapChunkReply struct {
	Entries []SnapEntry `msgpack:"e"`
	Packed  []byte      `msgpack:"b,omitempty"`
	Done    bool        `msgpack:"d,omitempty"`
}

// SnapEndRequest releases a snapshot.
type SnapEndRequest struct {
	ID uint64 `msgpack:"id"`
}
