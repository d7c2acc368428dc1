package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// startServing starts data node id serving RPCs on ln, with full-sync
// chunks of chunk bytes.
func startServing(t *testing.T, id placement.NodeID, ln net.Listener, meta MetaClient, chunk int) *Server {
	t.Helper()
	store, err := partition.Open(partition.Options{Dir: t.TempDir(), Small: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{NodeID: id, Addr: ln.Addr().String(), Store: store, Meta: meta,
		Dial: rpc.DialConfig{From: string(id)}, SnapshotChunk: chunk,
		HeartbeatInterval: 20 * time.Millisecond, MasterLease: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(rpc.ServerConfig{})
	s.Register(srv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready")
	}
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestFullSyncInManyChunks copies a partition to an empty slave in chunks
// far smaller than the partition, fetched ahead of the load: the slave
// ends at the master's position with the master's keys, and the master
// holds no snapshot session any more.
func TestFullSyncInManyChunks(t *testing.T) {
	lnA, lnB := listen(t), listen(t)
	m := &placement.Map{Epoch: 4,
		Nodes: []placement.Node{{ID: "a", Addr: lnA.Addr().String(), Weight: 1}, {ID: "b", Addr: lnB.Addr().String(), Weight: 1}},
		Tables: []placement.Table{{ID: 1, Name: "t", Replication: 2, Partitions: []placement.Partition{
			{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1}}}}}
	meta := &fakeMeta{leader: m}
	const chunk = 8 << 10
	a := startServing(t, "a", lnA, meta, chunk)
	eventually(t, "master", func() bool {
		r := a.replica(rkey{1, 0})
		return r != nil && r.info.Load().role == wire.RoleMaster
	})
	value := func(i int) string { return fmt.Sprintf("%d:%s", i, bytes.Repeat([]byte{'v'}, 500+i%700)) }
	const keys = 600 // about 500 KB: some 60 chunks
	for i := range keys {
		if werr := write(t, a, fmt.Sprintf("k%04d", i), value(i)); werr != nil {
			t.Fatalf("write: %v", werr)
		}
	}
	b := startServing(t, "b", lnB, meta, chunk)
	var sr *replica
	eventually(t, "slave loaded and streaming", func() bool {
		sr = b.replica(rkey{1, 0})
		if sr == nil {
			return false
		}
		st := sr.status()
		return st.FullSyncs > 0 && !st.Incomplete && st.State == wire.ReplStreaming
	})
	want := a.replica(rkey{1, 0}).part.State()
	if got := sr.part.State(); got.Seq != want.Seq || got.Gen != want.Gen {
		t.Fatalf("slave at (gen %d, seq %d), master at (gen %d, seq %d)", got.Gen, got.Seq, want.Gen, want.Seq)
	}
	if n := sr.loadedBytes.Load(); n < keys*500 {
		t.Fatalf("loaded %d bytes, want at least %d", n, keys*500)
	}
	for i := range keys {
		k := fmt.Sprintf("k%04d", i)
		v, _, found, err := sr.part.Get([]byte(k))
		if err != nil || !found || string(v) != value(i) {
			t.Fatalf("slave's %s: found %v, %d bytes, err %v", k, found, len(v), err)
		}
	}
	eventually(t, "master's sessions ended", func() bool {
		a.snaps.mu.Lock()
		defer a.snaps.mu.Unlock()
		return len(a.snaps.m) == 0
	})
}

// TestSnapSessionEndsWithChunkReadAhead ends a snapshot session while a
// chunk is being read ahead: the session goes, and asking for more is
// refused.
func TestSnapSessionEndsWithChunkReadAhead(t *testing.T) {
	s := startSnapMaster(t)
	for i := range 100 {
		if werr := write(t, s, fmt.Sprintf("k%03d", i), "value"); werr != nil {
			t.Fatalf("write: %v", werr)
		}
	}
	ctx := context.Background()
	call := func(h func(context.Context, []byte) (any, error), req any) (any, error) {
		body, err := wire.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return h(ctx, body)
	}
	reply, err := call(s.handleSnapBegin, &wire.SnapBeginRequest{Table: 1, Partition: 0, Node: "b", MapGen: 1})
	if err != nil {
		t.Fatal(err)
	}
	begin := reply.(*wire.SnapBeginReply)
	got := 0
	for range 3 {
		reply, err := call(s.handleSnapChunk, &wire.SnapChunkRequest{ID: begin.ID, MaxBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		c := reply.(*wire.SnapChunkReply)
		if c.Done || len(c.Entries) == 0 {
			t.Fatalf("chunk of %d entries, done %v", len(c.Entries), c.Done)
		}
		for _, e := range c.Entries {
			if want := fmt.Sprintf("k%03d", got); string(e.Key) != want {
				t.Fatalf("key %s, want %s", e.Key, want)
			}
			got++
		}
	}
	if _, err := call(s.handleSnapEnd, &wire.SnapEndRequest{ID: begin.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(s.handleSnapChunk, &wire.SnapChunkRequest{ID: begin.ID, MaxBytes: 64}); wire.CodeOf(err) != wire.CodeRefused {
		t.Fatalf("chunk after the end: %v, want refused", err)
	}
	s.snaps.mu.Lock()
	n := len(s.snaps.m)
	s.snaps.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d sessions after the end", n)
	}
}

// TestSnapChunksPackedOrNot reads a snapshot with requests that ask for
// packed and plain chunks in turn, as a master sees slaves of two
// versions do (and a chunk read ahead in the other form): every key comes
// once, in order, with its value, and the last chunk says so.
func TestSnapChunksPackedOrNot(t *testing.T) {
	s := startSnapMaster(t)
	const keys = 100
	value := func(i int) string { return fmt.Sprintf("value %d", i) }
	for i := range keys {
		if werr := write(t, s, fmt.Sprintf("k%03d", i), value(i)); werr != nil {
			t.Fatalf("write: %v", werr)
		}
	}
	ctx := context.Background()
	chunk := func(req *wire.SnapChunkRequest) *wire.SnapChunkReply {
		body, err := wire.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := s.handleSnapChunk(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		// As the slave gets it: encoded and decoded.
		if body, err = wire.Marshal(reply); err != nil {
			t.Fatal(err)
		}
		var c wire.SnapChunkReply
		if err := wire.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	body, err := wire.Marshal(&wire.SnapBeginRequest{Table: 1, Partition: 0, Node: "b", MapGen: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.handleSnapBegin(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	sid := r.(*wire.SnapBeginReply).ID
	got := 0
	for i := 0; ; i++ {
		packed := i%3 != 1
		c := chunk(&wire.SnapChunkRequest{ID: sid, MaxBytes: 100, Packed: packed})
		entries := c.Entries
		if packed {
			if len(c.Entries) != 0 {
				t.Fatalf("chunk %d: %d plain entries in a packed reply", i, len(c.Entries))
			}
			if entries, err = wire.UnpackSnapEntries(c.Packed); err != nil {
				t.Fatal(err)
			}
		} else if c.Packed != nil {
			t.Fatalf("chunk %d: packed entries in a plain reply", i)
		}
		if len(entries) == 0 && !c.Done {
			t.Fatalf("chunk %d is empty", i)
		}
		for _, e := range entries {
			if string(e.Key) != fmt.Sprintf("k%03d", got) || string(e.Value) != value(got) {
				t.Fatalf("chunk %d: %s = %q, want k%03d = %q", i, e.Key, e.Value, got, value(got))
			}
			got++
		}
		if c.Done {
			break
		}
	}
	if got != keys {
		t.Fatalf("%d keys, want %d", got, keys)
	}
}

// startSnapMaster starts a node that masters partition 0 of table 1 with a
// slave "b", and waits until it does.
func startSnapMaster(t *testing.T) *Server {
	t.Helper()
	p := placement.Partition{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1}
	meta := &fakeMeta{leader: mapWith(4, false, p)}
	s := startNode(t, t.TempDir(), meta)
	eventually(t, "master", func() bool {
		r := s.replica(rkey{1, 0})
		return r != nil && r.info.Load().role == wire.RoleMaster
	})
	return s
}
