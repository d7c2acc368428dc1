package node

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/poll"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// fakeMeta is a scripted meta group: the leader has one map, a lagging
// follower another.
type fakeMeta struct {
	mu       sync.Mutex
	leader   *placement.Map
	follower *placement.Map
	epoch    placement.Epoch // what heartbeats answer (leader's epoch when 0)
	gate     chan struct{}   // when set, Pull waits for it to close
	regEpoch placement.Epoch // what registrations answer
}

func (f *fakeMeta) Register(context.Context, *wire.RegisterRequest) (placement.Epoch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.regEpoch, nil
}

func (f *fakeMeta) LeaderHint(string, uint64) {}

func (f *fakeMeta) InSync(context.Context, *wire.InSyncRequest) (placement.Epoch, error) {
	return 0, nil
}

func (f *fakeMeta) Heartbeat(_ context.Context, req *wire.HeartbeatRequest) (*wire.HeartbeatReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.epoch
	if e == 0 {
		e = f.leader.Epoch
	}
	return &wire.HeartbeatReply{Epoch: e}, nil
}

func (f *fakeMeta) Pull(ctx context.Context, known placement.Epoch, leader bool) (*placement.Map, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.leader
	if !leader && f.follower != nil {
		m = f.follower
	}
	if m.Epoch <= known {
		return nil, nil
	}
	return m.Clone(), nil
}

func mapWith(epoch placement.Epoch, fenced bool, parts ...placement.Partition) *placement.Map {
	m := &placement.Map{Epoch: epoch, Nodes: []placement.Node{{ID: "a", Addr: "a:1", Weight: 1}, {ID: "b", Addr: "b:1", Weight: 1}}}
	if len(parts) > 0 {
		m.Tables = []placement.Table{{ID: 1, Name: "t", Replication: 2, Fenced: fenced, Partitions: parts}}
	}
	return m
}

func startNode(t testing.TB, dir string, meta MetaClient) *Server {
	t.Helper()
	store, err := partition.Open(partition.Options{Dir: dir, Small: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{NodeID: "a", Addr: "a:1", Store: store, Meta: meta,
		HeartbeatInterval: 20 * time.Millisecond, MasterLease: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready")
	}
	return s
}

func write(t *testing.T, s *Server, key, value string) *wire.Error {
	t.Helper()
	var reply wire.WriteReply
	req := &wire.WriteRequest{Table: 1, Epoch: s.Epoch(), Groups: []wire.WriteGroup{{
		Partition: placement.PartitionOf([]byte(key), 1), Ops: []wire.Op{{Type: wire.OpSet, Key: []byte(key), Value: []byte(value)}}}}}
	if _, err := s.ServeLocal(context.Background(), wire.KindWrite, req, &reply); err != nil {
		t.Fatal(err)
	}
	return reply.Groups[0].Err
}

func read(t *testing.T, s *Server, key string) (string, bool) {
	t.Helper()
	var reply wire.ReadReply
	req := &wire.ReadRequest{Table: 1, Epoch: s.Epoch(), Op: wire.ReadGet, Keys: []wire.KeyRef{{Partition: 0, Key: []byte(key)}}}
	if _, err := s.ServeLocal(context.Background(), wire.KindRead, req, &reply); err != nil {
		t.Fatal(err)
	}
	if r := reply.Results[0]; r.Err != nil {
		t.Fatalf("read %s: %v", key, r.Err)
	} else {
		return string(r.Value), r.Found
	}
	return "", false
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if err := poll.Until(10*time.Second, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: not within 10s", what)
	}
}

func TestRestartNeverGoesBackToAnOlderMap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := placement.Partition{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1}
	meta := &fakeMeta{leader: mapWith(5, false, p)}
	s := startNode(t, dir, meta)
	eventually(t, "master role", func() bool {
		return s.replica(rkey{1, 0}) != nil && s.replica(rkey{1, 0}).info.Load().role == wire.RoleMaster
	})
	if err := write(t, s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// After the restart a lagging member (its own, say) still has epoch 3,
	// from before the table existed.
	meta = &fakeMeta{leader: mapWith(5, false, p), follower: mapWith(3, false)}
	s = startNode(t, dir, meta)
	if s.Epoch() != 5 {
		t.Fatalf("restarted node serves epoch %d, want 5", s.Epoch())
	}
	eventually(t, "master role after restart", func() bool {
		r := s.replica(rkey{1, 0})
		return r != nil && r.info.Load().role == wire.RoleMaster
	})
	if v, found := read(t, s, "k"); !found || v != "v" {
		t.Fatalf("after a restart next to a lagging meta member: k = %q (found %v)", v, found)
	}
}

func TestLeaseRenewsOnlyUnderTheLeadersMap(t *testing.T) {
	p := placement.Partition{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1}
	meta := &fakeMeta{leader: mapWith(5, true, p)}
	s := startNode(t, t.TempDir(), meta)
	eventually(t, "lease", s.leaseValid)
	// The leader moved on (the node was replaced while cut off); its
	// heartbeats are acknowledged, but the node cannot pull the new map
	// yet.
	gate := make(chan struct{})
	meta.mu.Lock()
	meta.gate = gate
	meta.epoch = 9
	meta.leader = mapWith(9, true, placement.Partition{ID: 0, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 2})
	meta.mu.Unlock()
	s.leaseUntil.Store(0) // the old lease has run out
	s.heartbeat(t.Context())
	if s.Epoch() != 5 {
		t.Fatalf("setup: the node applied epoch %d through a closed gate", s.Epoch())
	}
	if s.leaseValid() {
		t.Fatal("the lease was renewed while the node still served an older map")
	}
	if err := write(t, s, "k", "v"); err == nil || err.Code != wire.CodeWait {
		t.Fatalf("fenced write under an older map without a lease: %v, want wait", err)
	}
	close(gate)
	eventually(t, "new map", func() bool { return s.Epoch() == 9 })
	if err := write(t, s, "k", "v"); err == nil || err.Code != wire.CodeMoved {
		t.Fatalf("write to the former master: %v, want moved", err)
	}
}

func TestNewSlaveReplicaStartsIncomplete(t *testing.T) {
	// The partition exists elsewhere (generation 3): a fresh copy here
	// holds nothing until it has loaded a snapshot, and says so.
	p := placement.Partition{ID: 0, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 3}
	meta := &fakeMeta{leader: mapWith(4, false, p)}
	s := startNode(t, t.TempDir(), meta)
	eventually(t, "replica", func() bool { return s.replica(rkey{1, 0}) != nil })
	st := s.replica(rkey{1, 0}).status()
	if !st.Incomplete {
		t.Fatalf("a new slave replica of an existing partition reports %+v, want incomplete", st)
	}
}

func TestNewReplicaOfFreshPartitionIsComplete(t *testing.T) {
	// A table just created: an empty copy is the partition's whole history
	// so far, and must stay eligible for promotion even if its master never
	// comes up.
	p := placement.Partition{ID: 0, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 1}
	meta := &fakeMeta{leader: mapWith(4, false, p)}
	s := startNode(t, t.TempDir(), meta)
	eventually(t, "replica", func() bool { return s.replica(rkey{1, 0}) != nil })
	if st := s.replica(rkey{1, 0}).status(); st.Incomplete {
		t.Fatalf("a new slave replica of a fresh partition reports %+v, want complete", st)
	}
}

// A node that registers (with a new store, say) must not act on a map from
// before its registration, which a lagging meta member may still serve:
// there it masters partitions the registration has just failed over, and
// an empty replica promoted from it would hand its slaves nothing to copy.
func TestMapOlderThanRegistrationIgnored(t *testing.T) {
	old := mapWith(8, false, placement.Partition{ID: 0, Master: "a", Slaves: []placement.NodeID{"b"}, Gen: 1})
	cur := mapWith(9, false, placement.Partition{ID: 0, Master: "b", Slaves: []placement.NodeID{"a"}, Gen: 2})
	meta := &fakeMeta{leader: cur, follower: old, regEpoch: 9}
	s := startNode(t, t.TempDir(), meta)
	if e := s.Epoch(); e != 9 {
		t.Fatalf("ready at epoch %d, want the registration's 9", e)
	}
	r := s.replica(rkey{1, 0})
	if r == nil || r.info.Load().role != wire.RoleSlave {
		t.Fatalf("partition 0 is not a slave here: %+v", r)
	}
	if _, master := r.part.IsMaster(); master {
		t.Fatal("the replica was promoted from the map before the registration")
	}
}
