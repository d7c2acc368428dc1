package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func key(i int) []byte   { return fmt.Appendf(nil, "key-%05d", i) }
func value(i int) []byte { return fmt.Appendf(nil, "value-%05d", i) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// writeKeys writes keys [0, n) with 16 goroutines spread over the given
// clients.
func writeKeys(t *testing.T, ctx context.Context, clients []*client.Client, table string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := clients[w%len(clients)].Table(table)
			for i := w; i < n; i += 16 {
				if err := tb.Set(ctx, key(i), value(i)); err != nil {
					errs <- fmt.Errorf("set %s: %w", key(i), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkKeys reads keys [0, n) through c in MGet batches and checks every
// value.
func checkKeys(t *testing.T, ctx context.Context, c *client.Client, table string, n int) {
	t.Helper()
	tb := c.Table(table)
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		keys := make([][]byte, 0, hi-lo)
		for i := lo; i < hi; i++ {
			keys = append(keys, key(i))
		}
		res, err := tb.MGet(ctx, keys)
		if err != nil {
			t.Fatalf("mget %d..%d: %v", lo, hi, err)
		}
		for j, r := range res {
			if !r.Found || string(r.Value) != string(value(lo+j)) {
				t.Fatalf("key %s: found=%v value=%q, want %q", keys[j], r.Found, r.Value, value(lo+j))
			}
		}
	}
}

func TestClusterWritesReadEverywhere(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("users", client.TableOptions{Partitions: 64, Replication: 3})
	ctx := ctxFor(t, 60*time.Second)
	clients := []*client.Client{c.Client(0), c.Client(1), c.Client(2)}
	writeKeys(t, ctx, clients, "users", 10_000)
	for i := range 3 {
		checkKeys(t, ctx, c.Client(i), "users", 10_000)
	}
}

func TestClusterRestartEachServer(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("t", client.TableOptions{Partitions: 16, Replication: 3})
	ctx := ctxFor(t, 120*time.Second)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "t", 2_000)
	c.WaitConverged("t", 30*time.Second) // Stop is a crash: slaves must hold everything
	epochBefore := c.Server(0).Meta().Map().Epoch
	for i := range 3 {
		c.Stop(i)
		c.Restart(i, true)
		// The restarted member's own view of the map and of the data.
		m := c.Server(i).Meta().Map()
		if m.Epoch < epochBefore || m.Table("t") == nil {
			t.Fatalf("member %d after restart: epoch %d (before %d), table present %v", i, m.Epoch, epochBefore, m.Table("t") != nil)
		}
		c.WaitServing("t")
		checkKeys(t, ctx, c.Client(i), "t", 2_000)
	}
	for i := range 3 {
		checkKeys(t, ctx, c.Client(i), "t", 2_000)
	}
}

func TestClusterMetaLeaderLoss(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.CreateTable("t", client.TableOptions{Partitions: 16, Replication: 3})
	ctx := ctxFor(t, 60*time.Second)
	writeKeys(t, ctx, []*client.Client{c.Client(0), c.Client(1), c.Client(2)}, "t", 1_000)
	c.WaitConverged("t", 30*time.Second) // Stop is a crash: slaves must hold everything

	leader := c.WaitMetaLeader()
	c.Stop(leader)
	next := c.WaitMetaLeader()
	if next == leader {
		t.Fatalf("leader %d still leads after stopping", leader)
	}
	survivor := c.Client(next)
	if _, err := survivor.CreateTable(ctx, "after", client.TableOptions{Partitions: 4, Replication: 2}); err != nil {
		t.Fatalf("create table after leader loss: %v", err)
	}
	c.WaitServing("after")
	checkKeys(t, ctx, survivor, "t", 1_000)
	if err := survivor.Table("t").Set(ctx, []byte("new"), []byte("v")); err != nil {
		t.Fatalf("write after leader loss: %v", err)
	}
	if err := survivor.Table("after").Set(ctx, []byte("x"), []byte("y")); err != nil {
		t.Fatalf("write to new table: %v", err)
	}
}

func TestClusterDataOnlyNodesAndClientSeededByDataNode(t *testing.T) {
	roles := []zeppelin.Roles{zeppelin.RoleMeta, zeppelin.RoleData, zeppelin.RoleData, zeppelin.RoleData, zeppelin.RoleData}
	c := testcluster.New(t, testcluster.Options{Servers: 5, Roles: roles})
	c.CreateTable("t", client.TableOptions{Partitions: 32, Replication: 3})
	ctx := ctxFor(t, 60*time.Second)

	// A client that only knows one data node finds the meta group through
	// it.
	cl := c.NewClient("remote", c.Addr(3))
	writeKeys(t, ctx, []*client.Client{cl}, "t", 1_000)
	checkKeys(t, ctx, cl, "t", 1_000)
	nodes, err := cl.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 4 {
		t.Fatalf("ListNodes: %d data nodes, want 4: %+v", len(nodes), nodes)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 || st.LeaderAddr != c.Addr(0) {
		t.Fatalf("status: members %+v leader %q, want the one meta member at %s", st.Members, st.LeaderAddr, c.Addr(0))
	}
}

func TestClusterBadInput(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Limits.MaxKeySize = 16
		cfg.Limits.MaxValueSize = 64
	}})
	c.CreateTable("t", client.TableOptions{Partitions: 4, Replication: 1})
	ctx := ctxFor(t, 30*time.Second)
	cl := c.Client(0)
	tb := cl.Table("t")

	if _, err := cl.Table("nope").Get(ctx, []byte("k")); !errors.Is(err, client.ErrTableNotFound) {
		t.Errorf("get from unknown table: %v, want ErrTableNotFound", err)
	}
	if err := cl.Table("nope").Set(ctx, []byte("k"), nil); !errors.Is(err, client.ErrTableNotFound) {
		t.Errorf("set to unknown table: %v, want ErrTableNotFound", err)
	}
	if _, err := cl.CreateTable(ctx, "synced", client.TableOptions{Partitions: 2, Replication: 1, Mode: placement.ModeSync, MinInSync: 2}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("create a sync table with min-in-sync above its replication: %v, want ErrInvalid", err)
	}
	if err := tb.Set(ctx, nil, []byte("v")); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty key: %v, want ErrInvalid", err)
	}
	if err := tb.Set(ctx, make([]byte, 17), []byte("v")); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("oversized key: %v, want ErrInvalid", err)
	}
	if err := tb.Set(ctx, []byte("k"), make([]byte, 65)); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("oversized value: %v, want ErrInvalid", err)
	}
	if _, err := tb.Get(ctx, []byte("k")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("after rejected writes the key must not exist: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := tb.Set(cancelled, []byte("k"), []byte("v")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}
	// The server still serves.
	if err := tb.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("set after bad input: %v", err)
	}

	// A client with default limits sends what the server refuses: the
	// server's own check answers.
	remote := c.NewClient("big")
	if err := remote.Table("t").Set(ctx, []byte("k"), make([]byte, 1000)); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("value over the server's limit: %v, want ErrInvalid", err)
	}

	// Garbage and an oversized frame on raw sockets to the server's RPC
	// port: each is answered with an error or a closed connection, and
	// the server keeps serving.
	for _, payload := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		append([]byte{0, 0, 0, 20, byte(wire.KindHello)}, make([]byte, 28)...),
	} {
		nc, err := net.Dial("tcp", c.Addr(0))
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(payload)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(nc); err != nil {
			t.Errorf("payload %q: connection not closed cleanly: %v", payload[:8], err)
		}
		nc.Close()
	}
	if v, err := tb.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("get after malformed frames: %q %v", v, err)
	}

	other := c.NewClient("closed")
	other.Close()
	if _, err := other.Table("t").Get(ctx, []byte("k")); !errors.Is(err, client.ErrClosed) {
		t.Errorf("call after client Close: %v, want ErrClosed", err)
	}
	srv := c.Server(0)
	c.Stop(0)
	if err := srv.WaitReady(ctx); !errors.Is(err, zeppelin.ErrClosed) {
		t.Errorf("WaitReady after Close: %v, want ErrClosed", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPlanDryRunThroughAdminAPI(t *testing.T) {
	both := zeppelin.RoleMeta | zeppelin.RoleData
	c := testcluster.New(t, testcluster.Options{Servers: 4, Roles: []zeppelin.Roles{both, both, both, zeppelin.RoleData}})
	c.CreateTable("p", client.TableOptions{Partitions: 16, Replication: 2})
	ctx := ctxFor(t, time.Minute)
	cl := c.NewClient("admin")

	plan, err := cl.PlanRebalance(ctx, "p", false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ReplicaMoves != 0 || plan.MasterChanges != 0 {
		t.Fatalf("a fresh table needs no moves, the plan has %d replica moves and %d master changes:\n%s",
			plan.ReplicaMoves, plan.MasterChanges, plan.Summary)
	}
	// A node goes down: its partitions fail over, leaving masters uneven
	// and replicas on a down node. The dry run shows what a rebalance
	// would do and changes nothing.
	victim := "n4"
	c.WaitConverged("p", 30*time.Second)
	c.Stop(3)
	c.Eventually(30*time.Second, func() error {
		if n := mastersOf(c.LeaderMap(), "p")[placement.NodeID(victim)]; n != 0 {
			return fmt.Errorf("%s still masters %d partitions", victim, n)
		}
		return nil
	})
	epoch := c.Map().Epoch
	plan, err = cl.PlanRebalance(ctx, "p", false)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, p := range c.Map().Table("p").Partitions {
		if p.HasReplica(placement.NodeID(victim)) {
			held++
		}
	}
	moves := 0
	for _, m := range plan.Moves {
		if m.Kind == "add" {
			moves++
		}
		if m.Kind == "remove" && m.From != placement.NodeID(victim) {
			t.Errorf("the plan removes a replica from up node %s: %+v", m.From, m)
		}
	}
	if plan.ReplicaMoves < held || moves < held || plan.Minimum < held {
		t.Errorf("the down node held %d replicas; the plan moves %d (adds %d, minimum %d):\n%s", held, plan.ReplicaMoves, moves, plan.Minimum, plan.Summary)
	}
	if !strings.Contains(plan.Summary, "n4") {
		t.Errorf("the summary does not mention the down node:\n%s", plan.Summary)
	}
	masters, err := cl.PlanRebalance(ctx, "p", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters.Moves {
		if m.Kind != "master" {
			t.Errorf("a masters-only plan moves data: %+v", m)
		}
	}
	if c.Map().Epoch != epoch {
		t.Errorf("a dry run changed the map: epoch %d -> %d", epoch, c.Map().Epoch)
	}
	t.Logf("plan after losing %s:\n%s", victim, plan.Summary)
}

func TestMetaRestartsFromSnapshots(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Expert.MetaSnapshotEntries = 5 // snapshot and compact the log every few changes
	}})
	ctx := ctxFor(t, 2*time.Minute)
	cl := c.NewClient("admin")
	for i := range 12 {
		if _, err := cl.CreateTable(ctx, fmt.Sprintf("t%02d", i), client.TableOptions{Partitions: 2, Replication: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DropTable(ctx, "t03"); err != nil {
		t.Fatal(err)
	}
	want := c.Map()
	for i := range c.Len() {
		c.Stop(i)
	}
	for i := range c.Len() {
		c.Restart(i, false)
	}
	c.WaitReady()
	for i := range c.Len() {
		c.Eventually(20*time.Second, func() error {
			got := c.Server(i).Meta().Map()
			if got.Epoch < want.Epoch || len(got.Tables) != 11 || got.Table("t03") != nil || got.Table("t11") == nil {
				return fmt.Errorf("member %d after restart: epoch %d (want ≥ %d), %d tables", i, got.Epoch, want.Epoch, len(got.Tables))
			}
			return nil
		})
	}
	c.WaitServing("t11")
	if err := cl.Table("t11").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// TestMetaMemberCatchesUpFromASnapshot stops a meta member while the
// others change the map and compact their logs, so that on its return it
// can only catch up from a snapshot sent by the leader.
func TestMetaMemberCatchesUpFromASnapshot(t *testing.T) {
	c := splitCluster(t, 3, 2, func(_ int, cfg *zeppelin.Config) {
		cfg.Expert.MetaSnapshotEntries = 5
	})
	ctx := ctxFor(t, 2*time.Minute)
	cl := c.NewClient("admin")
	away := (c.WaitMetaLeader() + 1) % 3
	c.Stop(away)
	for i := range 12 {
		if _, err := cl.CreateTable(ctx, fmt.Sprintf("t%02d", i), client.TableOptions{Partitions: 2, Replication: 2}); err != nil {
			t.Fatal(err)
		}
	}
	want := c.Map()
	c.Restart(away, true)
	c.Eventually(20*time.Second, func() error {
		got := c.Server(away).Meta().Map()
		if got.Epoch < want.Epoch || got.Table("t11") == nil {
			return fmt.Errorf("member %d at epoch %d with %d tables, want epoch %d", away, got.Epoch, len(got.Tables), want.Epoch)
		}
		return nil
	})
}

func TestEmbeddedClientSkipsTheNetwork(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1})
	c.CreateTable("e", client.TableOptions{Partitions: 8, Replication: 1})
	ctx := ctxFor(t, 30*time.Second)
	tb := c.Client(0).Table("e")
	if err := tb.Set(ctx, []byte("warm"), []byte("up")); err != nil {
		t.Fatal(err)
	}
	// The process can no longer reach its own RPC port: only in-process
	// calls work.
	c.Hub.Block("n1", "n1")
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "e", 200)
	checkKeys(t, ctx, c.Client(0), "e", 200)
	if page, err := tb.List(ctx, []byte("none"), client.ListOptions{}); err != nil || len(page.KVs) != 0 {
		t.Fatalf("list: %+v %v", page, err)
	}
	c.Hub.Heal()
	// A client of another process sees the same data over the network.
	checkKeys(t, ctx, c.NewClient("remote"), "e", 200)
}
