package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Store metadata keys owned by the node.
const (
	metaNodeID  = "node_id"
	metaStoreID = "store_id"
	metaMap     = "map"
)

// ErrWrongNode is returned by Start when the store belongs to another node.
var ErrWrongNode = errors.New("node: data directory belongs to another node")

// loadLocal checks the store's owner, loads the persisted map and opens
// every replica on disk without a role: they serve nothing until a fresh
// map arrives, but heartbeats report what they hold.
func (s *Server) loadLocal() error {
	owner, err := s.store.GetMeta(metaNodeID)
	if err != nil {
		return fmt.Errorf("node: read identity: %w", err)
	}
	switch {
	case owner == nil:
		// A new store: give it an identity of its own, so the meta group
		// can tell a node that lost its data from one that kept it.
		var r [8]byte
		_, _ = rand.Read(r[:])
		s.storeID = hex.EncodeToString(r[:])
		if err := s.store.PutMeta(metaStoreID, []byte(s.storeID)); err != nil {
			return fmt.Errorf("node: record store identity: %w", err)
		}
		if err := s.store.PutMeta(metaNodeID, []byte(s.cfg.NodeID)); err != nil {
			return fmt.Errorf("node: record identity: %w", err)
		}
	case string(owner) != string(s.cfg.NodeID):
		return fmt.Errorf("%w: it holds node %q, this is node %q", ErrWrongNode, owner, s.cfg.NodeID)
	default:
		id, err := s.store.GetMeta(metaStoreID)
		if err != nil || id == nil {
			return fmt.Errorf("node: read store identity: %v", err)
		}
		s.storeID = string(id)
	}
	if m, err := s.loadMap(); err != nil {
		return err
	} else if m != nil {
		s.cur.Store(m)
	}
	ids, err := s.store.Replicas()
	if err != nil {
		return fmt.Errorf("node: list replicas: %w", err)
	}
	for _, id := range ids {
		p, err := s.store.Replica(id.Table, id.Partition)
		if err != nil {
			return fmt.Errorf("node: open replica %d/%d: %w", id.Table, id.Partition, err)
		}
		k := rkey{placement.TableID(id.Table), placement.PartitionID(id.Partition)}
		s.replicas[k] = newReplica(s, k, p)
	}
	return nil
}

// loadMap returns the map the node last persisted, or nil if it has none.
// It is kept in a meta file of its own; a store written before that kept
// it under the meta key, read when there is no file.
func (s *Server) loadMap() (*placement.Map, error) {
	b, err := s.store.GetMetaFile(metaMap)
	if err == nil && b == nil {
		b, err = s.store.GetMeta(metaMap)
	}
	if err != nil {
		return nil, fmt.Errorf("node: read persisted map: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var m placement.Map
	if err := wire.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("node: decode persisted map: %w", err)
	}
	return &m, nil
}

// mapApplied returns a channel closed when the node next applies a map.
func (s *Server) mapApplied() <-chan struct{} {
	return *s.applied.Load()
}

// requestPull asks the map loop to pull a map of at least epoch e.
func (s *Server) requestPull(e placement.Epoch) {
	for {
		select {
		case s.pullReq <- e:
			return
		default:
		}
		select {
		case old := <-s.pullReq:
			e = max(e, old)
		default:
		}
	}
}

// offerMap keeps m, a map the meta leader pushed, for the map loop, unless
// it already holds a newer one.
func (s *Server) offerMap(m *placement.Map) {
	for {
		old := s.pushed.Load()
		if old != nil && old.Epoch >= m.Epoch {
			return
		}
		if s.pushed.CompareAndSwap(old, m) {
			return
		}
	}
}

// mapLoop pulls and applies maps until ctx ends. It is the only goroutine
// that changes replica roles.
func (s *Server) mapLoop(ctx context.Context) {
	// Pull now and then even without a hint: a missed heartbeat reply must
	// not leave the node behind for long.
	t := time.NewTicker(10 * s.cfg.HeartbeatInterval)
	defer t.Stop()
	var want placement.Epoch
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.pullReq:
			want = max(want, e)
		case <-t.C:
		case <-retry:
			retry = nil
		}
		if !s.registered.Load() {
			continue
		}
		if err := s.pull(ctx, want); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("node: pull failed", "err", err)
			retry = time.After(s.cfg.HeartbeatInterval / 2)
			continue
		}
		// Served: the next tick or request pulls again.
		want = 0
	}
}

// pull applies the map the meta leader last pushed, when it is newer than
// the node's, then asks the meta group for a newer one still if the node
// is short of want (any newer one when want is 0 and nothing was pushed).
// A restarted node, whose map came from disk, asks for
// one at least as new as that map: a meta member that lags behind it (its
// own, say) must not make it go back to an older assignment and drop
// replicas it still holds.
func (s *Server) pull(ctx context.Context, want placement.Epoch) error {
	cctx, cancel := context.WithTimeout(ctx, max(5*s.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	fresh := s.fresh.Load()
	var known placement.Epoch
	if cur := s.cur.Load(); cur != nil {
		known = cur.Epoch
		if !fresh && known > 0 {
			known-- // the persisted epoch itself is fine as a first fresh map
		}
	}
	if m := s.pushed.Swap(nil); m != nil && m.Epoch > known && uint64(m.Epoch) >= s.regEpoch.Load() {
		// The leader's own map came with its announcement: no need to
		// ask for it.
		s.applyMap(ctx, m)
		known, fresh = m.Epoch, s.fresh.Load()
		if want == 0 {
			want = known
		}
	}
	if want != 0 && fresh && known >= want {
		return s.checkRegistration()
	}
	for _, leader := range []bool{false, true} {
		m, err := s.cfg.Meta.Pull(cctx, known, leader)
		if err != nil {
			return err
		}
		if m != nil && m.Epoch > known {
			if uint64(m.Epoch) < s.regEpoch.Load() {
				// A lagging member's map from before the registration:
				// ask the leader.
				continue
			}
			s.applyMap(ctx, m)
			known = m.Epoch
		}
		if s.fresh.Load() && known >= want {
			break
		}
	}
	return s.checkRegistration()
}

// checkRegistration registers the node again when its fresh map lost it
// or has a stale address for it.
func (s *Server) checkRegistration() error {
	if m := s.cur.Load(); m != nil && s.fresh.Load() {
		// Re-register when the map lost us or has a stale address.
		if n := m.Node(s.cfg.NodeID); n == nil || n.Addr != s.cfg.Addr || n.Labels != s.cfg.Labels ||
			n.StoreID != s.storeID {
			s.registered.Store(false)
			select {
			case s.hbNow <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// applyMap makes the node's replicas match a fresh map m: open new ones,
// set roles, drop those no longer assigned here, then persist m. Slave
// loops it starts run until ctx ends (or their role changes).
func (s *Server) applyMap(ctx context.Context, m *placement.Map) {
	if cur := s.cur.Load(); cur != nil && m.Epoch < cur.Epoch {
		s.log.Warn("node: refusing a map older than the one it has", "epoch", m.Epoch, "have", cur.Epoch)
		return
	}
	self := s.cfg.NodeID
	type assignment struct {
		t *placement.Table
		p *placement.Partition
	}
	want := make(map[rkey]assignment)
	for ti := range m.Tables {
		t := &m.Tables[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.Holds(self) {
				want[rkey{t.ID, p.ID}] = assignment{t, p}
			}
		}
	}
	for k, a := range want {
		r := s.replica(k)
		if r == nil {
			p, created, err := s.store.Open(uint32(k.table), uint32(k.part))
			if err != nil {
				s.log.Error("node: open replica", "table", a.t.Name, "partition", k.part, "err", err)
				continue
			}
			if created && a.p.Gen > 1 {
				// A new copy of a partition that has changed masters, so
				// holds data elsewhere: it holds nothing until a full sync
				// has filled it, and must never be promoted (or serve) as
				// an empty copy. At generation 1 an empty copy is the
				// start of the only history the partition has had; meta
				// never promotes it over a replica that reported records.
				if err := p.BeginLoad(); err != nil {
					s.log.Error("node: mark new replica incomplete", "table", a.t.Name, "partition", k.part, "err", err)
					continue
				}
			}
			r = newReplica(s, k, p)
			s.mu.Lock()
			s.replicas[k] = r
			s.mu.Unlock()
		}
		r.update(ctx, a.t, a.p, m)
	}
	for _, r := range s.replicaList() {
		if _, ok := want[r.key]; ok {
			continue
		}
		r.stopSlave()
		r.part.Demote()
		s.mu.Lock()
		delete(s.replicas, r.key)
		s.mu.Unlock()
		if err := s.store.Drop(uint32(r.key.table), uint32(r.key.part)); err != nil {
			s.log.Error("node: drop replica", "table", s.tableName(r.key.table), "partition", r.key.part, "err", err)
		} else {
			s.log.Info("node: dropped replica", "table", s.tableName(r.key.table), "partition", r.key.part, "epoch", m.Epoch)
		}
	}
	marshal := wire.Marshal
	if s.encodeMap != nil {
		marshal = s.encodeMap
	}
	if b, err := marshal(m); err != nil {
		s.log.Error("node: encode map", "epoch", m.Epoch, "err", err)
	} else if err := s.store.PutMetaFile(metaMap, b); err != nil {
		s.log.Error("node: persist map", "epoch", m.Epoch, "err", err)
	}
	s.cur.Store(m)
	s.fresh.Store(true)
	next := make(chan struct{})
	close(*s.applied.Swap(&next))
	s.checkReady()
	// Report the new roles at once: the meta leader waits on them during
	// handovers.
	select {
	case s.hbNow <- struct{}{}:
	default:
	}
	s.log.Debug("node: applied map", "epoch", m.Epoch)
}
