package node

import (
	"context"
	"errors"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Register installs the data and replication handlers on srv.
func (s *Server) Register(srv *rpc.Server) {
	srv.Handle(wire.KindRead, s.handleRead)
	srv.Handle(wire.KindWrite, s.handleWrite)
	srv.Handle(wire.KindList, s.handleList)
	srv.Handle(wire.KindCount, s.handleCount)
	srv.Handle(wire.KindNodeStatus, s.handleNodeStatus)
	srv.Handle(wire.KindNodeNotify, s.handleNotify)
	srv.Handle(wire.KindWaitRepl, s.handleWaitReplicas)
	srv.Handle(wire.KindReplHandshake, s.handleHandshake)
	srv.Handle(wire.KindReplFetch, s.handleFetch)
	srv.Handle(wire.KindSnapBegin, s.handleSnapBegin)
	srv.Handle(wire.KindSnapChunk, s.handleSnapChunk)
	srv.Handle(wire.KindSnapEnd, s.handleSnapEnd)
}

// serving returns the replica that may serve a request for partition part
// of table, with the table's partition count in the map it decided by, or
// the error telling the client where to go or to wait. When the answer
// would be to wait for a map this node has not applied yet — the client
// knows a newer one, or the partition is held for a handover or changing
// role — serving first waits a moment (up to servingHold, within ctx) for
// the next map and decides again: the client gets its answer (or is sent
// to the new master) as soon as the map moves, instead of backing off.
func (s *Server) serving(ctx context.Context, table placement.TableID, part placement.PartitionID, epoch placement.Epoch, write, allowSlave bool) (*replica, int, *wire.Error) {
	var deadline time.Time
	for {
		applied := s.mapApplied()
		r, n, werr, hold := s.serving1(table, part, epoch, write, allowSlave)
		if !hold {
			return r, n, werr
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(servingHold)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return r, n, werr
		}
		t := time.NewTimer(d)
		select {
		case <-applied:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return r, n, werr
		}
	}
}

// servingHold bounds how long serving waits for the node's map to catch up.
const servingHold = 500 * time.Millisecond

// serving1 is one decision of serving; hold reports an answer that the
// node applying its next map may change.
func (s *Server) serving1(table placement.TableID, part placement.PartitionID, epoch placement.Epoch, write, allowSlave bool) (_ *replica, _ int, _ *wire.Error, hold bool) {
	if s.closing() {
		return nil, 0, errClosedWire, false
	}
	m := s.cur.Load()
	if m == nil || !s.fresh.Load() {
		return nil, 0, s.errorf(wire.CodeWait, "node %s has no cluster map yet", s.cfg.NodeID), true
	}
	if epoch > m.Epoch {
		// The client knows a newer map: catch up before answering, the
		// partition may have moved.
		s.requestPull(epoch)
		return nil, 0, s.errorf(wire.CodeStaleEpoch, "node %s is at epoch %d, request at %d", s.cfg.NodeID, m.Epoch, epoch), true
	}
	t := m.TableByID(table)
	if t == nil {
		return nil, 0, s.errorf(wire.CodeTableNotFound, "no table with ID %d at epoch %d", table, m.Epoch), false
	}
	if int(part) >= len(t.Partitions) {
		return nil, 0, s.errorf(wire.CodeInvalid, "table %s has %d partitions, no partition %d", t.Name, len(t.Partitions), part), false
	}
	p := &t.Partitions[part]
	self := s.cfg.NodeID
	if p.Master != self && !(allowSlave && !write && p.IsSlave(self)) {
		if p.Master == "" {
			return nil, 0, s.errorf(wire.CodeUnavailable, "table %s partition %d has no master (every replica is down)", t.Name, part), false
		}
		e := s.errorf(wire.CodeMoved, "table %s partition %d is mastered by %s", t.Name, part, p.Master)
		e.Addr = m.NodeAddr(p.Master)
		return nil, 0, e, false
	}
	r := s.replica(rkey{table, part})
	if r == nil {
		return nil, 0, s.errorf(wire.CodeWait, "table %s partition %d is opening", t.Name, part), true
	}
	info := r.info.Load()
	if info.mapGen != p.Gen || (p.Master == self && info.role != wire.RoleMaster) {
		return nil, 0, s.errorf(wire.CodeWait, "table %s partition %d is changing role", t.Name, part), true
	}
	if r.part.Incomplete() {
		return nil, 0, s.errorf(wire.CodeUnavailable, "table %s partition %d: replica on %s holds no complete copy", t.Name, part, self), false
	}
	if p.Master == self && write {
		if s.draining.Load() {
			return nil, 0, s.errorf(wire.CodeClosed, "node %s is shutting down", self), false
		}
		if info.stuck {
			return nil, 0, s.errorf(wire.CodeWait, "table %s partition %d is held for a master handover", t.Name, part), true
		}
	}
	// On a fenced table the master serves only while its lease holds: once
	// it lapses, meta may have promoted another replica, and neither a
	// write nor a read from this copy is safe.
	if p.Master == self && info.fenced && !s.leaseValid() {
		return nil, 0, s.errorf(wire.CodeWait, "master lease of %s lapsed: cannot confirm it still masters table %s partition %d", self, t.Name, part), false
	}
	return r, len(t.Partitions), nil, false
}

// partErr maps a partition error to the wire.
func (s *Server) partErr(ctx context.Context, err error) *wire.Error {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, partition.ErrNotMaster):
		return s.errorf(wire.CodeWait, "replica is changing role")
	case errors.Is(err, partition.ErrClosed):
		if s.closing() {
			return errClosedWire
		}
		return s.errorf(wire.CodeWait, "replica is closing")
	case errors.Is(err, partition.ErrIncomplete):
		return s.errorf(wire.CodeUnavailable, "replica holds no complete copy")
	case ctx.Err() != nil:
		return s.errorf(wire.CodeTimeout, "%v", ctx.Err())
	}
	return s.errorf(wire.CodeInternal, "%v", err)
}

// ServeLocal answers a data request of the node's own process without the
// network: req and resp are the wire messages of kind (a write, a read or
// a list). It reports false for other kinds.
func (s *Server) ServeLocal(ctx context.Context, kind wire.Kind, req, resp any) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("node: panic serving a local request", "kind", kind, "panic", r)
			ok, err = true, wire.Errorf(wire.CodeInternal, "%v failed: %v", kind, r)
		}
	}()
	switch kind {
	case wire.KindWrite:
		// The partition may still read the operations after a cancelled
		// caller has returned and reused its buffers: give it its own.
		*resp.(*wire.WriteReply) = *s.write(ctx, cloneWrite(req.(*wire.WriteRequest)))
	case wire.KindRead:
		s.read(ctx, req.(*wire.ReadRequest), resp.(*wire.ReadReply))
	case wire.KindList:
		r, err := s.list(ctx, req.(*wire.ListRequest))
		if err != nil {
			return true, err
		}
		*resp.(*wire.ListReply) = *r
	default:
		return false, nil
	}
	return true, nil
}

// cloneWrite deep-copies a write request's keys and values, into one
// buffer for all of them and one slice for all the operations.
func cloneWrite(req *wire.WriteRequest) *wire.WriteRequest {
	out := *req
	nops, size := 0, 0
	for _, g := range req.Groups {
		nops += len(g.Ops)
		for _, op := range g.Ops {
			size += len(op.Key) + len(op.Value)
		}
	}
	ops := make([]wire.Op, 0, nops)
	buf := make([]byte, 0, size)
	clone := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	out.Groups = make([]wire.WriteGroup, len(req.Groups))
	for i, g := range req.Groups {
		start := len(ops)
		for _, op := range g.Ops {
			op.Key = clone(op.Key)
			op.Value = clone(op.Value)
			ops = append(ops, op)
		}
		out.Groups[i] = wire.WriteGroup{Partition: g.Partition, Ops: ops[start:len(ops):len(ops)]}
	}
	return &out
}

func (s *Server) handleWrite(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.WriteRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	return s.write(ctx, req), nil
}

// write applies every group of req, groups of different partitions in
// parallel.
func (s *Server) write(ctx context.Context, req *wire.WriteRequest) *wire.WriteReply {
	reply := &wire.WriteReply{Groups: make([]wire.GroupResult, len(req.Groups))}
	if len(req.Groups) == 1 {
		reply.Groups[0] = s.writeGroup(ctx, req, &req.Groups[0])
	} else {
		// Groups of different partitions commit in parallel: each is
		// queued with its partition's replica before any is waited for.
		start := time.Now()
		started := make([]startedGroup, len(req.Groups))
		for i := range req.Groups {
			started[i] = s.startGroup(ctx, req, &req.Groups[i])
		}
		for i := range req.Groups {
			reply.Groups[i] = s.finishGroup(ctx, started[i])
			s.observe("write", req.Table, start, reply.Groups[i].Err)
			if reply.Groups[i].Err == nil {
				s.countOps(req.Table, req.Groups[i].Ops)
			}
		}
	}
	// Check the lease again now that the groups have committed: a master
	// that was paused or cut off meanwhile may have been replaced, and
	// must not acknowledge what it applied (its replacement may not have
	// it). The client in turn discards a reply that reaches it after the
	// lease it reports has run out, except for a sync table: there a
	// write is acknowledged only once every member of the in-sync set
	// holds it, and only an in-sync member is ever promoted, so what was
	// acknowledged survives however late the acknowledgement arrives (a
	// deposed master cannot complete a write: its in-sync slaves stop
	// acknowledging once one of them is master, and only meta shrinks the
	// set); and a group that wrote nothing was evaluated while the lease,
	// checked here after it, still held.
	if s.fenced(req.Table) {
		left := s.leaseLeft()
		if left <= 0 {
			for i := range reply.Groups {
				if reply.Groups[i].Err == nil {
					reply.Groups[i] = wire.GroupResult{Err: s.errorf(wire.CodeAmbiguous,
						"master lease of %s lapsed while the write was applied: it may or may not survive", s.cfg.NodeID)}
				}
			}
		}
		if !s.syncTable(req.Table) {
			reply.LeaseMs = leaseMs(left)
		}
	}
	return reply
}

// fenced reports whether table is fenced in the node's map: its masters
// serve only under a valid lease.
func (s *Server) fenced(table placement.TableID) bool {
	m := s.cur.Load()
	if m == nil {
		return false
	}
	t := m.TableByID(table)
	return t != nil && (t.Fenced || t.Mode == placement.ModeSync)
}

// syncTable reports whether table is a sync table in the node's map.
func (s *Server) syncTable(table placement.TableID) bool {
	m := s.cur.Load()
	if m == nil {
		return false
	}
	t := m.TableByID(table)
	return t != nil && t.Mode == placement.ModeSync
}

// leaseMs turns the lease left into a reply's LeaseMs: whole milliseconds,
// rounded down, 0 when it has lapsed.
func leaseMs(left time.Duration) int64 {
	return max(int64(left/time.Millisecond), 0)
}

func (s *Server) writeGroup(ctx context.Context, req *wire.WriteRequest, g *wire.WriteGroup) wire.GroupResult {
	start := time.Now()
	res := s.writeGroup1(ctx, req, g)
	s.observe("write", req.Table, start, res.Err)
	if res.Err == nil {
		s.countOps(req.Table, g.Ops)
	}
	return res
}

func (s *Server) writeGroup1(ctx context.Context, req *wire.WriteRequest, g *wire.WriteGroup) wire.GroupResult {
	return s.finishGroup(ctx, s.startGroup(ctx, req, g))
}

// startedGroup is a write group startGroup queued, or the error that
// stopped it first.
type startedGroup struct {
	r    *replica
	p    partition.Pending
	werr *wire.Error
}

// startGroup checks write group g of req and queues it with its
// partition's committer.
func (s *Server) startGroup(ctx context.Context, req *wire.WriteRequest, g *wire.WriteGroup) startedGroup {
	if err := s.cfg.Limits.CheckOps(g.Ops); err != nil {
		return startedGroup{werr: err}
	}
	r, n, werr := s.serving(ctx, req.Table, g.Partition, req.Epoch, true, false)
	if werr != nil {
		return startedGroup{werr: werr}
	}
	for _, op := range g.Ops {
		var want placement.PartitionID
		switch op.Type {
		case wire.OpFlush:
			continue
		case wire.OpDeleteTag:
			want = placement.PartitionOfTag(op.Key, n)
		default:
			want = placement.PartitionOf(op.Key, n)
		}
		if want != g.Partition {
			return startedGroup{werr: s.errorf(wire.CodeInvalid, "key %q belongs to partition %d, not %d", op.Key, want, g.Partition)}
		}
	}
	if info := r.info.Load(); info.sync && len(info.inSync) < info.minInSync {
		return startedGroup{werr: s.errorf(wire.CodeNotEnoughReplicas, "table %d partition %d has %d in-sync replicas, fewer than its minimum of %d: nothing was written",
			req.Table, g.Partition, len(info.inSync), info.minInSync)}
	}
	p, err := r.part.Submit(ctx, g.Ops)
	if err != nil {
		return startedGroup{werr: s.partErr(ctx, err)}
	}
	return startedGroup{r: r, p: p}
}

// finishGroup waits for a group startGroup queued and, on a sync table,
// for its replication, and answers it.
func (s *Server) finishGroup(ctx context.Context, sg startedGroup) wire.GroupResult {
	if sg.werr != nil {
		return wire.GroupResult{Err: sg.werr}
	}
	r := sg.r
	res, seq, err := sg.p.Wait(ctx)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) || seq == 0 {
			return wire.GroupResult{Err: s.partErr(ctx, err)}
		}
		// The group failed on its own terms (an increment of a value that
		// is not an integer, say): that answer depends on the data up to
		// seq, which a sync table must have replicated first.
		if werr := r.waitReplicated(ctx, seq); werr != nil {
			return wire.GroupResult{Err: werr}
		}
		return wire.GroupResult{Err: we}
	}
	if werr := r.waitReplicated(ctx, seq); werr != nil {
		return wire.GroupResult{Err: werr}
	}
	return wire.GroupResult{Results: res, Seq: seq}
}

// readReplicated waits until a sync master's data up to seq, which a read
// was answered from, is replicated to its in-sync set; a read never
// returns what a failover could still lose. Failing that, the read can be
// retried: its error is a wait.
func (s *Server) readReplicated(ctx context.Context, r *replica, seq uint64, allowSlave bool) *wire.Error {
	if allowSlave && r.info.Load().role != wire.RoleMaster {
		return nil
	}
	werr := r.waitReplicated(ctx, seq)
	if werr == nil {
		return nil
	}
	e := *werr
	e.Code = wire.CodeWait
	return &e
}

func (s *Server) handleRead(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.ReadRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	reply := new(wire.ReadReply)
	s.read(ctx, req, reply)
	return reply, nil
}

// read reads every key of req, in order, into reply.
func (s *Server) read(ctx context.Context, req *wire.ReadRequest, reply *wire.ReadReply) {
	*reply = wire.ReadReply{Results: make([]wire.ReadResult, len(req.Keys))}
	if len(req.Keys) == 1 {
		start := time.Now()
		reply.Results[0] = s.read1(ctx, req, req.Keys[0])
		s.observe(readKind(req.Op), req.Table, start, reply.Results[0].Err)
		if len(reply.Results[0].Value)+16 > s.replyBudget() {
			reply.Results[0] = wire.ReadResult{Err: s.tooLarge(1)}
		}
	} else {
		s.readMany(ctx, req, reply)
	}
	// A read from a fenced master is good only while its lease holds (see
	// write); reads a client allowed from slaves are stale by consent.
	if !req.AllowSlave && s.fenced(req.Table) {
		left := s.leaseLeft()
		if left <= 0 {
			for i := range reply.Results {
				if reply.Results[i].Err == nil {
					reply.Results[i] = wire.ReadResult{Err: s.errorf(wire.CodeWait, "master lease of %s lapsed during the read", s.cfg.NodeID)}
				}
			}
		}
		reply.LeaseMs = leaseMs(left)
	}
}

// replyBudget is the most value bytes one read reply carries: what an
// RPC frame may hold, less room for everything else.
func (s *Server) replyBudget() int {
	return s.cfg.Limits.WithDefaults().FrameLimit() - 1<<20
}

func readKind(op wire.ReadOp) string {
	switch op {
	case wire.ReadGet:
		return "get"
	case wire.ReadExists:
		return "exists"
	case wire.ReadTTL:
		return "ttl"
	}
	return "read"
}

// tooLarge is the error of every key of a read of n keys whose values
// exceed what one reply carries.
func (s *Server) tooLarge(n int) *wire.Error {
	return s.errorf(wire.CodeInvalid, "the values of these %d keys exceed %d bytes, the most one reply carries: ask for fewer keys at a time", n, s.replyBudget())
}

// readMany reads the keys of req, two or more, from one snapshot of the
// store (Store.GetMany). Every answer is checked as read1 checks it, and
// waits for replication (sync tables) once the snapshot is closed.
func (s *Server) readMany(ctx context.Context, req *wire.ReadRequest, reply *wire.ReadReply) {
	kind := readKind(req.Op)
	budget, size := s.replyBudget(), 0
	type item struct {
		i     int // index in req.Keys
		r     *replica
		value []byte
		exp   int64
		found bool
		seq   uint64
		err   error
	}
	start := time.Now()
	items := make([]item, 0, len(req.Keys))
	parts := make([]*partition.Replica, 0, len(req.Keys))
	keys := make([][]byte, 0, len(req.Keys))
	for i, k := range req.Keys {
		r, werr := s.readTarget(ctx, req, k)
		if werr != nil {
			reply.Results[i] = wire.ReadResult{Err: werr}
			s.observe(kind, req.Table, start, werr)
			size += 16
			continue
		}
		items = append(items, item{i: i, r: r})
		parts = append(parts, r.part)
		keys = append(keys, k.Key)
	}
	over := false
	s.store.GetMany(parts, keys, func(j int, value []byte, exp int64, found bool, seq uint64, err error) bool {
		if size += len(value) + 16; size > budget {
			// Stop before the reply outgrows what one frame may carry (a
			// hostile MGET of one large key repeated would otherwise hold
			// thousands of copies).
			over = true
			return false
		}
		it := &items[j]
		it.value, it.exp, it.found, it.seq, it.err = value, exp, found, seq, err
		return true
	})
	if over {
		werr := s.tooLarge(len(req.Keys))
		for i := range reply.Results {
			reply.Results[i] = wire.ReadResult{Err: werr}
		}
		return
	}
	// The keys are read together, so each is timed as its share of the
	// whole read: one clock read for the batch, not one per key.
	var took time.Duration
	if len(items) > 0 {
		took = time.Since(start) / time.Duration(len(items))
	}
	mc := s.requestMetrics(kind, req.Table)
	for _, it := range items {
		res := s.readResult(ctx, req, it.r, it.value, it.exp, it.found, it.seq, it.err)
		reply.Results[it.i] = res
		mc.observe(s, kind, req.Table, took, res.Err)
	}
}

func (s *Server) read1(ctx context.Context, req *wire.ReadRequest, k wire.KeyRef) wire.ReadResult {
	r, werr := s.readTarget(ctx, req, k)
	if werr != nil {
		return wire.ReadResult{Err: werr}
	}
	v, exp, found, seq, err := r.part.GetSeq(k.Key)
	return s.readResult(ctx, req, r, v, exp, found, seq, err)
}

// readTarget checks key k of req and returns the replica to read it from.
func (s *Server) readTarget(ctx context.Context, req *wire.ReadRequest, k wire.KeyRef) (*replica, *wire.Error) {
	if err := s.cfg.Limits.CheckKey(k.Key); err != nil {
		return nil, err
	}
	r, n, werr := s.serving(ctx, req.Table, k.Partition, req.Epoch, false, req.AllowSlave)
	if werr != nil {
		return nil, werr
	}
	if placement.PartitionOf(k.Key, n) != k.Partition {
		return nil, s.errorf(wire.CodeInvalid, "key %q does not belong to partition %d", k.Key, k.Partition)
	}
	switch req.Op {
	case wire.ReadGet, wire.ReadExists, wire.ReadTTL:
	default:
		return nil, s.errorf(wire.CodeInvalid, "unknown read operation %d", req.Op)
	}
	return r, nil
}

// readResult answers one key of req from what r's GetSeq (or GetMany)
// returned, once the data up to seq is replicated where it must be.
func (s *Server) readResult(ctx context.Context, req *wire.ReadRequest, r *replica, v []byte, exp int64, found bool, seq uint64, err error) wire.ReadResult {
	if err != nil {
		return wire.ReadResult{Err: s.partErr(ctx, err)}
	}
	if werr := s.readReplicated(ctx, r, seq, req.AllowSlave); werr != nil {
		return wire.ReadResult{Err: werr}
	}
	switch req.Op {
	case wire.ReadGet:
		return wire.ReadResult{Found: found, Value: v}
	case wire.ReadExists:
		return wire.ReadResult{Found: found}
	}
	ttl := int64(-1)
	if found && exp != 0 {
		ttl = max(exp-r.part.Now(), 0)
	}
	return wire.ReadResult{Found: found, TTL: ttl}
}

func (s *Server) handleList(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.ListRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	return s.list(ctx, req)
}

// list answers one page of a hashtag's keys.
func (s *Server) list(ctx context.Context, req *wire.ListRequest) (*wire.ListReply, error) {
	if len(req.Tag) == 0 {
		return nil, s.errorf(wire.CodeInvalid, "empty hashtag")
	}
	if req.Limit <= 0 || req.Limit > s.cfg.Limits.MaxMultiKeys {
		return nil, s.errorf(wire.CodeInvalid, "list limit %d outside 1..%d (MaxMultiKeys)", req.Limit, s.cfg.Limits.MaxMultiKeys)
	}
	start := time.Now()
	r, _, werr := s.serving(ctx, req.Table, req.Partition, req.Epoch, false, false)
	if werr != nil {
		s.observe("list", req.Table, start, werr)
		return nil, werr
	}
	keys, vals, more, seq, err := r.part.ListSeq(req.Tag, req.After, req.Limit, req.Values)
	if err != nil {
		werr := s.partErr(ctx, err)
		s.observe("list", req.Table, start, werr)
		return nil, werr
	}
	if werr := s.readReplicated(ctx, r, seq, false); werr != nil {
		s.observe("list", req.Table, start, werr)
		return nil, werr
	}
	s.observe("list", req.Table, start, nil)
	reply := &wire.ListReply{Keys: keys, Values: vals, More: more}
	if s.fenced(req.Table) {
		left := s.leaseLeft()
		if left <= 0 {
			return nil, s.errorf(wire.CodeWait, "master lease of %s lapsed during the list", s.cfg.NodeID)
		}
		reply.LeaseMs = leaseMs(left)
	}
	return reply, nil
}

// handleNotify pulls the map at once when the meta group announces a newer
// epoch.
func (s *Server) handleNotify(_ context.Context, body []byte) (any, error) {
	// A pushed map holds more elements than any data request: bound
	// them by the body's size instead (each takes at least one byte).
	req, err := wire.Decode[wire.NotifyRequest](body, max(s.cfg.Limits.MaxRequestElements(), len(body)))
	if err != nil {
		return nil, err
	}
	if req.Leader != "" {
		s.cfg.Meta.LeaderHint(req.Leader, req.Term)
	}
	if req.Epoch > s.Epoch() {
		if m := req.Map; m != nil && m.Epoch == req.Epoch {
			s.offerMap(m)
		}
		s.requestPull(req.Epoch)
	}
	return &wire.EpochReply{Epoch: s.Epoch()}, nil
}

func (s *Server) handleNodeStatus(context.Context, []byte) (any, error) {
	st := s.Status()
	return &st, nil
}

// handleWaitReplicas answers Redis WAIT: per partition, once Replicas of
// its slaves have acknowledged the seq asked for, or the timeout passes
// (no timeout: until the request's deadline), it reports how many had.
func (s *Server) handleWaitReplicas(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.WaitReplicasRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if req.TimeoutMs > 0 {
		wctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
	}
	defer cancel()
	reply := &wire.WaitReplicasReply{Acked: make([]int, len(req.Seqs))}
	for i, ws := range req.Seqs {
		r, _, werr := s.serving(ctx, req.Table, ws.Partition, req.Epoch, false, false)
		if werr != nil {
			return nil, werr
		}
		reply.Acked[i] = r.waitAcked(wctx, ws.Seq, req.Replicas)
	}
	return reply, nil
}
