package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// masterFor returns the replica that slave may replicate from, when this
// node masters the partition at map generation mapGen and slave is one of
// its slaves; otherwise a refusal, after which the slave pulls the map.
// When the slave knows a newer map than this node (it has just learnt that
// this node is its new master, say), or the replica is changing role,
// masterFor first waits, a short while, for this node to apply the map:
// a new master's slaves attach within a round trip of the map reaching
// it, instead of backing off between refusals while the master takes
// writes that exist nowhere else.
func (s *Server) masterFor(ctx context.Context, table placement.TableID, part placement.PartitionID, slave placement.NodeID, mapGen uint64) (*replica, *wire.Error) {
	deadline := time.Now().Add(min(s.cfg.FetchWait, time.Second))
	for {
		applied := s.mapApplied()
		r, werr, behind := s.masterFor1(table, part, slave, mapGen)
		if !behind || !time.Now().Before(deadline) {
			return r, werr
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-applied:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return r, werr
		}
	}
}

// masterFor1 is one attempt of masterFor; behind reports a refusal that
// this node applying a newer map may lift.
func (s *Server) masterFor1(table placement.TableID, part placement.PartitionID, slave placement.NodeID, mapGen uint64) (_ *replica, _ *wire.Error, behind bool) {
	if s.closing() {
		return nil, errClosedWire, false
	}
	m := s.cur.Load()
	if m == nil || !s.fresh.Load() {
		return nil, s.errorf(wire.CodeWait, "node %s has no cluster map yet", s.cfg.NodeID), true
	}
	t := m.TableByID(table)
	if t == nil || int(part) >= len(t.Partitions) {
		s.requestPull(0)
		return nil, s.errorf(wire.CodeRefused, "no table %d partition %d at epoch %d", table, part, m.Epoch), true
	}
	p := &t.Partitions[part]
	ahead := mapGen > p.Gen
	if ahead {
		s.requestPull(0)
	}
	switch {
	case p.Master != s.cfg.NodeID:
		return nil, s.errorf(wire.CodeRefused, "%s is not the master of table %s partition %d (gen %d)", s.cfg.NodeID, t.Name, part, p.Gen), ahead
	case !p.IsSlave(slave) && !p.IsLearner(slave):
		return nil, s.errorf(wire.CodeRefused, "%s is not a slave of table %s partition %d", slave, t.Name, part), ahead
	case mapGen != p.Gen:
		return nil, s.errorf(wire.CodeRefused, "generation mismatch for table %s partition %d: slave at %d, master at %d", t.Name, part, mapGen, p.Gen), ahead
	}
	r := s.replica(rkey{table, part})
	if r == nil {
		return nil, s.errorf(wire.CodeWait, "replica opening"), true
	}
	if info := r.info.Load(); info.role != wire.RoleMaster || info.mapGen != p.Gen {
		return nil, s.errorf(wire.CodeWait, "replica changing role"), true
	}
	return r, nil, false
}

func (s *Server) handleHandshake(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.HandshakeRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	r, werr := s.masterFor(ctx, req.Table, req.Partition, req.Node, req.MapGen)
	if werr != nil {
		if werr.Code == wire.CodeRefused {
			return &wire.HandshakeReply{Action: wire.ReplRefuse, Reason: werr.Msg}, nil
		}
		return nil, werr
	}
	action, reason := r.part.Decide(req.LastGen, req.LastSeq)
	st := r.part.State()
	if action == wire.ReplFullSync {
		s.log.Debug("node: slave needs a full sync", "table", s.tableName(req.Table), "partition", req.Partition,
			"slave", req.Node, "slave_gen", req.LastGen, "slave_seq", req.LastSeq, "seq", st.Seq, "reason", reason)
	}
	return &wire.HandshakeReply{Action: action, Reason: reason, Seq: st.Seq}, nil
}

func (s *Server) handleFetch(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.FetchRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	r, werr := s.masterFor(ctx, req.Table, req.Partition, req.Node, req.MapGen)
	if werr != nil {
		return nil, werr
	}
	r.noteFetch(req.Node, req.Acked, time.Now())
	st := r.part.State()
	switch {
	case req.From < st.FirstSeq:
		return &wire.FetchReply{Purged: true, Seq: st.Seq}, nil
	case req.From > st.Seq+1:
		return nil, s.errorf(wire.CodeRefused, "slave asks for seq %d, master's last is %d", req.From, st.Seq)
	case req.From == st.Seq+1 && req.WaitMs > 0:
		wait := min(time.Duration(req.WaitMs)*time.Millisecond, s.cfg.FetchWait)
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := r.part.WaitSeq(wctx, st.Seq)
		cancel()
		if err != nil && wctx.Err() == nil {
			return nil, s.partErr(ctx, err)
		}
		// The map may have moved on while waiting: only a master of the
		// slave's generation may answer.
		if _, werr := s.masterFor(ctx, req.Table, req.Partition, req.Node, req.MapGen); werr != nil {
			return nil, werr
		}
	}
	maxBytes := s.cfg.FetchBytes
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	recs, err := r.part.ReadLog(req.From, maxBytes)
	if errors.Is(err, partition.ErrPurged) {
		return &wire.FetchReply{Purged: true, Seq: r.part.State().Seq}, nil
	}
	if err != nil {
		return nil, s.partErr(ctx, err)
	}
	return &wire.FetchReply{Records: recs, Seq: r.part.State().Seq}, nil
}

// snapshots are the full-sync transfers in progress on this master.
type snapshots struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*snapSession
}

type snapSession struct {
	mu    sync.Mutex // serialises Next and guards ahead
	snap  *partition.Snapshot
	last  time.Time
	key   rkey
	slave placement.NodeID
	// ahead delivers the chunk read while the previous one is on its way
	// to the slave (nil when none is being read): a session holds at most
	// that chunk besides the one being sent.
	ahead chan snapChunk
}

// snapChunk is one result of Snapshot.Next or NextPacked: its entries are
// in entries, or in packed when isPack is set.
type snapChunk struct {
	entries []wire.SnapEntry
	packed  []byte
	isPack  bool
	done    bool
	err     error
}

// readChunk reads the snapshot's next chunk, packed or not.
func readChunk(snap *partition.Snapshot, maxBytes int, packed bool) (c snapChunk) {
	c.isPack = packed
	if packed {
		c.packed, _, c.done, c.err = snap.NextPacked(maxBytes)
	} else {
		c.entries, c.done, c.err = snap.Next(maxBytes)
	}
	return c
}

// reply is the chunk as a reply in the form asked for.
func (c snapChunk) reply(packed bool) (*wire.SnapChunkReply, error) {
	switch {
	case packed && !c.isPack:
		return &wire.SnapChunkReply{Packed: wire.PackSnapEntries(c.entries), Done: c.done}, nil
	case !packed && c.isPack:
		entries, err := wire.UnpackSnapEntries(c.packed)
		if err != nil {
			return nil, err
		}
		return &wire.SnapChunkReply{Entries: entries, Done: c.done}, nil
	case packed:
		return &wire.SnapChunkReply{Packed: c.packed, Done: c.done}, nil
	}
	return &wire.SnapChunkReply{Entries: c.entries, Done: c.done}, nil
}

func (ss *snapshots) init() { ss.m = make(map[uint64]*snapSession) }

func (ss *snapshots) add(k rkey, slave placement.NodeID, snap *partition.Snapshot) uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.next++
	ss.m[ss.next] = &snapSession{snap: snap, last: time.Now(), key: k, slave: slave}
	return ss.next
}

// keepFrom returns the oldest seq a transfer of replica k in progress will
// need to stream from once its snapshot is loaded (MaxUint64 when none).
func (ss *snapshots) keepFrom(k rkey) uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	keep := ^uint64(0)
	for _, sess := range ss.m {
		if sess.key == k {
			keep = min(keep, sess.snap.Seq+1)
		}
	}
	return keep
}

func (ss *snapshots) get(id uint64) *snapSession {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sess := ss.m[id]
	if sess != nil {
		sess.last = time.Now()
	}
	return sess
}

func (ss *snapshots) remove(id uint64) {
	ss.mu.Lock()
	sess := ss.m[id]
	delete(ss.m, id)
	ss.mu.Unlock()
	if sess != nil {
		sess.mu.Lock()
		sess.snap.Close()
		sess.mu.Unlock()
	}
}

// expire closes sessions idle for longer than idle (a slave that died
// mid-transfer).
func (ss *snapshots) expire(now time.Time, idle time.Duration) {
	ss.mu.Lock()
	var dead []uint64
	for id, sess := range ss.m {
		if now.Sub(sess.last) > idle {
			dead = append(dead, id)
		}
	}
	ss.mu.Unlock()
	for _, id := range dead {
		ss.remove(id)
	}
}

func (ss *snapshots) closeAll() {
	ss.mu.Lock()
	ids := make([]uint64, 0, len(ss.m))
	for id := range ss.m {
		ids = append(ids, id)
	}
	ss.mu.Unlock()
	for _, id := range ids {
		ss.remove(id)
	}
}

func (s *Server) handleSnapBegin(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.SnapBeginRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	r, werr := s.masterFor(ctx, req.Table, req.Partition, req.Node, req.MapGen)
	if werr != nil {
		return nil, werr
	}
	snap, err := r.part.Snapshot()
	if err != nil {
		return nil, s.partErr(ctx, err)
	}
	id := s.snaps.add(r.key, req.Node, snap)
	reply := &wire.SnapBeginReply{ID: id, Gen: snap.Gen, Seq: snap.Seq, History: slices.Clone(snap.History)}
	s.log.Debug("node: full sync started", "table", s.tableName(req.Table), "partition", req.Partition, "slave", req.Node, "gen", snap.Gen, "seq", snap.Seq)
	return reply, nil
}

func (s *Server) handleSnapChunk(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.SnapChunkRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	sess := s.snaps.get(req.ID)
	if sess == nil {
		return nil, s.errorf(wire.CodeRefused, "no snapshot %d (expired or master restarted)", req.ID)
	}
	maxBytes := s.cfg.SnapshotChunk
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	sess.mu.Lock()
	var c snapChunk
	if sess.ahead != nil {
		// Read ahead, sized and packed as the request before asked (a
		// slave asks the same throughout).
		c = <-sess.ahead
		sess.ahead = nil
	} else {
		c = readChunk(sess.snap, maxBytes, req.Packed)
	}
	if c.err == nil && !c.done {
		// Read the next chunk while this one is encoded and sent, and the
		// slave loads it. Should the session end first, Next fails on the
		// closed snapshot or its chunk is dropped with the session.
		ahead := make(chan snapChunk, 1)
		snap, packed := sess.snap, req.Packed
		if s.group.Go(func() { ahead <- readChunk(snap, maxBytes, packed) }) {
			sess.ahead = ahead
		}
	}
	sess.mu.Unlock()
	done, err := c.done, c.err
	var reply *wire.SnapChunkReply
	if err == nil {
		reply, err = c.reply(req.Packed)
	}
	if err != nil {
		s.snaps.remove(req.ID)
		return nil, s.partErr(ctx, err)
	}
	if done {
		// The slave streams on from the snapshot's seq: keep the log from
		// there as for any connected slave.
		if r := s.replica(sess.key); r != nil {
			r.noteFetch(sess.slave, sess.snap.Seq, time.Now())
		}
		s.snaps.remove(req.ID)
	}
	return reply, nil
}

func (s *Server) handleSnapEnd(_ context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.SnapEndRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	s.snaps.remove(req.ID)
	return &wire.EpochReply{Epoch: s.Epoch()}, nil
}
