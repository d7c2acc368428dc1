package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

const (
	secretA = "secret-A-0123456789abcdef"
	secretB = "secret-B-0123456789abcdef"
)

func ring(t testing.TB, secrets ...string) *auth.Keyring {
	t.Helper()
	k, err := auth.NewKeyring(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startAuthServer starts a server with cfg whose KindRead handler echoes
// and whose KindReplFetch handler reports the connection's peer.
func startAuthServer(t testing.TB, cfg ServerConfig) (*Server, string) {
	t.Helper()
	if cfg.Hello == nil {
		cfg.Hello = func(wire.Hello) wire.HelloReply { return wire.HelloReply{NodeID: "srv"} }
	}
	s := NewServer(cfg)
	s.Handle(wire.KindRead, func(ctx context.Context, body []byte) (any, error) {
		var e echo
		if err := wire.Unmarshal(body, &e); err != nil {
			return nil, err
		}
		if string(e.V) == "slow" {
			select {
			case <-time.After(600 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		return &e, nil
	})
	peerReply := func(ctx context.Context, body []byte) (any, error) {
		p := PeerFromContext(ctx)
		return &echo{V: []byte(p.Node + "|" + p.User + "|" + p.check.String())}, nil
	}
	s.Handle(wire.KindReplFetch, peerReply)
	s.Handle(wire.KindMetaStatus, peerReply)
	s.Handle(wire.KindMetaCreateTable, peerReply)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

func dialT(t testing.TB, cfg DialConfig, addr string) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg, addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func echoCall(c *Conn, v string) error {
	var out echo
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Call(ctx, wire.KindRead, &echo{V: []byte(v)}, &out); err != nil {
		return err
	}
	if string(out.V) != v {
		return errors.New("echo mismatch: " + string(out.V))
	}
	return nil
}

// TestAuthSecrets covers which pairs of secret lists connect: any two
// lists that share a secret do, whatever their order (that is what lets
// secrets rotate), and the failures are named on the dialer's side and
// counted on the server's.
func TestAuthSecrets(t *testing.T) {
	cases := []struct {
		name           string
		server, dialer []string
		wantErr        string // "" = connects
	}{
		{"same", []string{secretA}, []string{secretA}, ""},
		{"dialer rotated", []string{secretA}, []string{secretB, secretA}, ""},
		{"server rotated", []string{secretB, secretA}, []string{secretA}, ""},
		{"both rotated", []string{secretB, secretA}, []string{secretB, secretA}, ""},
		{"rotation done on the server", []string{secretB}, []string{secretB, secretA}, ""},
		{"rotation done on the dialer", []string{secretB, secretA}, []string{secretB}, ""},
		{"wrong secret", []string{secretA}, []string{secretB}, "does not accept this cluster secret"},
		{"no secret", []string{secretA}, nil, "requires a cluster secret"},
		{"server without secret", nil, []string{secretA}, "does not authenticate connections"},
		{"no secrets at all", nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sr *auth.Keyring
			if tc.server != nil {
				sr = ring(t, tc.server...)
			}
			var dr *auth.Keyring
			if tc.dialer != nil {
				dr = ring(t, tc.dialer...)
			}
			srv, addr := startAuthServer(t, ServerConfig{Keyring: sr})
			c, err := dialT(t, DialConfig{Keyring: dr, From: "n1", Node: true}, addr)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				if err := echoCall(c, "hi"); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Dial succeeded, want an error containing %q", tc.wantErr)
			}
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), addr) {
				t.Fatalf("Dial error %q: want ErrAuth naming %s and saying %q", err, addr, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "zeppelin: authentication failed: ") {
				t.Errorf("error %q does not start with the sentinel's text", err)
			}
			if IsConnError(err) {
				t.Errorf("an authentication failure reads as a connection error (retryable): %v", err)
			}
			if tc.server != nil {
				waitFor(t, func() bool { return srv.Stats().AuthFailures == 1 }, "the failure counted")
			}
			// The server goes on serving others.
			good, err := dialT(t, DialConfig{Keyring: sr}, addr)
			if err != nil {
				t.Fatalf("a good dialer after the failure: %v", err)
			}
			if err := echoCall(good, "still"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAuthSecretNeverSent checks that nothing the dialer writes contains
// the secret or a key derived from it.
func TestAuthSecretNeverSent(t *testing.T) {
	_, addr := startAuthServer(t, ServerConfig{Keyring: ring(t, secretA)})
	rec := &recordingNetwork{}
	c, err := dialT(t, DialConfig{Keyring: ring(t, secretA), Network: rec}, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCall(c, "x"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.sent()), secretA) {
		t.Fatal("the secret crossed the wire")
	}
}

// TestIdentityBoundToConnection shows that a connection speaks only for
// the identity it proved: a node for itself, a client for no node.
func TestIdentityBoundToConnection(t *testing.T) {
	_, addr := startAuthServer(t, ServerConfig{Keyring: ring(t, secretA)})
	n1, err := dialT(t, DialConfig{Keyring: ring(t, secretA), From: "n1", Node: true}, addr)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dialT(t, DialConfig{Keyring: ring(t, secretA), From: "app"}, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fetch := func(c *Conn, node string) (string, error) {
		var out echo
		err := c.Call(ctx, wire.KindReplFetch, &wire.FetchRequest{Node: placement.NodeID(node)}, &out)
		return string(out.V), err
	}
	got, err := fetch(n1, "n1")
	if err != nil || got != "n1||node" {
		t.Fatalf("n1 fetching for itself: %q, %v", got, err)
	}
	if _, err := fetch(n1, "n2"); wire.CodeOf(err) != wire.CodeRefused || !strings.Contains(err.Error(), `authenticated as node "n1"`) {
		t.Fatalf("n1 fetching for n2: %v, want refused", err)
	}
	if _, err := fetch(cli, "app"); wire.CodeOf(err) != wire.CodeRefused || !strings.Contains(err.Error(), "cluster nodes only") {
		t.Fatalf("a client fetching: %v, want refused", err)
	}
	// The refusals did not cost the connections.
	if err := echoCall(n1, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := echoCall(cli, "ok"); err != nil {
		t.Fatal(err)
	}
	// A server without a secret takes claims as they come, as before.
	_, open := startAuthServer(t, ServerConfig{})
	o, err := dialT(t, DialConfig{From: "n1", Node: true}, open)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fetch(o, "n2"); err != nil || got != "n1||open" {
		t.Fatalf("open server: %q, %v", got, err)
	}
}

// TestHelloTimeout closes connections that do not finish their hello.
func TestHelloTimeout(t *testing.T) {
	srv, addr := startAuthServer(t, ServerConfig{Keyring: ring(t, secretA), HelloTimeout: 200 * time.Millisecond})
	for _, name := range []string{"silent", "half a hello"} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if name == "half a hello" {
				nc.Write([]byte{0, 0, 0, 40, byte(wire.KindHello)})
			}
			start := time.Now()
			nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = io.ReadAll(nc)
			if took := time.Since(start); err != nil || took > 2*time.Second {
				t.Fatalf("connection not closed promptly: %v after %v", err, took)
			}
		})
	}
	waitFor(t, func() bool { return srv.Stats().Refused["no hello within 200ms"] == 2 }, "refusals counted")
}

// TestIdleTimeout closes idle connections but not busy ones, and the
// dialer's pool replaces an idle connection before the server closes it.
func TestIdleTimeout(t *testing.T) {
	srv, addr := startAuthServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond})
	c, err := dialT(t, DialConfig{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	// A request in flight longer than the idle timeout keeps it open.
	if err := echoCall(c, "slow"); err != nil {
		t.Fatalf("a request longer than the idle timeout: %v", err)
	}
	select {
	case <-c.Done():
		t.Fatalf("closed while it was busy: %v", c.Err())
	case <-time.After(100 * time.Millisecond):
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("idle connection not closed")
	}
	waitFor(t, func() bool { return srv.Stats().IdleClosed >= 1 }, "idle close counted")

	p := NewPool(DialConfig{})
	defer p.Close()
	ctx := context.Background()
	c1, err := p.Get(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // past 3/4 of the idle timeout
	c2, err := p.Get(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if c1 == c2 {
		t.Fatal("the pool handed out a connection about to be closed for idling")
	}
	if err := echoCall(c2, "fresh"); err != nil {
		t.Fatal(err)
	}
}

// TestFrameKindLimits checks kinds and sizes from the header, before the
// body arrives.
func TestFrameKindLimits(t *testing.T) {
	_, addr := startAuthServer(t, ServerConfig{Keyring: ring(t, secretA)})
	cases := []struct {
		name   string
		node   bool
		kind   wire.Kind
		length uint32
		want   string
	}{
		{"unknown kind", true, wire.Kind(200), 100, "unknown message kind"},
		{"a second hello", true, wire.KindHello, 100, "unknown message kind"},
		{"client's huge fetch", false, wire.KindReplFetch, 100 << 20, "exceeds its limit"},
		{"node's huge status", true, wire.KindMetaStatus, 100 << 20, "exceeds its limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialT(t, DialConfig{Keyring: ring(t, secretA), From: "n1", Node: tc.node}, addr)
			if err != nil {
				t.Fatal(err)
			}
			hdr := binary.BigEndian.AppendUint32(nil, tc.length)
			hdr = append(hdr, byte(tc.kind))
			hdr = binary.BigEndian.AppendUint64(hdr, 77)
			if _, err := c.nc.Write(hdr); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-time.After(3 * time.Second):
				t.Fatal("connection not closed on the header alone")
			}
			if err := c.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("connection error %v, want %q", err, tc.want)
			}
		})
	}
}

// recordingNetwork is TCP that keeps what is written.
type recordingNetwork struct {
	mu  chan struct{}
	buf []byte
}

func (r *recordingNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (r *recordingNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if r.mu == nil {
		r.mu = make(chan struct{}, 1)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: nc, r: r}, nil
}

func (r *recordingNetwork) sent() []byte {
	r.mu <- struct{}{}
	defer func() { <-r.mu }()
	return append([]byte(nil), r.buf...)
}

type recordingConn struct {
	net.Conn
	r *recordingNetwork
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.r.mu <- struct{}{}
	c.r.buf = append(c.r.buf, p...)
	<-c.r.mu
	return c.Conn.Write(p)
}

// TestEveryKindHasAPolicy guards against a new request kind that the
// server would refuse from its header: every kind of the protocol but the
// error reply has a class.
func TestEveryKindHasAPolicy(t *testing.T) {
	for k := range 256 {
		kind := wire.Kind(k)
		if kind.Known() && kind != wire.KindError && policyOf(kind).class == classUnknown {
			t.Errorf("kind %v has no policy: the server would refuse it", kind)
		}
	}
}
