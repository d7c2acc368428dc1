package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// A refresh that wants epoch 5 and joins a pull already in flight, which
// brings only epoch 3 (it wanted less, or asked a lagging member), pulls
// again for itself instead of returning short: CreateTable waits for its
// epoch this way, and a table created a moment ago must be in the map.
func TestRefreshJoinsAPullThatFallsShort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := rpc.NewServer(rpc.ServerConfig{Hello: func(wire.Hello) wire.HelloReply {
		return wire.HelloReply{NodeID: "meta", Roles: wire.RoleMeta, Meta: []placement.MetaMember{{ID: 1, RPCAddr: addr}}}
	}})
	m5 := &placement.Map{Epoch: 5, Tables: []placement.Table{{Name: "t", ID: 1}}}
	srv.Handle(wire.KindMetaPull, func(_ context.Context, body []byte) (any, error) {
		var req wire.PullRequest
		if err := wire.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		if req.Known >= m5.Epoch {
			return &wire.PullReply{Epoch: m5.Epoch}, nil
		}
		return &wire.PullReply{Epoch: m5.Epoch, Map: m5}, nil
	})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := New(DefaultConfig(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	f := &pullFlight{done: make(chan struct{})}
	c.flightMu.Lock()
	c.flight = f
	c.flightMu.Unlock()
	joined := make(chan struct{})
	c.testHookJoined = func() { close(joined) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.refresh(ctx, 0, 5) }()
	<-joined
	c.testHookJoined = nil
	c.cur.Store(&placement.Map{Epoch: 3})
	c.flightMu.Lock()
	c.flight = nil
	c.flightMu.Unlock()
	close(f.done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := c.cur.Load(); m.Epoch != 5 || m.Table("t") == nil {
		t.Fatalf("after refresh for epoch 5: map of epoch %d, table t %v", m.Epoch, m.Table("t"))
	}
}
