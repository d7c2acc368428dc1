package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

type echo struct {
	V []byte `msgpack:"v"`
}

func startServer(t *testing.T, network transport.Network) (*Server, string) {
	t.Helper()
	s := NewServer(ServerConfig{MaxFrame: 1 << 20, Hello: func(h wire.Hello) wire.HelloReply {
		return wire.HelloReply{NodeID: "srv"}
	}})
	s.Handle(wire.KindRead, func(ctx context.Context, body []byte) (any, error) {
		var e echo
		if err := wire.Unmarshal(body, &e); err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "%v", err)
		}
		if string(e.V) == "boom" {
			panic("boom")
		}
		if string(e.V) == "slow" {
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		if string(e.V) == "err" {
			return nil, wire.Errorf(wire.CodeWait, "try later")
		}
		return &e, nil
	})
	ln, err := transport.OrTCP(network).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

func TestCallsPipelineAndErrors(t *testing.T) {
	_, addr := startServer(t, nil)
	ctx := context.Background()
	c, err := Dial(ctx, DialConfig{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Hello().NodeID != "srv" {
		t.Fatalf("hello: %+v", c.Hello())
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte{byte(i), byte(i >> 8)}
			var got echo
			if err := c.Call(ctx, wire.KindRead, &echo{V: want}, &got); err != nil || !bytes.Equal(got.V, want) {
				t.Errorf("call %d: %v %v", i, got.V, err)
			}
		}()
	}
	wg.Wait()
	if err := c.Call(ctx, wire.KindRead, &echo{V: []byte("err")}, nil); wire.CodeOf(err) != wire.CodeWait {
		t.Errorf("error reply: %v", err)
	}
	if err := c.Call(ctx, wire.KindRead, &echo{V: []byte("boom")}, nil); wire.CodeOf(err) != wire.CodeInternal {
		t.Errorf("panicking handler: %v", err)
	}
	// A slow call does not block a fast one behind it.
	done := make(chan error, 1)
	go func() { done <- c.Call(ctx, wire.KindRead, &echo{V: []byte("slow")}, nil) }()
	time.Sleep(5 * time.Millisecond)
	start := time.Now()
	if err := c.Call(ctx, wire.KindRead, &echo{V: []byte("fast")}, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("fast call waited %v behind a slow one", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := c.Call(short, wire.KindRead, &echo{V: []byte("slow")}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

// rawConn dials addr, sends a valid hello and returns the connection.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := wire.AppendMessage(nil, wire.KindHello, 1, &wire.Hello{Version: wire.ProtocolVersion})
	if _, err := nc.Write(hello); err != nil {
		t.Fatal(err)
	}
	f, err := wire.NewFrameReader(nc, 0).Next()
	if err != nil || f.Kind != wire.KindHello {
		t.Fatalf("hello reply: %+v %v", f, err)
	}
	return nc
}

// expectErrorThenClose reads the error frame the server sends and checks it
// closes the connection afterwards.
func expectErrorThenClose(t *testing.T, nc net.Conn, what string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr := wire.NewFrameReader(nc, 0)
	f, err := fr.Next()
	if err != nil {
		t.Fatalf("%s: no error reply: %v", what, err)
	}
	if f.Kind != wire.KindError {
		t.Fatalf("%s: reply kind %v, want error", what, f.Kind)
	}
	var we wire.Error
	if err := wire.Unmarshal(f.Body, &we); err != nil || we.Code != wire.CodeBadRequest {
		t.Fatalf("%s: error body %+v %v", what, we, err)
	}
	if _, err := fr.Next(); err == nil {
		t.Fatalf("%s: connection still open", what)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	_, addr := startServer(t, nil)
	good, err := Dial(context.Background(), DialConfig{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	cases := map[string][]byte{
		"oversized frame": wire.AppendHeader(nil, wire.KindRead, 2, 10<<20),
		"unknown kind":    wire.AppendFrame(nil, wire.Kind(200), 2, []byte{0xc0}),
		"short frame":     {0, 0, 0, 1, 0},
	}
	for what, payload := range cases {
		nc := rawConn(t, addr)
		nc.Write(payload)
		expectErrorThenClose(t, nc, what)
		nc.Close()
	}

	// A frame whose body is not msgpack gets an error reply; the
	// connection stays usable.
	nc := rawConn(t, addr)
	nc.Write(wire.AppendFrame(nil, wire.KindRead, 3, []byte{0xc1, 0xff, 0x00}))
	f, err := wire.NewFrameReader(nc, 0).Next()
	if err != nil || f.Kind != wire.KindError || f.ID != 3 {
		t.Fatalf("garbage body: %+v %v", f, err)
	}
	nc.Close()

	// No hello at all, just garbage.
	nc, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(bytes.Repeat([]byte{0x17}, 64))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("garbage before hello: connection not closed cleanly: %v", err)
	}
	nc.Close()

	// Wrong protocol version.
	nc, _ = net.Dial("tcp", addr)
	hello, _ := wire.AppendMessage(nil, wire.KindHello, 1, &wire.Hello{Version: 99})
	nc.Write(hello)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err = wire.NewFrameReader(nc, 0).Next()
	if err != nil || f.Kind != wire.KindError {
		t.Fatalf("version mismatch: %+v %v", f, err)
	}
	nc.Close()

	var got echo
	if err := good.Call(context.Background(), wire.KindRead, &echo{V: []byte("still here")}, &got); err != nil || string(got.V) != "still here" {
		t.Fatalf("server stopped serving others: %v", err)
	}
}

func TestConnErrorsAndPool(t *testing.T) {
	srv, addr := startServer(t, nil)
	p := NewPool(DialConfig{})
	defer p.Close()
	ctx := context.Background()
	if err := p.Call(ctx, addr, wire.KindRead, &echo{V: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	// A call in flight when the server goes away fails as lost.
	done := make(chan error, 1)
	go func() { done <- p.Call(ctx, addr, wire.KindRead, &echo{V: []byte("slow")}, nil) }()
	time.Sleep(20 * time.Millisecond)
	srv.Close()
	if err := <-done; !errors.Is(err, ErrConnLost) {
		t.Errorf("in-flight call on server close: %v, want ErrConnLost", err)
	}
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); !errors.Is(err, ErrNotSent) {
		t.Errorf("call to a closed server: %v, want ErrNotSent", err)
	}
	p.Close()
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call on closed pool: %v, want ErrClosed", err)
	}
}

func TestHubPartition(t *testing.T) {
	hub := transport.NewHub(nil)
	_, addr := startServer(t, hub.Host("server"))
	p := NewPool(DialConfig{Network: hub.Host("client")})
	defer p.Close()
	ctx := context.Background()
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); err != nil {
		t.Fatal(err)
	}
	hub.Block("client", "server")
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); !IsConnError(err) {
		t.Fatalf("call across a partition: %v", err)
	}
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); !errors.Is(err, transport.ErrPartitioned) {
		t.Fatalf("redial across a partition: %v", err)
	}
	hub.Heal()
	if err := p.Call(ctx, addr, wire.KindRead, &echo{}, nil); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}
