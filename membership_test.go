package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// checkMembers lists the meta members through cl and fails the test
// unless they are want (IDs), led by one of them, each reachable except
// those in down. It returns the list.
func checkMembers(t *testing.T, ctx context.Context, cl *client.Client, want []uint64, down ...uint64) []client.MetaMemberStatus {
	t.Helper()
	var ms []client.MetaMemberStatus
	// A member that has just started may take a moment to record its
	// RPC address and to hear from the leader.
	err := testcluster.Poll(20*time.Second, func() error {
		var err error
		if ms, err = cl.MetaMembers(ctx); err != nil {
			return err
		}
		var ids []uint64
		leaders := 0
		for _, m := range ms {
			ids = append(ids, m.ID)
			if m.Leader {
				leaders++
			}
			if !m.Voting {
				return fmt.Errorf("member %d does not vote", m.ID)
			}
			if wantUp := !slices.Contains(down, m.ID); m.Reachable != wantUp || (wantUp && m.RPCAddr == "") {
				return fmt.Errorf("member %d: reachable %v, RPC address %q; want reachable %v", m.ID, m.Reachable, m.RPCAddr, wantUp)
			}
		}
		if !slices.Equal(ids, want) || leaders != 1 {
			return fmt.Errorf("members %v with %d leaders, want %v with one", ids, leaders, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("meta members: %v", err)
	}
	return ms
}

// metaIDs returns the meta IDs of the members with the given indexes.
func metaIDs(c *testcluster.Cluster, idx ...int) []uint64 {
	var out []uint64
	for _, i := range idx {
		out = append(out, c.Member(i).Cfg.MetaID)
	}
	slices.Sort(out)
	return out
}

// tableCheck creates a table after each membership change and checks that
// every table made before is still in the map and serves its key.
type tableCheck struct {
	t      *testing.T
	c      *testcluster.Cluster
	cl     *client.Client
	tables []string
}

func (tc *tableCheck) next(ctx context.Context) {
	tc.t.Helper()
	name := fmt.Sprintf("t%d", len(tc.tables))
	tc.c.CreateTable(name, client.TableOptions{Partitions: 4, Replication: 2})
	if err := tc.cl.Table(name).Set(ctx, []byte("k"), []byte(name)); err != nil {
		tc.t.Fatalf("write to %s: %v", name, err)
	}
	tc.tables = append(tc.tables, name)
	m := tc.c.Map()
	for _, tb := range tc.tables {
		if m.Table(tb) == nil {
			tc.t.Fatalf("table %s missing from the map at epoch %d", tb, m.Epoch)
		}
		v, err := tc.cl.Table(tb).Get(ctx, []byte("k"))
		if err != nil || string(v) != tb {
			tc.t.Fatalf("read %s: %q, %v", tb, v, err)
		}
	}
}

// TestMembershipGrowShrinkReplace grows a three-member meta group to five,
// removes the leader, replaces a member that was killed, then restarts
// every process: after each step the map and the admin calls work, and the
// membership holds across the restart. The members snapshot and compact
// their logs every few changes, so new members catch up from snapshots
// and restarts recover from them.
func TestMembershipGrowShrinkReplace(t *testing.T) {
	snapshots := func(cfg *zeppelin.Config) { cfg.Expert.MetaSnapshotEntries = 5 }
	c := splitCluster(t, 3, 3, func(_ int, cfg *zeppelin.Config) { snapshots(cfg) })
	ctx := ctxFor(t, 2*time.Minute)
	cl := c.NewClient("admin")
	tc := &tableCheck{t: t, c: c, cl: cl}
	metas := []int{0, 1, 2}
	checkMembers(t, ctx, cl, metaIDs(c, metas...))
	tc.next(ctx)

	for range 2 {
		i := c.AddServer(zeppelin.RoleMeta, snapshots)
		metas = append(metas, i)
		checkMembers(t, ctx, cl, metaIDs(c, metas...))
		if m := c.Server(i).Meta().Map(); m.Table(tc.tables[0]) == nil {
			t.Fatalf("new member %d has no table %s at epoch %d", c.Member(i).Cfg.MetaID, tc.tables[0], m.Epoch)
		}
		tc.next(ctx)
	}

	// Removing the leader: it hands the leadership over, and its
	// successor removes it.
	leader := c.WaitMetaLeader()
	leaderID := c.Member(leader).Cfg.MetaID
	if _, err := cl.RemoveMetaMember(ctx, leaderID); err != nil {
		t.Fatalf("remove the leader %d: %v", leaderID, err)
	}
	c.Stop(leader)
	metas = slices.DeleteFunc(metas, func(i int) bool { return i == leader })
	checkMembers(t, ctx, cl, metaIDs(c, metas...))
	tc.next(ctx)

	// A member is killed and replaced by a new one.
	victim := metas[0]
	if victim == c.WaitMetaLeader() {
		victim = metas[1]
	}
	victimID := c.Member(victim).Cfg.MetaID
	c.Stop(victim)
	metas = slices.DeleteFunc(metas, func(i int) bool { return i == victim })
	listed := append(metaIDs(c, metas...), victimID)
	slices.Sort(listed)
	checkMembers(t, ctx, cl, listed, victimID) // still a member, unreachable
	fresh := c.Prepare(zeppelin.RoleMeta, snapshots)
	nm := c.Member(fresh).Cfg
	if _, err := cl.ReplaceMetaMember(ctx, victimID, nm.MetaID, nm.RaftAddr); err != nil {
		t.Fatalf("replace member %d with %d: %v", victimID, nm.MetaID, err)
	}
	c.Restart(fresh, true)
	metas = append(metas, fresh)
	want := metaIDs(c, metas...)
	checkMembers(t, ctx, cl, want)
	tc.next(ctx)

	// Every process restarts: the originals from their initial
	// configuration, the joined ones with MetaJoin still set; the Raft
	// logs in their directories hold the membership.
	var running []int
	for i := range c.Len() {
		if c.Server(i) != nil {
			running = append(running, i)
		}
	}
	for _, i := range running {
		c.Stop(i)
	}
	for _, i := range running {
		c.Restart(i, false)
	}
	c.WaitReady()
	wantRaft := make(map[uint64]string)
	for _, i := range metas {
		wantRaft[c.Member(i).Cfg.MetaID] = c.Member(i).Cfg.RaftAddr
	}
	for _, i := range metas {
		c.Eventually(20*time.Second, func() error {
			if got := c.Server(i).Meta().RaftMembers(); !maps.Equal(got, wantRaft) {
				return fmt.Errorf("member %d after restart sees the membership %v, want %v", c.Member(i).Cfg.MetaID, got, wantRaft)
			}
			return nil
		})
	}
	checkMembers(t, ctx, cl, want)
	tc.next(ctx)
}

// refused fails the test unless err is a refusal matching target whose
// message contains msg.
func refused(t *testing.T, what string, err, target error, msg string) {
	t.Helper()
	if !errors.Is(err, target) || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: got %v, want %v with %q", what, err, target, msg)
	}
}

// TestMembershipRefusals makes each change the meta group refuses, checks
// that nothing changed, then replaces a dead member of a three-member
// group (which removes it before adding the new one).
func TestMembershipRefusals(t *testing.T) {
	c := splitCluster(t, 3, 2, nil)
	ctx := ctxFor(t, 90*time.Second)
	cl := c.NewClient("admin")
	ids := metaIDs(c, 0, 1, 2)
	checkMembers(t, ctx, cl, ids)
	epoch := c.Map().Epoch
	raft3 := c.Member(2).Cfg.RaftAddr

	_, err := cl.RemoveMetaMember(ctx, 9)
	refused(t, "remove an unknown member", err, client.ErrMetaMemberNotFound, "remove member 9: not a member")
	_, err = cl.AddMetaMember(ctx, 2, "127.0.0.1:1")
	refused(t, "add a member twice", err, client.ErrInvalid, "a member already")
	_, err = cl.AddMetaMember(ctx, 0, "127.0.0.1:1")
	refused(t, "add ID 0", err, client.ErrInvalid, "≥ 1")
	for _, bad := range []string{"", "nowhere", ":7100", "127.0.0.1:0", "127.0.0.1:70000"} {
		_, err = cl.AddMetaMember(ctx, 4, bad)
		refused(t, fmt.Sprintf("add with Raft address %q", bad), err, client.ErrInvalid, "add member 4:")
	}
	_, err = cl.AddMetaMember(ctx, 4, raft3)
	refused(t, "add at a member's Raft address", err, client.ErrInvalid, "is member 3's")
	_, err = cl.ReplaceMetaMember(ctx, 2, 2, "127.0.0.1:1")
	refused(t, "replace a member with itself", err, client.ErrInvalid, "needs a new ID")
	_, err = cl.ReplaceMetaMember(ctx, 9, 4, "127.0.0.1:1")
	refused(t, "replace an unknown member", err, client.ErrMetaMemberNotFound, "replace member 9")

	// One member down: removing a live one would leave one live member of
	// two, and a fourth member could not commit anything until it ran.
	leader := c.WaitMetaLeader()
	down := (leader + 1) % 3
	other := 3 - leader - down
	downID := c.Member(down).Cfg.MetaID
	c.Stop(down)
	checkMembers(t, ctx, cl, ids, downID)
	_, err = cl.RemoveMetaMember(ctx, c.Member(other).Cfg.MetaID)
	refused(t, "remove a live member with one down", err, client.ErrInvalid, "fewer than their quorum of 2")
	_, err = cl.RemoveMetaMember(ctx, c.Member(leader).Cfg.MetaID)
	refused(t, "remove the leader with one down", err, client.ErrInvalid, "fewer than their quorum of 2")
	_, err = cl.AddMetaMember(ctx, 4, "127.0.0.1:1")
	refused(t, "add with one down", err, client.ErrInvalid, "need 3 to commit, but only 2 are live")
	if m := c.Map(); m.Epoch != epoch || len(m.Meta) != 3 {
		t.Fatalf("refusals changed the map: epoch %d (was %d), members %v", m.Epoch, epoch, m.Meta)
	}
	checkMembers(t, ctx, cl, ids, downID)

	// Replacing the dead member removes it first: 2 of 2 can commit, 2
	// of 4 could not.
	fresh := c.Prepare(zeppelin.RoleMeta, nil)
	nm := c.Member(fresh).Cfg
	if _, err := cl.ReplaceMetaMember(ctx, downID, nm.MetaID, nm.RaftAddr); err != nil {
		t.Fatalf("replace member %d with %d: %v", downID, nm.MetaID, err)
	}
	c.Restart(fresh, true)
	want := metaIDs(c, leader, other, fresh)
	checkMembers(t, ctx, cl, want)
	if _, err := cl.RemoveMetaMember(ctx, downID); err != nil {
		t.Errorf("removing the removed member %d again: %v", downID, err)
	}
	if _, err := cl.ReplaceMetaMember(ctx, downID, nm.MetaID, nm.RaftAddr); err != nil {
		t.Errorf("repeating the replacement: %v", err)
	}
	_, err = cl.AddMetaMember(ctx, downID, "127.0.0.1:1")
	refused(t, "add a removed member's ID", err, client.ErrInvalid, "cannot be used again")
	checkMembers(t, ctx, cl, want)
	(&tableCheck{t: t, c: c, cl: cl}).next(ctx)
}

// TestMembershipSingleMember checks that the only member cannot be
// removed, that a single-member group grows (although the second member
// must run before the group can commit again), and that the original
// member can then leave, handing the group over.
func TestMembershipSingleMember(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	ctx := ctxFor(t, 60*time.Second)
	cl := c.NewClient("admin")
	_, err := cl.RemoveMetaMember(ctx, 1)
	refused(t, "remove the only member", err, client.ErrInvalid, "only member")
	i := c.AddServer(zeppelin.RoleMeta, nil)
	id := c.Member(i).Cfg.MetaID
	checkMembers(t, ctx, cl, []uint64{1, id})
	if _, err := cl.RemoveMetaMember(ctx, 1); err != nil {
		t.Fatalf("remove the original member: %v", err)
	}
	ms := checkMembers(t, ctx, cl, []uint64{id})
	if !ms[0].Leader {
		t.Fatalf("member %d does not lead: %+v", id, ms[0])
	}
	m := c.Server(i).Meta().Map()
	if len(m.Meta) != 1 || m.Meta[0].ID != id {
		t.Fatalf("map lists the meta members %v, want only %d", m.Meta, id)
	}
}
