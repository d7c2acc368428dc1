package meta

import (
	"strings"
	"testing"

	"github.com/lni/dragonboat/v4"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func TestRemoveMemberCommand(t *testing.T) {
	s := newStateMachine(shardID, 1)
	for _, mm := range []placement.MetaMember{{ID: 1, RaftAddr: "r:1", RPCAddr: "p:1"}, {ID: 2, RaftAddr: "r:2"}} {
		if code, _ := update(t, s, &command{Op: opSetMember, Member: &mm}); code != resOK {
			t.Fatalf("set member %d: code %d", mm.ID, code)
		}
	}
	before := mapOf(t, s)
	cases := []struct {
		name  string
		mm    *placement.MetaMember
		want  uint64
		left  []uint64
		epoch placement.Epoch // added to before's
	}{
		{"no member", nil, resInvalid, []uint64{1, 2}, 0},
		{"zero ID", &placement.MetaMember{}, resInvalid, []uint64{1, 2}, 0},
		{"unknown", &placement.MetaMember{ID: 7}, resNotFound, []uint64{1, 2}, 0},
		{"known", &placement.MetaMember{ID: 1}, resOK, []uint64{2}, 1},
		{"again", &placement.MetaMember{ID: 1}, resNotFound, []uint64{2}, 1},
	}
	for _, c := range cases {
		code, res := update(t, s, &command{Op: opRemoveMember, Member: c.mm})
		if code != c.want {
			t.Errorf("%s: code %d (%s), want %d", c.name, code, res.Err, c.want)
		}
		m := mapOf(t, s)
		var ids []uint64
		for _, mm := range m.Meta {
			ids = append(ids, mm.ID)
		}
		if !equalIDs(ids, c.left) || m.Epoch != before.Epoch+c.epoch {
			t.Errorf("%s: members %v at epoch %d, want %v at epoch %d", c.name, ids, m.Epoch, c.left, before.Epoch+c.epoch)
		}
	}
	if len(before.Meta) != 2 {
		t.Errorf("a map handed out earlier changed: %v", before.Meta)
	}
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// state returns a group of voters (ID → Raft address r:ID) of which the
// listed ones are live, led by member 1.
func state(voters []uint64, live ...uint64) *groupState {
	g := &groupState{self: 1, leader: 1, m: &placement.Map{},
		mem:  &dragonboat.Membership{Nodes: map[uint64]string{}, Removed: map[uint64]struct{}{9: {}}},
		live: map[uint64]bool{}}
	for _, id := range voters {
		g.mem.Nodes[id] = "r:" + string(rune('0'+id))
	}
	for _, id := range live {
		g.live[id] = true
	}
	return g
}

func TestMembershipChecks(t *testing.T) {
	cases := []struct {
		name    string
		check   func() error
		refused string // substring of the refusal, "" when allowed
	}{
		{"grow a single member", func() error { return state([]uint64{1}, 1).checkAdd(2) }, ""},
		{"grow three live", func() error { return state([]uint64{1, 2, 3}, 1, 2, 3).checkAdd(4) }, ""},
		{"grow three, one down", func() error { return state([]uint64{1, 2, 3}, 1, 2).checkAdd(4) }, "need 3 to commit, but only 2 are live"},
		{"grow four, one down", func() error { return state([]uint64{1, 2, 3, 4}, 1, 2, 3).checkAdd(5) }, ""},
		{"remove the only member", func() error { return state([]uint64{1}, 1).checkRemove(1) }, "only member"},
		{"remove a dead member", func() error { return state([]uint64{1, 2, 3}, 1, 2).checkRemove(3) }, ""},
		{"remove a live member, one down", func() error { return state([]uint64{1, 2, 3}, 1, 2).checkRemove(2) }, "only 1 would be live (1), fewer than their quorum of 2"},
		{"remove the leader, all live", func() error { return state([]uint64{1, 2, 3}, 1, 2, 3).checkRemove(1) }, ""},
		{"remove from five, two down", func() error { return state([]uint64{1, 2, 3, 4, 5}, 1, 2, 3).checkRemove(3) }, "only 2 would be live"},
		{"new ID in use", func() error { return state([]uint64{1, 2, 3}).checkNew(2, "h:1") }, "a member already"},
		{"new ID used before", func() error { return state([]uint64{1, 2, 3}).checkNew(9, "h:1") }, "cannot be used again"},
		{"new address in use", func() error { return state([]uint64{1, 2, 3}).checkNew(4, "r:3") }, "member 3's"},
		{"new member", func() error { return state([]uint64{1, 2, 3}).checkNew(4, "h:1") }, ""},
		{"empty address", func() error { return checkRaftAddr(4, "") }, "required"},
		{"no port", func() error { return checkRaftAddr(4, "host") }, "missing port"},
		{"no host", func() error { return checkRaftAddr(4, ":7100") }, "no host"},
		{"port 0", func() error { return checkRaftAddr(4, "h:0") }, "1..65535"},
		{"port too large", func() error { return checkRaftAddr(4, "h:70000") }, "1..65535"},
		{"good address", func() error { return checkRaftAddr(4, "10.0.0.4:7100") }, ""},
	}
	for _, c := range cases {
		err := c.check()
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.refused != "" && err == nil:
			t.Errorf("%s: allowed, want a refusal with %q", c.name, c.refused)
		case c.refused != "" && (wire.CodeOf(err) != wire.CodeInvalid || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: %v (code %v), want CodeInvalid with %q", c.name, err, wire.CodeOf(err), c.refused)
		}
	}
}
