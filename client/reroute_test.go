package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// startFakeData serves writes as a data node called id would, with
// handle.
func startFakeData(t *testing.T, id placement.NodeID, handle rpc.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(rpc.ServerConfig{Hello: func(wire.Hello) wire.HelloReply {
		return wire.HelloReply{NodeID: string(id), Roles: wire.RoleData}
	}})
	srv.Handle(wire.KindWrite, handle)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestStalledMasterIsRerouted sends writes to a master that never answers
// while the map moves the partition to another node: a write that may be
// repeated goes to the new master and succeeds, one that may not fails as
// ambiguous, both within a few RerouteAfter rather than the call's timeout.
func TestStalledMasterIsRerouted(t *testing.T) {
	const every = 100 * time.Millisecond
	var cur atomic.Pointer[placement.Map]
	meta := startFakeMeta(t, map[wire.Kind]rpc.HandlerFunc{
		wire.KindMetaPull: func(ctx context.Context, body []byte) (any, error) {
			return pullHandler(cur.Load())(ctx, body)
		},
	})
	// moveTo publishes a map, one epoch on, with the partition on master.
	var addrA, addrB string
	moveTo := func(master placement.NodeID) {
		epoch := placement.Epoch(1)
		if m := cur.Load(); m != nil {
			epoch = m.Epoch + 1
		}
		cur.Store(&placement.Map{
			Epoch: epoch,
			Nodes: []placement.Node{{ID: "a", Addr: addrA, Weight: 1}, {ID: "b", Addr: addrB, Weight: 1}},
			Tables: []placement.Table{{ID: 1, Name: "t", Replication: 1,
				Partitions: []placement.Partition{{ID: 0, Master: master}}}},
			Meta: []placement.MetaMember{{ID: 1, RPCAddr: meta.addr}},
		})
	}
	// a takes each write, moves the partition to b and never answers.
	var atA, atB atomic.Int32
	addrA = startFakeData(t, "a", func(ctx context.Context, _ []byte) (any, error) {
		atA.Add(1)
		moveTo("b")
		<-ctx.Done()
		return nil, ctx.Err()
	})
	addrB = startFakeData(t, "b", func(_ context.Context, body []byte) (any, error) {
		var req wire.WriteRequest
		if err := wire.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		atB.Add(1)
		reply := &wire.WriteReply{}
		for _, g := range req.Groups {
			gr := wire.GroupResult{}
			for _, op := range g.Ops {
				gr.Results = append(gr.Results, wire.OpResult{Done: true, Int: op.Delta})
			}
			reply.Groups = append(reply.Groups, gr)
		}
		return reply, nil
	})
	moveTo("a")

	cfg := client.DefaultConfig(meta.addr)
	cfg.RerouteAfter = every
	cfg.Timeout = 20 * time.Second
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tb := c.Table("t")
	ctx := context.Background()

	start := time.Now()
	if err := tb.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("set through a stalled master: %v", err)
	}
	if took := time.Since(start); took > 10*every {
		t.Errorf("set took %v with RerouteAfter %v", took, every)
	}
	if atA.Load() != 1 || atB.Load() != 1 {
		t.Errorf("set reached a %d and b %d times, want once each", atA.Load(), atB.Load())
	}

	moveTo("a")
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = tb.IncrBy(ctx, []byte("n"), 1)
	if !errors.Is(err, client.ErrAmbiguous) {
		t.Fatalf("increment through a stalled master: %v, want ErrAmbiguous", err)
	}
	if took := time.Since(start); took > 10*every {
		t.Errorf("increment took %v with RerouteAfter %v", took, every)
	}
	if atA.Load() != 2 || atB.Load() != 1 {
		t.Errorf("increment reached a %d and b %d times in all, want 2 and 1", atA.Load(), atB.Load())
	}
}
