package zeppelin_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/auth/authtest"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

const (
	testSecretA = "cluster-secret-A-0123456789"
	testSecretB = "cluster-secret-B-0123456789"
)

// TestClusterSecretRotation runs a 3-server cluster on secret A and rolls
// it to secret B through [B, A] on every server, restarting one server at
// a time under a continuous read and write load: no request fails. Then a
// client that only knows A is refused with a clear error.
func TestClusterSecretRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts six servers")
	}
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Secret = []string{testSecretA}
	}})
	c.CreateTable("rot", client.TableOptions{Partitions: 8, Replication: 3})
	cl := c.NewClientConfig("load", func(cfg *client.Config) { cfg.Secret = []string{testSecretB, testSecretA} })
	tb := cl.Table("rot")
	ctx := ctxFor(t, 3*time.Minute)

	var ops, failed atomic.Int64
	stop := startWriters(4, func(w, i int) bool {
		k := fmt.Appendf(nil, "k%d-%d", w, i%500)
		if err := tb.Set(ctx, k, []byte("v")); err != nil {
			failed.Add(1)
			t.Errorf("write during the rotation: %v", err)
			return false
		}
		if _, err := tb.Get(ctx, k); err != nil {
			failed.Add(1)
			t.Errorf("read during the rotation: %v", err)
			return false
		}
		ops.Add(1)
		return true
	})
	waitOps(t, cl, "rot")
	roll := func(secrets ...string) {
		for i := range c.Len() {
			c.Shutdown(i)
			c.Member(i).Cfg.Secret = secrets
			c.Restart(i, true)
			waitAllUpAndMastered(c, 30*time.Second)
			waitWrites(c, &ops, 50)
		}
	}
	start := time.Now()
	roll(testSecretB, testSecretA)
	roll(testSecretB)
	stop()
	t.Logf("rotated in %v with %d reads and writes, %d failed", time.Since(start).Round(time.Millisecond), ops.Load(), failed.Load())

	old, err := client.NewWithNetwork(client.Config{Seeds: c.Addrs(), Secret: []string{testSecretA}, Timeout: 3 * time.Second}, c.Hub.Host("old"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, err = old.Table("rot").Get(ctx, []byte("k0-0"))
	if !errors.Is(err, client.ErrAuth) || !strings.Contains(err.Error(), "does not accept this cluster secret") {
		t.Fatalf("a client with the retired secret: %v", err)
	}
	for i := range c.Len() {
		if n := rpcAuthFailures(t, c.Server(i)); n > 0 {
			t.Logf("%s counted %v failed authentications", c.Member(i).Name, n)
		}
	}
}

// TestClusterSecretRefusesStrangers checks the clear errors of clients
// without the secret, or with another.
func TestClusterSecretRefusesStrangers(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Secret = []string{testSecretA}
	}})
	c.CreateTable("s", client.TableOptions{Partitions: 2, Replication: 1})
	ctx := ctxFor(t, 30*time.Second)
	good := c.NewClientConfig("good", func(cfg *client.Config) { cfg.Secret = []string{testSecretA} })
	if err := good.Table("s").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		secret  []string
		wantMsg string
	}{
		{"no secret", nil, "requires a cluster secret"},
		{"wrong secret", []string{testSecretB}, "does not accept this cluster secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := client.NewWithNetwork(client.Config{Seeds: c.Addrs(), Secret: tc.secret, Timeout: 3 * time.Second}, c.Hub.Host(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			start := time.Now()
			_, err = cl.Table("s").Get(ctx, []byte("k"))
			if !errors.Is(err, client.ErrAuth) || !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), c.Addr(0)) {
				t.Fatalf("Get: %v; want ErrAuth naming %s: %q", err, c.Addr(0), tc.wantMsg)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the failure took %v: it should not be retried", took)
			}
		})
	}
	if n := rpcAuthFailures(t, c.Server(0)); n < 2 {
		t.Errorf("zeppelin_auth_failures_total{listener=\"rpc\"} = %v, want ≥ 2", n)
	}
	// The server still serves the good client.
	if _, err := good.Table("s").Get(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
}

// rpcAuthFailures reads the server's failed-authentication counter of
// the RPC listener.
func rpcAuthFailures(t *testing.T, s *zeppelin.Server) float64 {
	t.Helper()
	return authFailures(t, s, "rpc")
}

// authFailures reads the server's failed-authentication counter of a
// listener.
func authFailures(t *testing.T, s *zeppelin.Server, listener string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zeppelin_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "listener" && l.GetValue() == listener {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no zeppelin_auth_failures_total metric")
	return 0
}

// TestUsersOverRPC authenticates smart clients as users: each may do what
// its grants allow and gets ErrNoPerm for the rest; a wrong password is
// ErrAuth.
func TestUsersOverRPC(t *testing.T) {
	hash, err := zeppelin.HashPassword("rootpw")
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Secret = []string{testSecretA}
		cfg.Users = []zeppelin.User{
			{Name: "root", PasswordHash: hash, Grants: []zeppelin.Grant{{Access: zeppelin.AccessAdmin}}},
			{Name: "alice", Password: "alicepw", Grants: []zeppelin.Grant{
				{Tables: []string{"users"}, Access: zeppelin.AccessWrite},
				{Tables: []string{"ro"}, Access: zeppelin.AccessRead},
			}},
		}
	}})
	ctx := ctxFor(t, time.Minute)
	as := func(user, pw string) *client.Client {
		cl, err := client.NewWithNetwork(client.Config{Seeds: c.Addrs(), User: user, Password: pw, Timeout: 5 * time.Second}, c.Hub.Host(user+pw))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	root, alice := as("root", "rootpw"), as("alice", "alicepw")
	for _, name := range []string{"users", "ro", "secret"} {
		if _, err := root.CreateTable(ctx, name, client.TableOptions{Partitions: 2, Replication: 1}); err != nil {
			t.Fatalf("root creates %s: %v", name, err)
		}
	}
	if err := root.Table("ro").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := alice.Table("users").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("alice writes users: %v", err)
	}
	if v, err := alice.Table("ro").Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("alice reads ro: %q %v", v, err)
	}
	for what, err := range map[string]error{
		"write ro":    alice.Table("ro").Set(ctx, []byte("k"), []byte("x")),
		"read secret": func() error { _, err := alice.Table("secret").Get(ctx, []byte("k")); return err }(),
		"create a table": func() error {
			_, err := alice.CreateTable(ctx, "mine", client.TableOptions{Partitions: 1, Replication: 1})
			return err
		}(),
		"drop users": alice.DropTable(ctx, "users"),
	} {
		if !errors.Is(err, client.ErrNoPerm) {
			t.Errorf("alice may not %s: got %v, want ErrNoPerm", what, err)
		}
	}
	_, err = as("alice", "wrong").Table("users").Get(ctx, []byte("k"))
	if !errors.Is(err, client.ErrAuth) || !strings.Contains(err.Error(), "refused user alice") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestClusterTLS runs a 3-server cluster with mutual TLS on every
// connection, each server with a certificate of its node ID: a client
// with a certificate of the cluster's CA works, one without a client
// certificate or trusting another CA is refused.
func TestClusterTLS(t *testing.T) {
	ca := authtest.NewCA(t, "cluster")
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cert, key := ca.Issue(cfg.NodeID)
		cfg.TLS = zeppelin.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File, ClientAuth: true, ReloadInterval: 50 * time.Millisecond}
	}})
	c.CreateTable("tls", client.TableOptions{Partitions: 4, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	appCert, appKey := ca.Issue("app")
	app := c.NewClientConfig("app", func(cfg *client.Config) { cfg.TLS = ca.ClientConfig(appCert, appKey) })
	for i := range 50 {
		if err := app.Table("tls").Set(ctx, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for name, cfg := range map[string]*tls.Config{
		"no client certificate": ca.ClientConfig("", ""),
		"another CA":            authtest.NewCA(t, "other").ClientConfig("", ""),
	} {
		cl, err := client.NewWithNetwork(client.Config{Seeds: c.Addrs(), TLS: cfg, Timeout: 3 * time.Second}, c.Hub.Host(name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Table("tls").Get(ctx, []byte("k1"))
		cl.Close()
		if !errors.Is(err, client.ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Renewed certificates are picked up without a restart.
	if err := c.Server(0).ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if v, err := app.Table("tls").Get(ctx, []byte("k7")); err != nil || string(v) != "v" {
		t.Fatalf("read after the reload: %q %v", v, err)
	}
}

// TestMetaRaftMutualTLS starts a 3-member meta group on dragonboat's own
// Raft transport with its mutual TLS (no test network in between).
func TestMetaRaftMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	ca := authtest.NewCA(t, "cluster")
	ports := make([]string, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	members := map[uint64]string{1: ports[0], 2: ports[1], 3: ports[2]}
	var srvs []*zeppelin.Server
	var rpcAddrs []string
	for i := range 3 {
		cfg := zeppelin.DefaultLocalConfig(t.TempDir())
		cfg.NodeID = fmt.Sprintf("m%d", i+1)
		cfg.GossipAddr = "off"
		cfg.MetaID, cfg.MetaMembers, cfg.RaftAddr = uint64(i+1), members, ports[i]
		cfg.Logger = slog.New(slog.DiscardHandler)
		cert, key := ca.Issue(cfg.NodeID)
		cfg.TLS = zeppelin.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File, ClientAuth: true}
		cfg.Join = rpcAddrs
		s, err := zeppelin.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		srvs = append(srvs, s)
		rpcAddrs = append(rpcAddrs, s.Addr())
	}
	ctx := ctxFor(t, time.Minute)
	for _, s := range srvs {
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srvs[0].Client().CreateTable(ctx, "raft", client.TableOptions{Partitions: 2, Replication: 3}); err != nil {
		t.Fatal(err)
	}
	if err := srvs[1].Client().Table("raft").Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := srvs[2].Client().Table("raft").Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("%q %v", v, err)
	}
}

// TestNodeIdentityBound dials a member of a cluster with the secret as
// node n1 and tries to register, heartbeat and fetch for n2: every request
// is refused, while the same requests for n1 reach their handlers; a
// client with the secret may send none of them.
func TestNodeIdentityBound(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 2, Roles: []zeppelin.Roles{zeppelin.RoleMeta | zeppelin.RoleData, zeppelin.RoleData},
		Configure: func(_ int, cfg *zeppelin.Config) { cfg.Secret = []string{testSecretA} }})
	ring, err := auth.NewKeyring([]string{testSecretA})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 30*time.Second)
	dial := func(from string, node bool) *rpc.Conn {
		conn, err := rpc.Dial(ctx, rpc.DialConfig{Keyring: ring, From: from, Node: node, Network: c.Hub.Host("intruder")}, c.Addr(c.MetaLeader()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	n1, app := dial("n1", true), dial("app", false)
	other := placement.NodeID("n2")
	for name, call := range map[string]func(*rpc.Conn, placement.NodeID) error{
		"register": func(cn *rpc.Conn, n placement.NodeID) error {
			return cn.Call(ctx, wire.KindMetaRegister, &wire.RegisterRequest{Node: placement.Node{ID: n, Addr: "127.0.0.1:1"}}, nil)
		},
		"heartbeat": func(cn *rpc.Conn, n placement.NodeID) error {
			return cn.Call(ctx, wire.KindMetaHeartbeat, &wire.HeartbeatRequest{Node: n}, nil)
		},
		"fetch": func(cn *rpc.Conn, n placement.NodeID) error {
			return cn.Call(ctx, wire.KindReplFetch, &wire.FetchRequest{Node: n}, nil)
		},
		"hand-off": func(cn *rpc.Conn, n placement.NodeID) error {
			return cn.Call(ctx, wire.KindMetaHandOff, &wire.HandOffRequest{Node: n}, nil)
		},
	} {
		if err := call(n1, other); wire.CodeOf(err) != wire.CodeRefused {
			t.Errorf("%s for n2 on n1's connection: %v, want refused", name, err)
		}
		if err := call(app, "app"); wire.CodeOf(err) != wire.CodeRefused {
			t.Errorf("%s on a client's connection: %v, want refused", name, err)
		}
	}
	// n1 speaking for itself reaches the handler (whatever it answers).
	if err := n1.Call(ctx, wire.KindMetaHeartbeat, &wire.HeartbeatRequest{Node: "n1", Addr: c.Addr(0)}, nil); wire.CodeOf(err) == wire.CodeRefused {
		t.Errorf("n1's own heartbeat refused: %v", err)
	}
}
