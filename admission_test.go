package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestAdminApprovedAdmission runs a secret-protected cluster that admits
// new data nodes only once approved: a new node that knows the secret is
// refused and listed as pending, holds nothing of a table created
// meanwhile, and joins once approved; an approval given before a node
// starts lets it join at once; approvals of members and unknown revokes
// are refused with clear errors.
func TestAdminApprovedAdmission(t *testing.T) {
	secure := func(cfg *zeppelin.Config) {
		cfg.Secret = []string{testSecretA}
		cfg.NodeAdmission = "admin-approved"
	}
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) { secure(cfg) }})
	admin := c.NewClientConfig("admin", func(cfg *client.Config) { cfg.Secret = []string{testSecretA} })
	ctx := ctxFor(t, 2*time.Minute)

	// A stranger with the secret starts: refused, pending.
	i4 := c.Prepare(zeppelin.RoleData, secure)
	c.Restart(i4, false)
	var pending client.PendingNode
	c.Eventually(20*time.Second, func() error {
		a, err := admin.Admissions(ctx)
		if err != nil {
			return err
		}
		if len(a.Pending) != 1 || a.Pending[0].Node.ID != "n4" {
			return fmt.Errorf("pending %+v, want n4", a.Pending)
		}
		pending = a.Pending[0]
		return nil
	})
	if pending.Node.Addr != c.Addr(i4) || pending.RemoteAddr == "" || pending.Attempts < 1 || pending.First.IsZero() {
		t.Errorf("pending node %+v: want its address %s, where it came from and when", pending, c.Addr(i4))
	}
	// It stays out while it asks again.
	c.Eventually(20*time.Second, func() error {
		a, err := admin.Admissions(ctx)
		if err != nil {
			return err
		}
		if len(a.Pending) != 1 || a.Pending[0].Attempts < pending.Attempts+2 {
			return fmt.Errorf("pending %+v: want n4 to ask twice more", a.Pending)
		}
		return nil
	})
	if g := gauge(t, c.Server(c.WaitMetaLeader()), "zeppelin_meta_nodes_pending_approval"); g != 1 {
		t.Errorf("the leader's zeppelin_meta_nodes_pending_approval is %v, want 1", g)
	}
	if nodes, err := admin.ListNodes(ctx); err != nil || slices.ContainsFunc(nodes, func(n placement.Node) bool { return n.ID == "n4" }) {
		t.Fatalf("nodes %v (%v): n4 must not be a member before approval", nodes, err)
	}
	tbl := c.CreateTable("adm", client.TableOptions{Partitions: 8, Replication: 3})
	for _, p := range tbl.Partitions {
		if p.Holds("n4") {
			t.Fatalf("partition %d placed on the unapproved n4", p.ID)
		}
	}

	if err := admin.ApproveNode(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	waitMember(t, c, admin, "n4")
	if a, err := admin.Admissions(ctx); err != nil || len(a.Pending)+len(a.Approved) != 0 {
		t.Fatalf("admissions after n4 joined: %+v (%v), want none", a, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Server(i4).WaitReady(wctx); err != nil {
		t.Fatalf("n4 after approval: %v", err)
	}

	// Approved before it starts: it joins at once, using the approval up.
	if err := admin.ApproveNode(ctx, "n5"); err != nil {
		t.Fatal(err)
	}
	if a, err := admin.Admissions(ctx); err != nil || !slices.Equal(a.Approved, []placement.NodeID{"n5"}) {
		t.Fatalf("admissions after approving n5: %+v (%v)", a, err)
	}
	c.AddServer(zeppelin.RoleData, secure)
	waitMember(t, c, admin, "n5")
	if a, err := admin.Admissions(ctx); err != nil || len(a.Approved) != 0 {
		t.Fatalf("the approval of n5 was not used up: %+v (%v)", a, err)
	}

	// Bad requests.
	if err := admin.ApproveNode(ctx, "n1"); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "already a member") {
		t.Errorf("approving a member: %v", err)
	}
	if err := admin.ApproveNode(ctx, "n9"); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeNodeApproval(ctx, "n9"); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeNodeApproval(ctx, "n9"); !errors.Is(err, client.ErrUnknownName) {
		t.Errorf("revoking twice: %v, want ErrUnknownName", err)
	}
	if err := admin.ApproveNode(ctx, ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("approving an empty ID: %v, want ErrInvalid", err)
	}
	// The approvals survive a meta leader change (they are in the map).
	if err := admin.ApproveNode(ctx, "n10"); err != nil {
		t.Fatal(err)
	}
	l := c.WaitMetaLeader()
	c.Stop(l)
	c.Eventually(30*time.Second, func() error {
		a, err := admin.Admissions(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(a.Approved, []placement.NodeID{"n10"}) {
			return fmt.Errorf("approved %v after the leader change, want [n10]", a.Approved)
		}
		return nil
	})
}

func waitMember(t *testing.T, c *testcluster.Cluster, cl *client.Client, id placement.NodeID) {
	t.Helper()
	c.Eventually(30*time.Second, func() error {
		nodes, err := cl.ListNodes(context.Background())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(nodes, func(n placement.Node) bool { return n.ID == id && n.State == placement.NodeUp }) {
			return fmt.Errorf("nodes %v: %s is not an up member yet", nodes, id)
		}
		return nil
	})
}

// TestRegistrationRefusesUnsafeTimers starts a data node whose own
// configuration is valid but whose master lease outlives the meta group's
// DownTimeout: the meta leader refuses its registration with an error that
// says which timers clash, and the node logs it and joins nothing.
func TestRegistrationRefusesUnsafeTimers(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	logs := &lineLog{}
	i := c.Prepare(zeppelin.RoleData, func(cfg *zeppelin.Config) {
		cfg.DownTimeout = 10 * time.Second // the meta group's is DefaultLocalConfig's 1 s
		cfg.MasterLease = 3 * time.Second
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	c.Restart(i, false)
	c.Eventually(20*time.Second, func() error {
		if !logs.contains("exceed the meta group's DownTimeout") {
			return errors.New("the node has not logged the refusal yet")
		}
		return nil
	})
	if !logs.contains("MasterLease (3s)") {
		t.Errorf("the refusal does not name the lease: %s", logs.String())
	}
	nodes, err := c.Client(0).ListNodes(ctxFor(t, 10*time.Second))
	if err != nil || slices.ContainsFunc(nodes, func(n placement.Node) bool { return n.ID == "n2" }) {
		t.Fatalf("nodes %v (%v): the node with unsafe timers must not join", nodes, err)
	}
}

// lineLog collects log output for a test to search.
type lineLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineLog) contains(s string) bool { return strings.Contains(l.String(), s) }

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gauge reads an unlabelled gauge of s's metrics (-1 when absent).
func gauge(t *testing.T, s *zeppelin.Server, name string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
