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
)

// Result codes of Update (sm.Result.Value).
const (
	resOK       uint64 = iota + 1
	resConflict        // ExpectEpoch does not match: recompute and retry
	resExists          // table name taken
	resNotFound        // table or node unknown
	resInvalid         // malformed command
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
}

type nodeStateChange struct {
	Node  placement.NodeID    `msgpack:"n"`
	State placement.NodeState `msgpack:"s"`
}

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
		slices.Equal(a.Slaves, b.Slaves) && slices.Equal(a.InSync, b.InSync)
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
		return applyRegister(m, cmd.Node, false)
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
	}
	return resInvalid, nil, fmt.Errorf("unknown command %d", cmd.Op)
}

// applyRegister adds or updates a node. A known node whose store changed
// has lost its data: that is registered only together with the failover
// of what it mastered (newStore), never as a plain update.
func applyRegister(m *placement.Map, n *placement.Node, newStore bool) (uint64, *placement.Table, error) {
	if n == nil || n.ID == "" || n.Addr == "" {
		return resInvalid, nil, fmt.Errorf("register: node needs an ID and an address")
	}
	if n.Weight <= 0 {
		n.Weight = 1
	}
	if cur := m.Node(n.ID); cur != nil && cur.StoreID != "" && cur.StoreID != n.StoreID && !newStore {
		return resConflict, nil, fmt.Errorf("register: node %s came back with another store", n.ID)
	}
	if cur := m.Node(n.ID); cur != nil {
		if cur.Addr == n.Addr && cur.Labels == n.Labels && cur.Weight == n.Weight && cur.StoreID == n.StoreID {
			return resOK, nil, nil
		}
		cur.Addr, cur.Labels, cur.Weight, cur.StoreID = n.Addr, n.Labels, n.Weight, n.StoreID
		m.Epoch++
		return resOK, nil, nil
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
		if code, _, err := applyRegister(m, cmd.Node, true); code != resOK {
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
	for _, ns := range cmd.NodeStates {
		m.Node(ns.Node).State = ns.State
	}
	for _, pc := range cmd.Partitions {
		t := m.TableByID(pc.Table)
		np := pc.New.Clone()
		np.ID = pc.Partition
		t.Partitions[pc.Partition] = np
	}
	m.Epoch++
	return resOK, nil, nil
}
