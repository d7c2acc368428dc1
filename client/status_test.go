package client

import (
	"reflect"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestStatusEnumsMatchWire checks that the client's roles and replication
// states convert from the protocol's by value and keep their names.
func TestStatusEnumsMatchWire(t *testing.T) {
	for v := range 6 {
		if got, want := Role(v).String(), wire.Role(v).String(); got != want {
			t.Errorf("Role(%d) = %q, wire says %q", v, got, want)
		}
		if got, want := ReplicaState(v).String(), wire.ReplState(v).String(); got != want {
			t.Errorf("ReplicaState(%d) = %q, wire says %q", v, got, want)
		}
	}
	for _, c := range []struct{ client, wire uint8 }{
		{uint8(RoleNone), uint8(wire.RoleNone)}, {uint8(RoleMaster), uint8(wire.RoleMaster)},
		{uint8(RoleSlave), uint8(wire.RoleSlave)}, {uint8(RoleLearner), uint8(wire.RoleLearner)},
		{uint8(ReplicaIdle), uint8(wire.ReplIdle)}, {uint8(ReplicaConnecting), uint8(wire.ReplConnecting)},
		{uint8(ReplicaFullSyncing), uint8(wire.ReplFullSyncing)}, {uint8(ReplicaStreaming), uint8(wire.ReplStreaming)},
	} {
		if c.client != c.wire {
			t.Errorf("client constant %d, wire constant %d", c.client, c.wire)
		}
	}
}

// TestStatusFromWire checks that every field of a status reply reaches the
// client's Status.
func TestStatusFromWire(t *testing.T) {
	m := &placement.Map{Epoch: 9}
	w := &wire.StatusReply{
		Epoch: 9, LeaderID: 2, LeaderAddr: "m2:7070", Self: 2, Term: 4, Role: "leader", Applied: 77, Map: m,
		Members: []wire.MemberStatus{{MetaMember: placement.MetaMember{ID: 2, RaftAddr: "m2:7071", RPCAddr: "m2:7070", Node: "n2"}, Leader: true}},
		Nodes: []wire.NodeStatus{{Node: placement.Node{ID: "n2", Addr: "m2:7070"}, HeartbeatAgeMs: 15, Replicas: []wire.ReplicaStatus{{
			Table: 1, Partition: 3, Role: wire.RoleMaster, State: wire.ReplIdle, Gen: 5, Seq: 100, FirstSeq: 10, MapGen: 5,
			LagRecords: 1, LagMs: 2, Incomplete: true, FullSyncs: 3, LoadedBytes: 4, Bytes: 6,
			Slaves: []wire.SlaveProgress{{Node: "n3", Acked: 90, LagMs: 12}},
		}}}},
	}
	want := &Status{
		Epoch: 9, LeaderID: 2, LeaderAddr: "m2:7070", Self: 2, Term: 4, Role: "leader", Applied: 77, Map: m,
		Members: []MemberStatus{{ID: 2, RaftAddr: "m2:7071", RPCAddr: "m2:7070", Node: "n2", Leader: true}},
		Nodes: []NodeStatus{{Node: placement.Node{ID: "n2", Addr: "m2:7070"}, HeartbeatAgeMs: 15, Replicas: []ReplicaStatus{{
			Table: 1, Partition: 3, Role: RoleMaster, State: ReplicaIdle, Gen: 5, Seq: 100, FirstSeq: 10, MapGen: 5,
			LagRecords: 1, LagMs: 2, Incomplete: true, FullSyncs: 3, LoadedBytes: 4, Bytes: 6,
			Slaves: []SlaveProgress{{Node: "n3", Acked: 90, LagMs: 12}},
		}}}},
	}
	if got := statusFromWire(w); !reflect.DeepEqual(got, want) {
		t.Errorf("statusFromWire =\n%+v\nwant\n%+v", got, want)
	}

	wp := &wire.PlanReply{Epoch: 3, ReplicaMoves: 1, MasterChanges: 1, Minimum: 1, Summary: "s", Warnings: []string{"w"},
		Moves: []wire.PlanMove{{Table: "t", Partition: 2, Kind: "add", To: "n4"}}}
	wantPlan := &Plan{Epoch: 3, ReplicaMoves: 1, MasterChanges: 1, Minimum: 1, Summary: "s", Warnings: []string{"w"},
		Moves: []PlanMove{{Table: "t", Partition: 2, Kind: "add", To: "n4"}}}
	if got := planFromWire(wp); !reflect.DeepEqual(got, wantPlan) {
		t.Errorf("planFromWire = %+v, want %+v", got, wantPlan)
	}
}

// TestLimitsMatchWire checks that the client's limits default, print and
// convert as the protocol's do.
func TestLimitsMatchWire(t *testing.T) {
	if got, want := DefaultLimits().toWire(), wire.DefaultLimits(); got != want {
		t.Errorf("DefaultLimits = %+v, want %+v", got, want)
	}
	l := Limits{MaxValueSize: 4 << 10, MaxBatchOps: -1}
	if got, want := l.WithDefaults().toWire(), l.toWire().WithDefaults(); got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
	if got, want := l.String(), l.toWire().String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	// Every field converts: the conversion below fails to compile when
	// the two types' fields differ.
	if got := wire.Limits(l); got != l.toWire() {
		t.Errorf("toWire = %+v, want %+v", l.toWire(), got)
	}
}
