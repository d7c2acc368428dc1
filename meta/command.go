package meta

import (
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// op is the type of a state machine command.
type op uint8

const (
	opRegisterNode op = iota + 1 // add or update a data node
	opSetMember                  // record a meta member's addresses
	opCreateTable                // add a table with a computed assignment
	opDropTable                  // remove a table
	opUpdate                     // node states and partition assignments, atomically
	opRemoveMember               // forget a meta member removed from the group
	opMigrate                    // queue migrations
	opNodeAdmin                  // drain, undrain, remove a node or set its weight
	opAlterTable                 // change a table's mode, min in-sync or fencing
)

// Result codes of Update (sm.Result.Value).
const (
	resOK       uint64 = iota + 1
	resConflict        // ExpectEpoch does not match: recompute and retry
	resExists          // table name taken
	resNotFound        // table or node unknown
	resInvalid         // malformed command
	resRefused         // a new node without the approval the command requires
)

// command is one proposal. It is msgpack encoded with named fields so it
// can evolve.
type command struct {
	Op op `msgpack:"op"`
	// ID identifies the proposal: a retried proposal that did commit the
	// first time is answered with the first result, not applied again.
	ID uint64 `msgpack:"id,omitempty"`
	// ExpectEpoch, when non-zero, makes the command apply only if the map
	// is still at that epoch.
	ExpectEpoch placement.Epoch       `msgpack:"ee,omitempty"`
	Node        *placement.Node       `msgpack:"node,omitempty"`
	Member      *placement.MetaMember `msgpack:"member,omitempty"`
	Table       *placement.Table      `msgpack:"table,omitempty"`
	Name        string                `msgpack:"name,omitempty"`
	NodeStates  []nodeStateChange     `msgpack:"ns,omitempty"`
	Partitions  []partitionChange     `msgpack:"pc,omitempty"`
	// Migrations are queued by opMigrate. IDBase must be the map's NextID
	// when the command applies: the migrations get the IDs that follow it
	// (after the batch's, when NewBatch asks for one), so the proposer
	// knows them in advance.
	Migrations []placement.Migration `msgpack:"mig,omitempty"`
	IDBase     uint64                `msgpack:"idb,omitempty"`
	NewBatch   bool                  `msgpack:"nb,omitempty"`
	// MigrationChanges move migrations on, atomically with Partitions.
	MigrationChanges []migrationChange `msgpack:"mc,omitempty"`
	// NodeAdmin is opNodeAdmin's change.
	NodeAdmin *nodeAdmin `msgpack:"na,omitempty"`
	// NeedApproval makes opRegisterNode refuse a node ID that is neither
	// in the map nor in its Approved list (admin-approved admission).
	NeedApproval bool `msgpack:"ap,omitempty"`
}

type nodeStateChange struct {
	Node  placement.NodeID    `msgpack:"n"`
	State placement.NodeState `msgpack:"s"`
	// Since is when the proposer decided the change (Unix ms).
	Since int64 `msgpack:"t,omitempty"`
}

// migrationChange moves one migration from state Expect to State
// (compare-and-set, as partitionChange.Expect).
type migrationChange struct {
	ID       uint64                   `msgpack:"id"`
	Expect   placement.MigrationState `msgpack:"x"`
	State    placement.MigrationState `msgpack:"s"`
	Updated  int64                    `msgpack:"u"`
	Attempts int                      `msgpack:"a,omitempty"`
	Error    string                   `msgpack:"e,omitempty"`
}

// nodeAdmin is an operator's change to a data node.
type nodeAdmin struct {
	Op     nodeOp           `msgpack:"op"`
	Node   placement.NodeID `msgpack:"n"`
	Weight int              `msgpack:"w,omitempty"`
}

// nodeOp is what nodeAdmin does.
type nodeOp uint8

const (
	nodeOpDrain   nodeOp = iota + 1 // mark draining: replicas move away
	nodeOpUndrain                   // draining no more
	nodeOpRemove                    // forget a node that holds nothing
	nodeOpWeight                    // set the weight
	nodeOpApprove                   // admit a node ID that has not registered yet
	nodeOpRevoke                    // withdraw an approval not used yet
)

// maxFinishedMigrations bounds the finished migrations the map keeps, and
// maxRemoved the store IDs of removed nodes.
const (
	maxFinishedMigrations = 64
	maxRemoved            = 1024
)

type partitionChange struct {
	Table     placement.TableID     `msgpack:"t"`
	Partition placement.PartitionID `msgpack:"p"`
	// The partition's new assignment (its ID is set from Partition).
	New placement.Partition `msgpack:"new"`
	// Expect, when set, makes the change apply only if the partition is
	// still exactly as the proposer saw it (compare-and-set), so changes to
	// different partitions do not invalidate each other.
	Expect *placement.Partition `msgpack:"expect,omitempty"`
}

// samePartition reports whether two assignments are equal.
func samePartition(a, b *placement.Partition) bool {
	return a.Master == b.Master && a.Gen == b.Gen && a.State == b.State &&
		slices.Equal(a.Slaves, b.Slaves) && slices.Equal(a.Learners, b.Learners) && slices.Equal(a.InSync, b.InSync)
}

// apply executes cmd on m, which the caller owns (a clone of the current
// map). It returns a result code and, for opCreateTable, the table as
// stored. It must be deterministic.
func apply(m *placement.Map, cmd *command) (uint64, *placement.Table, error) {
	if cmd.ExpectEpoch != 0 && cmd.ExpectEpoch != m.Epoch {
		return resConflict, nil, fmt.Errorf("map moved from epoch %d to %d", cmd.ExpectEpoch, m.Epoch)
	}
	switch cmd.Op {
	case opRegisterNode:
		return applyRegister(m, cmd.Node, false, cmd.NeedApproval)
	case opSetMember:
		return applySetMember(m, cmd.Member)
	case opCreateTable:
		return applyCreateTable(m, cmd.Table)
	case opDropTable:
		t := m.Table(cmd.Name)
		if t == nil {
			return resNotFound, nil, fmt.Errorf("table %q does not exist", cmd.Name)
		}
		m.Tables = slices.DeleteFunc(m.Tables, func(t placement.Table) bool { return t.Name == cmd.Name })
		m.Epoch++
		return resOK, nil, nil
	case opUpdate:
		return applyUpdate(m, cmd)
	case opRemoveMember:
		return applyRemoveMember(m, cmd.Member)
	case opMigrate:
		return applyMigrate(m, cmd)
	case opNodeAdmin:
		return applyNodeAdmin(m, cmd.NodeAdmin)
	case opAlterTable:
		return applyAlterTable(m, cmd.Table)
	}
	return resInvalid, nil, fmt.Errorf("unknown command %d", cmd.Op)
}

// applyRegister adds or updates a node. A known node whose store changed
// has lost its data: that is registered only together with the failover
// of what it mastered (newStore), never as a plain update. With
// needApproval a node ID the map does not know joins only if it is in
// m.Approved, and leaves that list.
func applyRegister(m *placement.Map, n *placement.Node, newStore, needApproval bool) (uint64, *placement.Table, error) {
	if n == nil || n.ID == "" || n.Addr == "" {
		return resInvalid, nil, fmt.Errorf("register: node needs an ID and an address")
	}
	if n.Weight <= 0 {
		n.Weight = 1
	}
	if n.StoreID != "" && slices.Contains(m.Removed, n.StoreID) {
		return resInvalid, nil, fmt.Errorf("register: node %s was removed from the cluster; start it with an empty data directory to join again", n.ID)
	}
	if cur := m.Node(n.ID); cur != nil && cur.StoreID != "" && cur.StoreID != n.StoreID && !newStore {
		return resConflict, nil, fmt.Errorf("register: node %s came back with another store", n.ID)
	}
	if cur := m.Node(n.ID); cur != nil {
		// The weight a node registers with is its first one; afterwards
		// operators change it (opNodeAdmin).
		if cur.Addr == n.Addr && cur.Labels == n.Labels && cur.StoreID == n.StoreID {
			return resOK, nil, nil
		}
		cur.Addr, cur.Labels, cur.StoreID = n.Addr, n.Labels, n.StoreID
		m.Epoch++
		return resOK, nil, nil
	}
	if needApproval {
		if !admitted(m, n.ID) {
			return resRefused, nil, fmt.Errorf("register: node %s is not approved", n.ID)
		}
		m.Approved = withoutID(m.Approved, n.ID)
	}
	nn := *n
	nn.State = placement.NodeUp
	m.Nodes = append(m.Nodes, nn)
	m.SortNodes()
	m.Epoch++
	return resOK, nil, nil
}

func applySetMember(m *placement.Map, mm *placement.MetaMember) (uint64, *placement.Table, error) {
	if mm == nil || mm.ID == 0 {
		return resInvalid, nil, fmt.Errorf("set member: no member ID")
	}
	for i := range m.Meta {
		if m.Meta[i].ID == mm.ID {
			if m.Meta[i] == *mm {
				return resOK, nil, nil
			}
			m.Meta[i] = *mm
			m.Epoch++
			return resOK, nil, nil
		}
	}
	m.Meta = append(m.Meta, *mm)
	slices.SortFunc(m.Meta, func(a, b placement.MetaMember) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	m.Epoch++
	return resOK, nil, nil
}

func applyCreateTable(m *placement.Map, t *placement.Table) (uint64, *placement.Table, error) {
	if t == nil || t.Name == "" || len(t.Partitions) == 0 {
		return resInvalid, nil, fmt.Errorf("create table: needs a name and partitions")
	}
	if m.Table(t.Name) != nil {
		return resExists, nil, fmt.Errorf("table %q already exists", t.Name)
	}
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.ID != placement.PartitionID(i) {
			return resInvalid, nil, fmt.Errorf("create table: partition %d has ID %d", i, p.ID)
		}
		for _, n := range p.Replicas() {
			if m.Node(n) == nil {
				return resNotFound, nil, fmt.Errorf("create table: unknown node %q", n)
			}
		}
	}
	nt := t.Clone()
	if m.NextTableID == 0 {
		m.NextTableID = 1
	}
	nt.ID = m.NextTableID
	m.NextTableID++
	m.Tables = append(m.Tables, nt)
	m.SortTables()
	m.Epoch++
	return resOK, &nt, nil
}

func applyUpdate(m *placement.Map, cmd *command) (uint64, *placement.Table, error) {
	if cmd.Node != nil {
		// A node that lost its store re-registers together with the
		// failover of what it mastered.
		if code, _, err := applyRegister(m, cmd.Node, true, false); code != resOK {
			return code, nil, err
		}
	}
	for _, ns := range cmd.NodeStates {
		n := m.Node(ns.Node)
		if n == nil {
			return resNotFound, nil, fmt.Errorf("update: unknown node %q", ns.Node)
		}
	}
	for _, pc := range cmd.Partitions {
		t := m.TableByID(pc.Table)
		if t == nil {
			return resNotFound, nil, fmt.Errorf("update: unknown table %d", pc.Table)
		}
		if int(pc.Partition) >= len(t.Partitions) {
			return resNotFound, nil, fmt.Errorf("update: table %s has no partition %d", t.Name, pc.Partition)
		}
		for _, n := range pc.New.Replicas() {
			if m.Node(n) == nil {
				return resNotFound, nil, fmt.Errorf("update: unknown node %q", n)
			}
		}
		if pc.Expect != nil && !samePartition(pc.Expect, &t.Partitions[pc.Partition]) {
			return resConflict, nil, fmt.Errorf("table %s partition %d changed", t.Name, pc.Partition)
		}
	}
	for _, mc := range cmd.MigrationChanges {
		mg := m.Migration(mc.ID)
		if mg == nil {
			return resNotFound, nil, fmt.Errorf("update: no migration %d", mc.ID)
		}
		if mg.State != mc.Expect {
			return resConflict, nil, fmt.Errorf("migration %d is %v, not %v", mc.ID, mg.State, mc.Expect)
		}
	}
	for _, ns := range cmd.NodeStates {
		n := m.Node(ns.Node)
		n.State = ns.State
		n.Since = ns.Since
	}
	for _, pc := range cmd.Partitions {
		t := m.TableByID(pc.Table)
		np := pc.New.Clone()
		np.ID = pc.Partition
		t.Partitions[pc.Partition] = np
	}
	for _, mc := range cmd.MigrationChanges {
		mg := m.Migration(mc.ID)
		mg.State, mg.Updated, mg.Attempts, mg.Error = mc.State, mc.Updated, mc.Attempts, mc.Error
	}
	pruneMigrations(m)
	m.Epoch++
	return resOK, nil, nil
}

// applyMigrate queues cmd.Migrations as pending, with IDs after
// cmd.IDBase. Every migration must be possible now: its table and
// partition exist, From (when set) holds a replica, To is a known node
// holding no copy. Any that is not fails the whole command. A partition
// may have several moves queued (a rebalance plans them together): they
// run one after the other, in order.
func applyMigrate(m *placement.Map, cmd *command) (uint64, *placement.Table, error) {
	if cmd.IDBase != m.NextID {
		return resConflict, nil, fmt.Errorf("migrate: IDs moved on from %d to %d", cmd.IDBase, m.NextID)
	}
	if len(cmd.Migrations) == 0 {
		return resInvalid, nil, fmt.Errorf("migrate: nothing to migrate")
	}
	next := m.NextID
	var batch uint64
	if cmd.NewBatch {
		next++
		batch = next
	}
	for _, mg := range cmd.Migrations {
		t := m.TableByID(mg.Table)
		if t == nil || int(mg.Partition) >= len(t.Partitions) {
			return resNotFound, nil, fmt.Errorf("migrate: no table %d partition %d", mg.Table, mg.Partition)
		}
		p := &t.Partitions[mg.Partition]
		switch {
		case mg.From == "" && mg.To == "":
			return resInvalid, nil, fmt.Errorf("migrate: table %s partition %d: no source and no target", t.Name, mg.Partition)
		case mg.From != "" && !p.HasReplica(mg.From):
			return resInvalid, nil, fmt.Errorf("migrate: %s holds no replica of table %s partition %d", mg.From, t.Name, mg.Partition)
		case mg.To != "" && m.Node(mg.To) == nil:
			return resNotFound, nil, fmt.Errorf("migrate: unknown node %s", mg.To)
		case mg.To != "" && p.Holds(mg.To):
			return resInvalid, nil, fmt.Errorf("migrate: %s already holds table %s partition %d", mg.To, t.Name, mg.Partition)
		}
	}
	for _, mg := range cmd.Migrations {
		next++
		mg.ID = next
		mg.State = placement.MigrationPending
		if cmd.NewBatch {
			mg.Batch = batch
		}
		mg.Updated = mg.Created
		m.Migrations = append(m.Migrations, mg)
	}
	m.NextID = next
	pruneMigrations(m)
	m.Epoch++
	return resOK, nil, nil
}

// pruneMigrations drops the oldest finished migrations beyond
// maxFinishedMigrations.
func pruneMigrations(m *placement.Map) {
	finished := 0
	for _, mg := range m.Migrations {
		if mg.State.Finished() {
			finished++
		}
	}
	for i := 0; finished > maxFinishedMigrations && i < len(m.Migrations); {
		if m.Migrations[i].State.Finished() {
			m.Migrations = slices.Delete(m.Migrations, i, i+1)
			finished--
			continue
		}
		i++
	}
}

// applyNodeAdmin drains, undrains, removes a node or sets its weight.
func applyNodeAdmin(m *placement.Map, na *nodeAdmin) (uint64, *placement.Table, error) {
	if na == nil {
		return resInvalid, nil, fmt.Errorf("node admin: no change")
	}
	if na.Op == nodeOpApprove || na.Op == nodeOpRevoke {
		return applyApproval(m, na)
	}
	n := m.Node(na.Node)
	if n == nil {
		return resNotFound, nil, fmt.Errorf("unknown node %s", na.Node)
	}
	switch na.Op {
	case nodeOpDrain, nodeOpUndrain:
		drain := na.Op == nodeOpDrain
		if n.Drain == drain {
			return resOK, nil, nil
		}
		n.Drain = drain
	case nodeOpWeight:
		if na.Weight < 1 {
			return resInvalid, nil, fmt.Errorf("node %s: weight %d, want at least 1", na.Node, na.Weight)
		}
		if n.Weight == na.Weight {
			return resOK, nil, nil
		}
		n.Weight = na.Weight
	case nodeOpRemove:
		if held := holdings(m, na.Node); held > 0 {
			return resInvalid, nil, fmt.Errorf("node %s still holds %d replicas: drain it first", na.Node, held)
		}
		for _, mg := range m.Migrations {
			if !mg.State.Finished() && (mg.From == na.Node || mg.To == na.Node) {
				return resInvalid, nil, fmt.Errorf("node %s is part of migration %d, which has not finished", na.Node, mg.ID)
			}
		}
		if n.StoreID != "" {
			m.Removed = append(m.Removed, n.StoreID)
			if len(m.Removed) > maxRemoved {
				m.Removed = slices.Delete(m.Removed, 0, len(m.Removed)-maxRemoved)
			}
		}
		m.Nodes = slices.DeleteFunc(m.Nodes, func(x placement.Node) bool { return x.ID == na.Node })
	default:
		return resInvalid, nil, fmt.Errorf("node admin: unknown operation %d", na.Op)
	}
	m.Epoch++
	return resOK, nil, nil
}

// holdings counts the partition copies (master, slave or learner) node
// holds in m.
func holdings(m *placement.Map, node placement.NodeID) int {
	n := 0
	for _, t := range m.Tables {
		for i := range t.Partitions {
			if t.Partitions[i].Holds(node) {
				n++
			}
		}
	}
	return n
}
