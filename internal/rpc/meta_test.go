package rpc

import (
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestSilentMembersTriedLast: a member whose attempt ran out of time is
// tried after the others (the leader too) until it answers again.
func TestSilentMembersTriedLast(t *testing.T) {
	m := NewMetaCaller(nil, nil)
	m.SetMembers([]placement.MetaMember{{RPCAddr: "a"}, {RPCAddr: "b"}, {RPCAddr: "c"}})
	m.LeaderHint("a", 1)
	for range 20 {
		if got := m.candidates(); got[0] != "a" || len(got) != 3 {
			t.Fatalf("candidates %v: want the leader a first", got)
		}
	}
	m.heard("a", false)
	m.heard("b", false)
	for range 20 {
		got := m.candidates()
		if len(got) != 3 || got[0] != "c" {
			t.Fatalf("candidates %v: want c, the one member not silent, first", got)
		}
	}
	m.heard("a", true)
	for range 20 {
		if got := m.candidates(); got[0] != "a" || got[2] != "b" {
			t.Fatalf("candidates %v: want the leader a first again and b, still silent, last", got)
		}
	}
}

// TestFormerMembersTriedAfterMembers: an address a newer list dropped is
// still tried, after the listed members, and leaves the former ones when
// it is listed again.
func TestFormerMembersTriedAfterMembers(t *testing.T) {
	m := NewMetaCaller(nil, nil)
	m.SetMembers([]placement.MetaMember{{RPCAddr: "a"}, {RPCAddr: "b"}, {RPCAddr: "c"}})
	m.SetMembers([]placement.MetaMember{{RPCAddr: "a"}})
	for range 20 {
		got := m.candidates()
		if len(got) != 3 || got[0] != "a" || !slices.Contains(got, "b") || !slices.Contains(got, "c") {
			t.Fatalf("candidates %v: want a, then the former members b and c", got)
		}
	}
	m.SetMembers([]placement.MetaMember{{RPCAddr: "a"}, {RPCAddr: "c"}})
	if len(m.former) != 1 || m.former[0] != "b" {
		t.Fatalf("former %v, want [b]", m.former)
	}
	m.heard("a", false)
	if got := m.candidates(); len(got) != 3 || got[0] != "c" || got[1] != "b" || got[2] != "a" {
		t.Fatalf("candidates %v: want the member c, the former b, then the silent a", got)
	}
}
