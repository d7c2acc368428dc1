package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// foreignAddr returns the address of a listener that does not speak the
// protocol: serve handles each connection it accepts.
func foreignAddr(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				serve(nc)
			}()
		}
	}()
	return ln.Addr().String()
}

// answerHTTP writes an HTTP response whatever it is sent.
func answerHTTP(nc net.Conn) {
	nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// hangUp closes the connection at once.
func hangUp(net.Conn) {}

// stayMute reads and never answers.
func stayMute(nc net.Conn) { io.Copy(io.Discard, nc) }

// fakeMeta is a meta member of one: it answers Hello as a meta member and
// serves the meta kinds its handlers name.
type fakeMeta struct {
	addr string
	srv  *rpc.Server
}

func startFakeMeta(t *testing.T, handlers map[wire.Kind]rpc.HandlerFunc) *fakeMeta {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMeta{addr: ln.Addr().String()}
	f.srv = rpc.NewServer(rpc.ServerConfig{Hello: func(wire.Hello) wire.HelloReply {
		return wire.HelloReply{NodeID: "meta", Roles: wire.RoleMeta, Meta: []placement.MetaMember{{ID: 1, RPCAddr: f.addr}}}
	}})
	for k, h := range handlers {
		f.srv.Handle(k, h)
	}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// pullHandler serves m to pulls that do not know it yet.
func pullHandler(m *placement.Map) rpc.HandlerFunc {
	return func(_ context.Context, body []byte) (any, error) {
		var req wire.PullRequest
		if err := wire.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		if req.Known >= m.Epoch {
			return &wire.PullReply{Epoch: m.Epoch}, nil
		}
		return &wire.PullReply{Epoch: m.Epoch, Map: m}, nil
	}
}

func newClient(t *testing.T, seeds ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.DefaultConfig(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNoMetaReachableFailsPromptly(t *testing.T) {
	// Far less than the client's timeout: a client whose seeds lead
	// nowhere gives up after about a second.
	const bound = 3 * time.Second
	calls := []struct {
		name string
		call func(ctx context.Context, c *client.Client) error
	}{
		{"get", func(ctx context.Context, c *client.Client) error {
			_, err := c.Table("t").Get(ctx, []byte("k"))
			return err
		}},
		{"mget", func(ctx context.Context, c *client.Client) error {
			_, err := c.Table("t").MGet(ctx, [][]byte{[]byte("a"), []byte("b")})
			return err
		}},
		{"refresh", func(ctx context.Context, c *client.Client) error {
			_, err := c.Refresh(ctx)
			return err
		}},
		{"status", func(ctx context.Context, c *client.Client) error {
			_, err := c.Status(ctx)
			return err
		}},
		{"create table", func(ctx context.Context, c *client.Client) error {
			_, err := c.CreateTable(ctx, "t", client.TableOptions{})
			return err
		}},
	}
	for _, tc := range []struct {
		name  string
		seeds func(t *testing.T) []string
	}{
		{"closed port", func(t *testing.T) []string { return []string{closedAddr(t)} }},
		{"closed port and an HTTP listener", func(t *testing.T) []string {
			return []string{closedAddr(t), foreignAddr(t, answerHTTP)}
		}},
		{"listener that hangs up", func(t *testing.T) []string { return []string{foreignAddr(t, hangUp)} }},
		{"listener that never answers", func(t *testing.T) []string { return []string{foreignAddr(t, stayMute)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, tc.seeds(t)...)
			for _, call := range calls {
				start := time.Now()
				// No deadline: the client applies its 5 s timeout.
				err := call.call(context.Background(), c)
				elapsed := time.Since(start)
				if !errors.Is(err, client.ErrNoMeta) {
					t.Errorf("%s: got %v, want an error wrapping ErrNoMeta", call.name, err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: got %v, want no deadline error: the caller's deadline did not pass", call.name, err)
				}
				if elapsed > bound {
					t.Errorf("%s: returned after %v, want within %v", call.name, elapsed, bound)
				}
			}
		})
	}
}

func TestNoMetaWithinShortDeadline(t *testing.T) {
	c := newClient(t, closedAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Table("t").Get(ctx, []byte("k"))
	if !errors.Is(err, client.ErrNoMeta) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get: got %v, want an error wrapping ErrNoMeta and the deadline", err)
	}
}

func TestMetaUnavailableRetriedWithinDeadline(t *testing.T) {
	// The meta member answers "unavailable" (as while electing a leader)
	// for longer than the client waits for seeds: a member that answers is
	// retried until it serves the call, within the deadline.
	const electing = 1500 * time.Millisecond
	const epoch = 3
	for _, tc := range []struct {
		name string
		kind wire.Kind
		call func(ctx context.Context, c *client.Client) (placement.Epoch, error)
	}{
		{"refresh", wire.KindMetaPull, func(ctx context.Context, c *client.Client) (placement.Epoch, error) {
			m, err := c.Refresh(ctx)
			if err != nil {
				return 0, err
			}
			return m.Epoch, nil
		}},
		{"status", wire.KindMetaStatus, func(ctx context.Context, c *client.Client) (placement.Epoch, error) {
			st, err := c.Status(ctx)
			if err != nil {
				return 0, err
			}
			return st.Epoch, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			pull := pullHandler(&placement.Map{Epoch: epoch})
			f := startFakeMeta(t, map[wire.Kind]rpc.HandlerFunc{
				tc.kind: func(ctx context.Context, body []byte) (any, error) {
					if time.Since(start) < electing {
						return nil, wire.Errorf(wire.CodeUnavailable, "no leader yet")
					}
					if tc.kind == wire.KindMetaStatus {
						return &wire.StatusReply{Epoch: epoch}, nil
					}
					return pull(ctx, body)
				},
			})
			c := newClient(t, f.addr)
			got, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatalf("%s while the meta group elects: %v", tc.name, err)
			}
			if got != epoch {
				t.Errorf("%s: got epoch %d, want %d", tc.name, got, epoch)
			}
			if elapsed := time.Since(start); elapsed < electing {
				t.Errorf("%s returned after %v, before the meta member could answer (%v)", tc.name, elapsed, electing)
			}
		})
	}
}

func TestFinalErrorNamesUnreachableMeta(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metaDown bool
	}{
		{"meta reachable", false},
		{"meta unreachable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One table whose only partition's master does not listen.
			m := &placement.Map{
				Epoch:  2,
				Nodes:  []placement.Node{{ID: "n1", Addr: closedAddr(t), Weight: 1}},
				Tables: []placement.Table{{ID: 1, Name: "t", Replication: 1, Partitions: []placement.Partition{{ID: 0, Master: "n1", Gen: 1}}}},
			}
			var pulls atomic.Int64
			pull := pullHandler(m)
			f := startFakeMeta(t, map[wire.Kind]rpc.HandlerFunc{
				wire.KindMetaPull: func(ctx context.Context, body []byte) (any, error) {
					pulls.Add(1)
					return pull(ctx, body)
				},
			})
			c := newClient(t, f.addr)
			if _, err := c.Refresh(context.Background()); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tc.metaDown {
				f.srv.Close()
			}
			before := pulls.Load()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := c.Table("t").Get(ctx, []byte("k"))
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) {
				t.Errorf("get: got %v, want the deadline and ErrUnavailable", err)
			}
			if got := errors.Is(err, client.ErrNoMeta); got != tc.metaDown {
				t.Errorf("get: got %v, want ErrNoMeta wrapped: %v", err, tc.metaDown)
			}
			if !tc.metaDown && pulls.Load() == before {
				t.Error("get: the client never asked the meta group for a newer map")
			}
		})
	}
}
