package meta

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func update(t *testing.T, s sm.IStateMachine, cmd *command) (uint64, updateResult) {
	t.Helper()
	b, err := wire.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Update(sm.Entry{Cmd: b})
	if err != nil {
		t.Fatal(err)
	}
	var res updateResult
	if err := wire.Unmarshal(r.Data, &res); err != nil {
		t.Fatal(err)
	}
	return r.Value, res
}

func mapOf(t *testing.T, s sm.IStateMachine) *placement.Map {
	t.Helper()
	v, err := s.Lookup(queryMap{})
	if err != nil {
		t.Fatal(err)
	}
	return v.(*placement.Map)
}

// script is a sequence of commands with the results they must give.
func script() []struct {
	cmd  command
	want uint64
} {
	table := placement.Table{Name: "t", Replication: 2, Partitions: []placement.Partition{
		{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1},
		{ID: 1, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 1},
	}}
	p0 := table.Partitions[0]
	moved := placement.Partition{Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 2}
	return []struct {
		cmd  command
		want uint64
	}{
		{command{Op: opRegisterNode, Node: &placement.Node{ID: "a", Addr: "a:1"}}, resOK},
		{command{Op: opRegisterNode, Node: &placement.Node{ID: "b", Addr: "b:1", Weight: 2}}, resOK},
		{command{Op: opRegisterNode, Node: &placement.Node{ID: ""}}, resInvalid},
		{command{Op: opSetMember, Member: &placement.MetaMember{ID: 1, RPCAddr: "m:1", RaftAddr: "m:2"}}, resOK},
		{command{Op: opCreateTable, Table: &table}, resOK},
		{command{Op: opCreateTable, Table: &table}, resExists},
		{command{Op: opUpdate, ExpectEpoch: 1, Partitions: []partitionChange{{Table: 1, Partition: 0, New: moved}}}, resConflict},
		{command{Op: opUpdate, Partitions: []partitionChange{{Table: 1, Partition: 0, New: moved, Expect: &moved}}}, resConflict},
		{command{Op: opUpdate, Partitions: []partitionChange{{Table: 1, Partition: 0, New: moved, Expect: &p0}}}, resOK},
		{command{Op: opUpdate, Partitions: []partitionChange{{Table: 1, Partition: 0, New: moved, Expect: &p0}}}, resConflict},
		{command{Op: opUpdate, NodeStates: []nodeStateChange{{Node: "a", State: placement.NodeDown}}}, resOK},
		{command{Op: opUpdate, NodeStates: []nodeStateChange{{Node: "zz", State: placement.NodeDown}}}, resNotFound},
		{command{Op: opDropTable, Name: "nope"}, resNotFound},
		// Admin-approved admission: a stranger is refused, an approved
		// ID joins once (using the approval up), a meta member's own
		// data node needs no approval, members cannot be approved.
		{command{Op: opRegisterNode, NeedApproval: true, Node: &placement.Node{ID: "c", Addr: "c:1"}}, resRefused},
		{command{Op: opNodeAdmin, NodeAdmin: &nodeAdmin{Op: nodeOpApprove, Node: "c"}}, resOK},
		{command{Op: opNodeAdmin, NodeAdmin: &nodeAdmin{Op: nodeOpApprove, Node: "a"}}, resInvalid},
		{command{Op: opRegisterNode, NeedApproval: true, Node: &placement.Node{ID: "c", Addr: "c:1"}}, resOK},
		{command{Op: opNodeAdmin, NodeAdmin: &nodeAdmin{Op: nodeOpRevoke, Node: "c"}}, resNotFound},
		{command{Op: opSetMember, Member: &placement.MetaMember{ID: 2, RPCAddr: "d:1", RaftAddr: "d:2", Node: "d"}}, resOK},
		{command{Op: opRegisterNode, NeedApproval: true, Node: &placement.Node{ID: "d", Addr: "d:1"}}, resOK},
		{command{Op: opNodeAdmin, NodeAdmin: &nodeAdmin{Op: nodeOpApprove, Node: "e"}}, resOK},
		{command{Op: opNodeAdmin, NodeAdmin: &nodeAdmin{Op: nodeOpRevoke, Node: "e"}}, resOK},
		{command{Op: opRegisterNode, NeedApproval: true, Node: &placement.Node{ID: "e", Addr: "e:1"}}, resRefused},
	}
}

func TestStateMachineIsDeterministicAndSnapshots(t *testing.T) {
	a, b := newStateMachine(1, 1), newStateMachine(1, 2)
	for i, step := range script() {
		for _, s := range []sm.IStateMachine{a, b} {
			if got, res := update(t, s, &step.cmd); got != step.want {
				t.Fatalf("step %d (%v): result %d (%s), want %d", i, step.cmd.Op, got, res.Err, step.want)
			}
		}
	}
	m := mapOf(t, a)
	if !reflect.DeepEqual(m, mapOf(t, b)) {
		t.Fatal("two state machines applying the same commands differ")
	}
	if m.Epoch != 12 || m.Node("c") == nil || m.Node("d") == nil || m.Node("e") != nil || len(m.Approved) != 0 || m.Table("t").ID != 1 || m.NextTableID != 2 || m.Node("a").State != placement.NodeDown ||
		m.Table("t").Partitions[0].Master != "b" || m.Node("b").Weight != 2 {
		t.Fatalf("map after the script: %+v", m)
	}

	var buf bytes.Buffer
	if err := a.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	c := newStateMachine(1, 3)
	if err := c.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, mapOf(t, c)) {
		t.Fatalf("recovered map differs:\n%+v\n%+v", m, mapOf(t, c))
	}
	if err := c.RecoverFromSnapshot(bytes.NewReader([]byte{0xc1, 0xff}), nil, nil); err == nil {
		t.Fatal("a corrupt snapshot was accepted")
	}
	// A map handed out by Lookup never changes afterwards.
	before := mapOf(t, a)
	update(t, a, &command{Op: opDropTable, Name: "t"})
	if before.Table("t") == nil || mapOf(t, a).Table("t") != nil {
		t.Fatal("Lookup's map was mutated by a later update")
	}
}

func report(node placement.NodeID, last time.Time, reps ...wire.ReplicaStatus) *nodeReport {
	r := &nodeReport{last: last, replicas: map[replicaKey]wire.ReplicaStatus{}}
	for _, rs := range reps {
		r.replicas[replicaKey{rs.Table, rs.Partition}] = rs
	}
	return r
}

func TestFailoverChoosesHighestCompleteSlave(t *testing.T) {
	now := time.Now()
	m := &placement.Map{Epoch: 5,
		Nodes: []placement.Node{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}},
		Tables: []placement.Table{{ID: 1, Name: "t", Partitions: []placement.Partition{
			{ID: 0, Master: "a", Slaves: []placement.NodeID{"b", "c", "d"}, Gen: 3},
			{ID: 1, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 1},
			{ID: 2, Master: "a", Slaves: []placement.NodeID{"d"}, Gen: 1},
		}}}}
	rs := func(p placement.PartitionID, gen, seq uint64, incomplete bool) wire.ReplicaStatus {
		return wire.ReplicaStatus{Table: 1, Partition: p, Gen: gen, Seq: seq, Incomplete: incomplete}
	}
	v := view{since: now.Add(-time.Hour), nodes: map[placement.NodeID]*nodeReport{
		// a is silent; b has the longest log but an older generation.
		"b": report("b", now, rs(0, 2, 90, false), rs(1, 1, 5, false)),
		"c": report("c", now, rs(0, 3, 40, false)),
		"d": report("d", now, rs(0, 3, 80, true), rs(2, 1, 7, true)),
	}}
	states, parts, _ := changes(m, v, now, time.Second)
	if len(states) != 1 || states[0].Node != "a" || states[0].State != placement.NodeDown {
		t.Fatalf("node states: %+v, want a down", states)
	}
	if len(parts) != 2 {
		t.Fatalf("changes: %+v, want partitions 0 and 2", parts)
	}
	p0, p2 := parts[0].New, parts[1].New
	if p0.Master != "c" || p0.Gen != 4 || !p0.IsSlave("a") || p0.IsSlave("c") {
		t.Errorf("partition 0: %+v, want c (highest (gen, seq) among complete slaves) at gen 4 with a kept as a slave", p0)
	}
	if p2.Master != "" || !p2.IsSlave("a") || !p2.IsSlave("d") || p2.Gen != 1 {
		t.Errorf("partition 2: %+v, want no master (its only slave is incomplete)", p2)
	}

	// A new leader declares nothing down during its grace period.
	v.since = now.Add(-500 * time.Millisecond)
	if states, parts, _ := changes(m, v, now, time.Second); len(states) != 0 || len(parts) != 0 {
		t.Errorf("during the grace period: %+v %+v, want nothing", states, parts)
	}
}

// TestALeaderThatHearsNobodyDeclaresNothingDown: when every node that is
// up in the map falls silent at once (the leader was paused, or nodes
// have not found it yet), nothing is declared down and nothing fails
// over; when only some do, those are declared down as usual.
func TestALeaderThatHearsNobodyDeclaresNothingDown(t *testing.T) {
	now := time.Now()
	old := now.Add(-time.Hour)
	m := &placement.Map{Epoch: 5,
		Nodes: []placement.Node{{ID: "a"}, {ID: "b"}, {ID: "c", State: placement.NodeDown}},
		Tables: []placement.Table{{ID: 1, Name: "t", Partitions: []placement.Partition{
			{ID: 0, Master: "a", Slaves: []placement.NodeID{"b", "c"}, Gen: 3},
		}}}}
	rs := wire.ReplicaStatus{Table: 1, Partition: 0, Gen: 3, Seq: 10}
	v := view{since: old, nodes: map[placement.NodeID]*nodeReport{
		"a": report("a", old, rs),
		"b": report("b", old, rs),
	}}
	states, parts, deaf := changes(m, v, now, time.Second)
	if !deaf || len(states) != 0 || len(parts) != 0 {
		t.Fatalf("every up node silent: deaf %v, states %+v, parts %+v; want deaf and no change", deaf, states, parts)
	}
	v.nodes["b"] = report("b", now, rs)
	states, parts, deaf = changes(m, v, now, time.Second)
	if deaf || len(states) != 1 || states[0].Node != "a" || len(parts) != 1 || parts[0].New.Master != "b" {
		t.Fatalf("a silent, b heard: deaf %v, states %+v, parts %+v; want a down and b promoted", deaf, states, parts)
	}
}

func TestRecoveryWaitsForTheBestCopy(t *testing.T) {
	now := time.Now()
	rs := func(p placement.PartitionID, gen, seq uint64, incomplete bool) wire.ReplicaStatus {
		return wire.ReplicaStatus{Table: 1, Partition: p, Gen: gen, Seq: seq, Incomplete: incomplete}
	}
	m := &placement.Map{Epoch: 9,
		Nodes: []placement.Node{{ID: "a"}, {ID: "b"}, {ID: "c"}},
		Tables: []placement.Table{{ID: 1, Name: "t", Partitions: []placement.Partition{
			{ID: 0, Master: "", Slaves: []placement.NodeID{"b", "c", "a"}, Gen: 4}, // every replica was down
			{ID: 1, Master: "a", Slaves: []placement.NodeID{"b", "c"}, Gen: 2},     // master lost its copy
			{ID: 2, Master: "c", Slaves: []placement.NodeID{"b"}, Gen: 1},          // c is silent
		}}}}
	old := now.Add(-time.Hour)
	// A new leader has heard only from b so far: nothing is promoted
	// before its grace period is over, although b would be eligible.
	v := view{since: now.Add(-500 * time.Millisecond), nodes: map[placement.NodeID]*nodeReport{
		"b": report("b", now, rs(0, 4, 10, false), rs(1, 2, 50, false), rs(2, 0, 0, false)),
	}}
	if _, parts, _ := changes(m, v, now, time.Second); len(parts) != 0 {
		t.Fatalf("promotions during the grace period: %+v", parts)
	}
	// After the grace period everyone alive has reported: a has the
	// longest copy of partition 0 and says its copy of partition 1 is
	// incomplete; c has been silent since long before.
	v.since = old
	v.nodes["a"] = report("a", now, rs(0, 4, 12, false), rs(1, 2, 70, true))
	v.nodes["c"] = report("c", old, rs(0, 4, 11, false), rs(2, 1, 30, false))
	_, parts, _ := changes(m, v, now, time.Second)
	got := map[placement.PartitionID]placement.Partition{}
	for _, pc := range parts {
		got[pc.Partition] = pc.New
	}
	if p := got[0]; p.Master != "a" || p.Gen != 5 {
		t.Errorf("partition 0: %+v, want a (the longest copy) at gen 5", p)
	}
	if p := got[1]; p.Master != "b" || !p.IsSlave("a") {
		t.Errorf("partition 1: %+v, want b to replace the master whose copy is incomplete", p)
	}
	if p, ok := got[2]; ok && p.Master == "b" {
		t.Errorf("partition 2: the empty replica b was promoted over c's 30 records: %+v", p)
	}
}

func TestRetriedProposalIsAnsweredNotReapplied(t *testing.T) {
	s := newStateMachine(1, 1)
	update(t, s, &command{Op: opRegisterNode, Node: &placement.Node{ID: "a", Addr: "a:1"}})
	table := placement.Table{Name: "t", Replication: 1, Partitions: []placement.Partition{{ID: 0, Master: "a", Gen: 1}}}
	create := command{Op: opCreateTable, Table: &table, ID: 77}
	code, first := update(t, s, &create)
	if code != resOK {
		t.Fatalf("create: %d %s", code, first.Err)
	}
	// The same proposal again (a retry after a timeout): same answer.
	code, again := update(t, s, &create)
	if code != resOK || again.Table == nil || again.Table.ID != first.Table.ID || mapOf(t, s).Epoch != first.Epoch {
		t.Fatalf("retry: %d %+v, want the first result %+v and no change", code, again, first)
	}
	// A new proposal of the same table is a real conflict.
	create.ID = 78
	if code, _ := update(t, s, &create); code != resExists {
		t.Fatalf("a second create: %d, want exists", code)
	}
	// The memory of proposals survives a snapshot.
	var buf bytes.Buffer
	if err := s.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := newStateMachine(1, 2)
	if err := r.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	create.ID = 77
	if code, res := update(t, r, &create); code != resOK || res.Table.ID != first.Table.ID {
		t.Fatalf("retry after a snapshot: %d %+v", code, res)
	}
}

func TestHeartbeatsOfACondemnedNodeAreNotAcknowledged(t *testing.T) {
	var d detector
	d.init()
	const down = time.Second
	t0 := time.Unix(1000, 0)
	hb := &wire.HeartbeatRequest{Node: "a"}
	if !d.observe(1, hb, t0) {
		t.Fatal("a heartbeat of a live node was not acknowledged")
	}
	// A heartbeat that arrived after the decision was taken vetoes it.
	if d.condemn([]placement.NodeID{"a"}, t0.Add(down/2), down) {
		t.Fatal("condemned a node heard from within the down timeout")
	}
	// Silent long enough: condemned, and its heartbeats are recorded but
	// refused until the proposal is over.
	if !d.condemn([]placement.NodeID{"a", "never-heard"}, t0.Add(2*down), down) {
		t.Fatal("could not condemn a silent node")
	}
	if d.observe(1, hb, t0.Add(2*down)) {
		t.Fatal("a condemned node's heartbeat was acknowledged: it would renew its lease across the failover")
	}
	if d.view().nodes["a"].last != t0.Add(2*down) {
		t.Fatal("a condemned node's heartbeat was not recorded")
	}
	d.absolve([]placement.NodeID{"a", "never-heard"})
	if !d.observe(1, hb, t0.Add(3*down)) {
		t.Fatal("heartbeats stay refused after the proposal")
	}
}
