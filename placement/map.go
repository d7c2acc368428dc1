package placement

import (
	"fmt"
	"slices"
	"sort"
)

// NodeID names a data node. It is chosen by the operator (Config.NodeID) and
// never reused for another node.
type NodeID string

// TableID is the numeric identity of a table, assigned by the meta group. A
// table dropped and created again under the same name gets a new ID, so data
// of the two never mixes.
type TableID uint32

// PartitionID is the index of a partition within its table.
type PartitionID uint32

// Epoch numbers versions of the cluster map. Every change that affects
// routing increments it; nobody accepts a map with a lower epoch than one it
// has seen.
type Epoch uint64

// NodeState is the meta group's view of a data node.
type NodeState uint8

// Node states.
const (
	NodeUp       NodeState = iota // heartbeating, eligible for replicas
	NodeDown                      // declared down by the failure detector
	NodeDraining                  // up, but replicas should move away
)

func (s NodeState) String() string {
	switch s {
	case NodeUp:
		return "up"
	case NodeDown:
		return "down"
	case NodeDraining:
		return "draining"
	}
	return fmt.Sprintf("NodeState(%d)", uint8(s))
}

// Labels place a node in the failure-domain hierarchy zone → rack → host.
// Any level may be empty.
type Labels struct {
	Zone string `msgpack:"zone,omitempty" json:"zone,omitempty"`
	Rack string `msgpack:"rack,omitempty" json:"rack,omitempty"`
	Host string `msgpack:"host,omitempty" json:"host,omitempty"`
}

// Node is one data node in the cluster map.
type Node struct {
	ID     NodeID    `msgpack:"id" json:"id"`
	Addr   string    `msgpack:"addr" json:"addr"` // RPC address
	Labels Labels    `msgpack:"labels" json:"labels"`
	Weight int       `msgpack:"weight" json:"weight"` // relative capacity, ≥ 1
	State  NodeState `msgpack:"state" json:"state"`
	// StoreID identifies the node's store: it is chosen when the store is
	// created, so a node that comes back with a different one has lost
	// its data.
	StoreID string `msgpack:"store,omitempty" json:"store_id,omitempty"`
	// Drain marks a node an operator is emptying: it keeps serving, but
	// placement moves its replicas away and puts none on it.
	Drain bool `msgpack:"drain,omitempty" json:"drain,omitempty"`
	// Since is when State last changed (Unix ms; 0 when never).
	Since int64 `msgpack:"since,omitempty" json:"since_ms,omitempty"`
}

// PlacementState is the state the placement planner sees: a draining
// node that is up counts as NodeDraining.
func (n Node) PlacementState() NodeState {
	if n.Drain && n.State == NodeUp {
		return NodeDraining
	}
	return n.State
}

// Mode is a table's replication mode.
type Mode uint8

// Replication modes.
const (
	// ModeAsync acknowledges a write once the master has committed it.
	ModeAsync Mode = iota
	// ModeSync acknowledges a write once every in-sync replica has it.
	ModeSync
)

func (m Mode) String() string {
	switch m {
	case ModeAsync:
		return "async"
	case ModeSync:
		return "sync"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "async" or "sync".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "async", "":
		return ModeAsync, nil
	case "sync":
		return ModeSync, nil
	}
	return 0, fmt.Errorf("placement: unknown replication mode %q (want async or sync)", s)
}

// Domain is the failure-domain level across which the replicas of one
// partition must be spread.
type Domain uint8

// Failure-domain levels, from the smallest to the largest. The zero value
// means the default, DomainHost.
const (
	DomainDefault Domain = iota // same as DomainHost
	DomainNode                  // distinct nodes only
	DomainHost                  // distinct hosts
	DomainRack                  // distinct racks
	DomainZone                  // distinct zones
)

// Effective returns d with DomainDefault resolved to DomainHost.
func (d Domain) Effective() Domain {
	if d == DomainDefault {
		return DomainHost
	}
	return d
}

func (d Domain) String() string {
	switch d {
	case DomainDefault:
		return "default"
	case DomainNode:
		return "node"
	case DomainHost:
		return "host"
	case DomainRack:
		return "rack"
	case DomainZone:
		return "zone"
	}
	return fmt.Sprintf("Domain(%d)", uint8(d))
}

// ParseDomain parses "node", "host", "rack" or "zone" ("" gives the default).
func ParseDomain(s string) (Domain, error) {
	switch s {
	case "", "default":
		return DomainDefault, nil
	case "node":
		return DomainNode, nil
	case "host":
		return DomainHost, nil
	case "rack":
		return DomainRack, nil
	case "zone":
		return DomainZone, nil
	}
	return 0, fmt.Errorf("placement: unknown failure domain %q (want node, host, rack or zone)", s)
}

// PartitionState is the write state of a partition.
type PartitionState uint8

// Partition states.
const (
	// PartitionActive accepts reads and writes on its master.
	PartitionActive PartitionState = iota
	// PartitionStuck holds writes (clients get a retryable wait) while a
	// planned handover lets the next master catch up.
	PartitionStuck
)

func (s PartitionState) String() string {
	switch s {
	case PartitionActive:
		return "active"
	case PartitionStuck:
		return "stuck"
	}
	return fmt.Sprintf("PartitionState(%d)", uint8(s))
}

// Partition is the assignment of one partition's replicas.
type Partition struct {
	ID PartitionID `msgpack:"id" json:"id"`
	// Master serves reads and writes. Empty when no replica is available.
	Master NodeID `msgpack:"master" json:"master"`
	// Slaves replicate from Master.
	Slaves []NodeID `msgpack:"slaves" json:"slaves"`
	// Learners are replicas a migration is filling: they copy the master's
	// data and follow its binlog like slaves, but serve nothing, are never
	// promoted and do not count as replicas for placement until the
	// migration makes them slaves (or master).
	Learners []NodeID `msgpack:"learners,omitempty" json:"learners,omitempty"`
	// InSync lists the replicas (master included) that must have a write
	// before a sync-mode table acknowledges it.
	InSync []NodeID `msgpack:"insync,omitempty" json:"insync,omitempty"`
	// Gen is the master generation: it increases every time the master
	// changes, and every binlog record carries the generation it was
	// written under.
	Gen   uint64         `msgpack:"gen" json:"gen"`
	State PartitionState `msgpack:"state" json:"state"`
}

// Replicas returns the master (when set) followed by the slaves, in a new
// slice.
func (p *Partition) Replicas() []NodeID {
	out := make([]NodeID, 0, 1+len(p.Slaves))
	if p.Master != "" {
		out = append(out, p.Master)
	}
	return append(out, p.Slaves...)
}

// HasReplica reports whether node holds a replica of p.
func (p *Partition) HasReplica(node NodeID) bool {
	return p.Master == node || slices.Contains(p.Slaves, node)
}

// IsSlave reports whether node is a slave of p.
func (p *Partition) IsSlave(node NodeID) bool {
	return slices.Contains(p.Slaves, node)
}

// IsLearner reports whether node is a learner of p.
func (p *Partition) IsLearner(node NodeID) bool {
	return slices.Contains(p.Learners, node)
}

// Holds reports whether node holds a copy of p: as master, slave or
// learner.
func (p *Partition) Holds(node NodeID) bool {
	return p.HasReplica(node) || p.IsLearner(node)
}

// Clone returns a deep copy of p.
func (p Partition) Clone() Partition {
	p.Slaves = slices.Clone(p.Slaves)
	p.Learners = slices.Clone(p.Learners)
	p.InSync = slices.Clone(p.InSync)
	return p
}

// Table is one table of the cluster map.
type Table struct {
	ID          TableID `msgpack:"id" json:"id"`
	Name        string  `msgpack:"name" json:"name"`
	Replication int     `msgpack:"replication" json:"replication"`
	Mode        Mode    `msgpack:"mode" json:"mode"`
	// Fenced tables stop accepting writes on a master whose meta lease has
	// lapsed (always true for sync tables).
	Fenced     bool        `msgpack:"fenced" json:"fenced"`
	MinInSync  int         `msgpack:"mininsync,omitempty" json:"min_in_sync,omitempty"`
	Domain     Domain      `msgpack:"domain,omitempty" json:"domain,omitempty"`
	Partitions []Partition `msgpack:"partitions" json:"partitions"`
}

// PartitionFor returns the partition that key belongs to.
func (t *Table) PartitionFor(key []byte) *Partition {
	return &t.Partitions[PartitionOf(key, len(t.Partitions))]
}

// Clone returns a deep copy of t.
func (t Table) Clone() Table {
	parts := make([]Partition, len(t.Partitions))
	for i := range t.Partitions {
		parts[i] = t.Partitions[i].Clone()
	}
	t.Partitions = parts
	return t
}

// MigrationState is where a migration stands.
type MigrationState uint8

// Migration states. A migration goes Pending → Copying → (Handover →)
// Done, or ends Cancelled or Failed, rolled back.
const (
	// MigrationPending waits for a free slot (bounded concurrency).
	MigrationPending MigrationState = iota
	// MigrationCopying has the target as a learner: it loads a snapshot
	// from the master, then follows the binlog.
	MigrationCopying
	// MigrationHandover moves a master: the partition is held (stuck)
	// until the target has the master's last record.
	MigrationHandover
	// MigrationDone: the target holds the replica, the source none.
	MigrationDone
	// MigrationCancelled was stopped by an operator and rolled back.
	MigrationCancelled
	// MigrationFailed could not go on (a node down for good, the table
	// dropped, no progress) and was rolled back.
	MigrationFailed
)

func (s MigrationState) String() string {
	switch s {
	case MigrationPending:
		return "pending"
	case MigrationCopying:
		return "copying"
	case MigrationHandover:
		return "handover"
	case MigrationDone:
		return "done"
	case MigrationCancelled:
		return "cancelled"
	case MigrationFailed:
		return "failed"
	}
	return fmt.Sprintf("MigrationState(%d)", uint8(s))
}

// Finished reports whether the migration has ended.
func (s MigrationState) Finished() bool { return s >= MigrationDone }

// Migration moves one replica of a partition from node From to node To
// (From empty: add a replica on To, re-creating one that was lost).
type Migration struct {
	ID        uint64         `msgpack:"id" json:"id"`
	Table     TableID        `msgpack:"t" json:"table_id"`
	Partition PartitionID    `msgpack:"p" json:"partition"`
	From      NodeID         `msgpack:"f,omitempty" json:"from,omitempty"`
	To        NodeID         `msgpack:"to" json:"to"`
	State     MigrationState `msgpack:"s" json:"state"`
	// Batch groups the migrations of one rebalance, drain or
	// re-replication (0 for a single move).
	Batch uint64 `msgpack:"b,omitempty" json:"batch,omitempty"`
	// RateBytes bounds the copy bandwidth in bytes per second (0: none).
	RateBytes int64 `msgpack:"rb,omitempty" json:"rate_bytes,omitempty"`
	// Created and Updated are Unix milliseconds, set by the proposer.
	Created int64 `msgpack:"c" json:"created_ms"`
	Updated int64 `msgpack:"u" json:"updated_ms"`
	// Attempts counts failed handovers of a moving master.
	Attempts int `msgpack:"a,omitempty" json:"attempts,omitempty"`
	// Error says why the migration failed or was cancelled.
	Error string `msgpack:"err,omitempty" json:"error,omitempty"`
}

// Migration returns the migration with the given ID, or nil.
func (m *Map) Migration(id uint64) *Migration {
	for i := range m.Migrations {
		if m.Migrations[i].ID == id {
			return &m.Migrations[i]
		}
	}
	return nil
}

// Moving returns the unfinished migration of a partition, or nil.
func (m *Map) Moving(table TableID, part PartitionID) *Migration {
	for i := range m.Migrations {
		mg := &m.Migrations[i]
		if mg.Table == table && mg.Partition == part && !mg.State.Finished() {
			return mg
		}
	}
	return nil
}

// MetaMember is one member of the meta Raft group.
type MetaMember struct {
	ID       uint64 `msgpack:"id" json:"id"`
	RaftAddr string `msgpack:"raft" json:"raft_addr"`
	RPCAddr  string `msgpack:"rpc" json:"rpc_addr"`
	// Node is the ID of the data node in the member's process, if any:
	// it is admitted without approval (see meta.AdmitApproved).
	Node NodeID `msgpack:"node,omitempty" json:"node,omitempty"`
}

// Map is the cluster map: the meta group's authoritative view of nodes,
// tables and partition assignments at one epoch. Nodes are sorted by ID and
// tables by name.
type Map struct {
	Epoch  Epoch        `msgpack:"epoch" json:"epoch"`
	Nodes  []Node       `msgpack:"nodes" json:"nodes"`
	Tables []Table      `msgpack:"tables" json:"tables"`
	Meta   []MetaMember `msgpack:"meta" json:"meta"`
	// NextTableID is the ID the next created table gets.
	NextTableID TableID `msgpack:"next_table" json:"next_table_id"`
	// Migrations are the replica moves in progress, in the order they were
	// queued, followed by the most recent finished ones.
	Migrations []Migration `msgpack:"migrations,omitempty" json:"migrations,omitempty"`
	// NextID is the last ID given to a migration or a batch.
	NextID uint64 `msgpack:"next_id,omitempty" json:"next_id,omitempty"`
	// Removed lists the store IDs of nodes an operator removed (the most
	// recent ones): such a store may not register again.
	Removed []string `msgpack:"removed,omitempty" json:"removed,omitempty"`
	// Approved lists node IDs an administrator admitted before they
	// registered, for a meta group that admits new nodes only so; an ID
	// leaves the list when its node registers.
	Approved []NodeID `msgpack:"approved,omitempty" json:"approved,omitempty"`
}

// Table returns the table called name, or nil.
func (m *Map) Table(name string) *Table {
	i := sort.Search(len(m.Tables), func(i int) bool { return m.Tables[i].Name >= name })
	if i < len(m.Tables) && m.Tables[i].Name == name {
		return &m.Tables[i]
	}
	return nil
}

// TableByID returns the table with the given ID, or nil.
func (m *Map) TableByID(id TableID) *Table {
	for i := range m.Tables {
		if m.Tables[i].ID == id {
			return &m.Tables[i]
		}
	}
	return nil
}

// Node returns the node with the given ID, or nil.
func (m *Map) Node(id NodeID) *Node {
	i := sort.Search(len(m.Nodes), func(i int) bool { return m.Nodes[i].ID >= id })
	if i < len(m.Nodes) && m.Nodes[i].ID == id {
		return &m.Nodes[i]
	}
	return nil
}

// NodeAddr returns the RPC address of node id, or "" when it is unknown.
func (m *Map) NodeAddr(id NodeID) string {
	if n := m.Node(id); n != nil {
		return n.Addr
	}
	return ""
}

// Clone returns a deep copy of m.
func (m *Map) Clone() *Map {
	out := *m
	out.Nodes = slices.Clone(m.Nodes)
	out.Meta = slices.Clone(m.Meta)
	out.Migrations = slices.Clone(m.Migrations)
	out.Removed = slices.Clone(m.Removed)
	out.Approved = slices.Clone(m.Approved)
	out.Tables = make([]Table, len(m.Tables))
	for i := range m.Tables {
		out.Tables[i] = m.Tables[i].Clone()
	}
	return &out
}

// SortNodes sorts m.Nodes by ID.
func (m *Map) SortNodes() {
	sort.Slice(m.Nodes, func(i, j int) bool { return m.Nodes[i].ID < m.Nodes[j].ID })
}

// SortTables sorts m.Tables by name.
func (m *Map) SortTables() {
	sort.Slice(m.Tables, func(i, j int) bool { return m.Tables[i].Name < m.Tables[j].Name })
}
