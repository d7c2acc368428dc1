package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/binlog"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

var (
	errRefused = errors.New("node: master refused replication")
	errPurged  = errors.New("node: fell behind the master's retained binlog")
)

// follow replicates the replica from master until ctx ends: handshake,
// then stream (or full sync first), retrying with backoff on failure.
func (r *replica) follow(ctx context.Context, master placement.NodeID, gen uint64) {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := r.syncOnce(ctx, master, gen)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.s.log.Debug("node: replication interrupted", "table", r.s.tableName(r.key.table), "partition", r.key.part, "master", master, "err", err)
		}
		if time.Since(started) > 5*time.Second {
			backoff = 10 * time.Millisecond
		}
		if errors.Is(err, errPurged) {
			continue // go straight to the full sync
		}
		wait := backoff
		if errors.Is(err, errRefused) {
			// The master and this node disagree on the map; both are
			// pulling it, and the master holds a handshake a moment for
			// its own to arrive. Try again soon: while the slave is away
			// the master's new writes exist nowhere else.
			wait = min(backoff, 50*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (r *replica) masterAddr(master placement.NodeID) string {
	if info := r.info.Load(); info.master == master && info.masterAddr != "" {
		return info.masterAddr
	}
	if m := r.s.cur.Load(); m != nil {
		return m.NodeAddr(master)
	}
	return ""
}

func (r *replica) syncOnce(ctx context.Context, master placement.NodeID, gen uint64) error {
	r.state.Store(uint32(wire.ReplConnecting))
	if master == "" {
		return fmt.Errorf("partition has no master")
	}
	addr := r.masterAddr(master)
	if addr == "" {
		return fmt.Errorf("no address for master %s", master)
	}
	st := r.part.State()
	if st.Incomplete {
		// A full sync was cut short: the copy is unusable, load it again.
		return r.fullSync(ctx, addr, gen)
	}
	req := wire.HandshakeRequest{Table: r.key.table, Partition: r.key.part, Node: r.s.cfg.NodeID,
		Epoch: r.s.Epoch(), MapGen: gen, LastGen: st.Gen, LastSeq: st.Seq}
	var reply wire.HandshakeReply
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := r.s.pool.Call(cctx, addr, wire.KindReplHandshake, &req, &reply)
	cancel()
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", master, err)
	}
	switch reply.Action {
	case wire.ReplContinue:
		return r.stream(ctx, addr, gen)
	case wire.ReplFullSync:
		r.s.log.Info("node: full sync", "table", r.s.tableName(r.key.table), "partition", r.key.part, "master", master, "reason", reply.Reason)
		return r.fullSync(ctx, addr, gen)
	case wire.ReplRefuse:
		r.s.requestPull(0)
		return fmt.Errorf("%w: %s", errRefused, reply.Reason)
	}
	return fmt.Errorf("handshake with %s: unknown action %d", master, reply.Action)
}

// stream long-polls the master for records and applies them, each batch in
// one transaction; the next fetch acknowledges what was applied.
func (r *replica) stream(ctx context.Context, addr string, gen uint64) error {
	waitMs := r.s.cfg.FetchWait.Milliseconds()
	for {
		st := r.part.State()
		req := wire.FetchRequest{Table: r.key.table, Partition: r.key.part, Node: r.s.cfg.NodeID, MapGen: gen,
			From: st.Seq + 1, Acked: st.Seq, MaxBytes: r.s.cfg.FetchBytes, WaitMs: waitMs}
		var reply wire.FetchReply
		cctx, cancel := context.WithTimeout(ctx, r.s.cfg.FetchWait+5*time.Second)
		err := r.s.pool.Call(cctx, addr, wire.KindReplFetch, &req, &reply)
		cancel()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if reply.Purged {
			return errPurged
		}
		r.state.Store(uint32(wire.ReplStreaming))
		for _, rec := range reply.Records {
			// A master replicates records of its own generation or older;
			// anything newer reached it from a later master after it was
			// replaced, and must come from that master, with a handshake.
			if _, g, _, err := binlog.Peek(rec); err != nil {
				return fmt.Errorf("fetch: %w", err)
			} else if g > gen {
				return fmt.Errorf("%w: record of generation %d from the master of generation %d", errRefused, g, gen)
			}
		}
		if len(reply.Records) > 0 {
			if err := r.part.Apply(reply.Records); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
		applied := r.part.State().Seq
		if reply.Seq > applied {
			r.lagRecords.Store(reply.Seq - applied)
			if n := len(reply.Records); n > 0 {
				if _, _, ms, err := binlog.Peek(reply.Records[n-1]); err == nil {
					r.lagMs.Store(max(time.Now().UnixMilli()-ms, 0))
				}
			}
		} else {
			r.lagRecords.Store(0)
			r.lagMs.Store(0)
		}
	}
}

// fullSync replaces the replica's copy with a consistent snapshot of the
// master's. The old copy is discarded first; until the load completes the
// replica is marked incomplete and is neither served nor promoted.
func (r *replica) fullSync(ctx context.Context, addr string, gen uint64) error {
	r.state.Store(uint32(wire.ReplFullSyncing))
	call := func(ctx context.Context, kind wire.Kind, req, resp any) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return r.s.pool.Call(cctx, addr, kind, req, resp)
	}
	var begin wire.SnapBeginReply
	if err := call(ctx, wire.KindSnapBegin, &wire.SnapBeginRequest{Table: r.key.table, Partition: r.key.part,
		Node: r.s.cfg.NodeID, MapGen: gen}, &begin); err != nil {
		return fmt.Errorf("snapshot begin: %w", err)
	}
	defer func() {
		// The master's session is ended even when ctx was cancelled by a
		// role change, so that it frees the snapshot at once: the call
		// outlives ctx and ends only when the node closes (or after a
		// second).
		sctx, stop := r.s.group.Context(context.WithoutCancel(ctx))
		defer stop()
		cctx, cancel := context.WithTimeout(sctx, time.Second)
		defer cancel()
		_ = r.s.pool.Call(cctx, addr, wire.KindSnapEnd, &wire.SnapEndRequest{ID: begin.ID}, nil)
	}()
	if err := r.part.BeginLoad(); err != nil {
		return fmt.Errorf("begin load: %w", err)
	}
	r.loadedBytes.Store(0)
	pace := pacer{rate: r.info.Load().rateBytes, start: time.Now()}
	chunkBytes := r.s.cfg.SnapshotChunk
	if pace.rate > 0 {
		// Small enough chunks that the pace is kept within a second.
		chunkBytes = int(min(int64(chunkBytes), max(pace.rate/4, 16<<10)))
	}

	// One goroutine fetches the chunks, one request at a time and in
	// order, while this one loads them: the next chunk crosses the network
	// while the current one is written. The hand-over channel bounds what
	// is held to the chunk being loaded, one waiting and the one arriving.
	// The pace is kept on what is fetched. Closing chunks is the fetcher's
	// last act; fetchErr then says why it stopped before the last chunk.
	fctx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	chunks := make(chan []wire.SnapEntry, 1)
	var fetchErr error
	fetch := func() {
		defer close(chunks)
		for {
			var chunk wire.SnapChunkReply
			if err := call(fctx, wire.KindSnapChunk, &wire.SnapChunkRequest{ID: begin.ID, MaxBytes: chunkBytes, Packed: true}, &chunk); err != nil {
				fetchErr = fmt.Errorf("snapshot chunk: %w", err)
				return
			}
			if chunk.Packed != nil {
				// The entries alias the reply's one buffer.
				var err error
				if chunk.Entries, err = wire.UnpackSnapEntries(chunk.Packed); err != nil {
					fetchErr = fmt.Errorf("snapshot chunk: %w", err)
					return
				}
			}
			select {
			case chunks <- chunk.Entries:
			case <-fctx.Done():
				fetchErr = fctx.Err()
				return
			}
			if chunk.Done {
				return
			}
			if err := pace.wait(fctx, entriesSize(chunk.Entries)); err != nil {
				fetchErr = err
				return
			}
		}
	}
	if !r.s.group.Go(fetch) {
		return ErrClosed
	}
	loaded := 0
	var loadErr error
	for entries := range chunks {
		if loadErr != nil {
			continue // drain until the fetcher has stopped
		}
		if err := r.part.LoadChunk(entries); err != nil {
			loadErr = fmt.Errorf("load chunk: %w", err)
			stopFetch()
			continue
		}
		loaded += len(entries)
		r.loadedBytes.Add(entriesSize(entries))
	}
	if loadErr != nil {
		return loadErr
	}
	if fetchErr != nil {
		return fetchErr
	}
	if err := r.part.FinishLoad(begin.Gen, begin.Seq, begin.History); err != nil {
		return fmt.Errorf("finish load: %w", err)
	}
	r.fullSyncs.Add(1)
	r.s.log.Info("node: full sync done", "table", r.s.tableName(r.key.table), "partition", r.key.part, "keys", loaded, "gen", begin.Gen, "seq", begin.Seq)
	return nil
}

// entriesSize is the byte size of a snapshot chunk's entries.
func entriesSize(es []wire.SnapEntry) int64 {
	var n int64
	for _, e := range es {
		n += int64(len(e.Key) + len(e.Value))
	}
	return n
}

// pacer keeps a copy at or below rate bytes per second (no limit when
// rate is 0).
type pacer struct {
	rate  int64
	start time.Time
	done  int64
}

// wait accounts for n more bytes copied and sleeps until the copy is back
// within its rate, or ctx ends.
func (p *pacer) wait(ctx context.Context, n int64) error {
	p.done += n
	if p.rate <= 0 {
		return nil
	}
	due := p.start.Add(time.Duration(float64(p.done) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
