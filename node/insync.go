package node

import (
	"context"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The master's side of sync mode (meta/insync.go has the rules): before it
// acknowledges a write — or answers a read — of a sync table, the master
// waits until every other member of the partition's in-sync set, and every
// slave it is bringing into the set, has acknowledged the partition's seq
// as of that write. A slave that does not acknowledge within the in-sync
// timeout is reported to the meta group for removal; the wait goes on
// until the map no longer lists it, so nothing is acknowledged that it
// might lack while it still counts. A slave that has caught up is brought
// back: the master starts waiting for it first, and asks the meta group to
// add it once it holds everything the master had at that moment.

// required returns the slaves whose acknowledgement the master waits for:
// the in-sync set's other members and the slaves joining it. The caller
// holds r.mu.
func (r *replica) requiredLocked(info *roleInfo) []placement.NodeID {
	self := r.s.cfg.NodeID
	var out []placement.NodeID
	for _, n := range info.inSync {
		if n != self {
			out = append(out, n)
		}
	}
	for n := range r.joining {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ackedLocked returns what slave n has acknowledged (0 when nothing). The
// caller holds r.mu.
func (r *replica) ackedLocked(n placement.NodeID) uint64 {
	if sp := r.progress[n]; sp != nil {
		return sp.acked
	}
	return 0
}

// wakeLocked wakes everything waiting for acknowledgements or a role
// change. The caller holds r.mu.
func (r *replica) wakeLocked() {
	close(r.ackCh)
	r.ackCh = make(chan struct{})
}

// waitReplicated waits, for a sync-mode partition, until seq is held by
// every replica the master must wait for (see above); it returns at once
// for an async one. It fails with CodeAmbiguous when the replica stops
// being the master, the in-sync set falls below the table's minimum, or
// ctx ends first: whatever seq covers may or may not survive.
func (r *replica) waitReplicated(ctx context.Context, seq uint64) *wire.Error {
	if !r.info.Load().sync {
		return nil // async: nothing to wait for, and no clock to read
	}
	since := time.Now()
	timeout := r.s.cfg.InSyncTimeout
	for {
		info := r.info.Load()
		if !info.sync {
			return nil
		}
		// Acknowledgements first: a write every member of the current
		// in-sync set has acknowledged is safe even if this replica has
		// just handed its master role over (a planned switchover makes
		// the new master wait for exactly that).
		r.mu.Lock()
		ch := r.ackCh
		var missing []placement.NodeID
		for _, n := range r.requiredLocked(info) {
			if r.ackedLocked(n) < seq {
				missing = append(missing, n)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 && len(info.inSync) >= info.minInSync {
			return nil
		}
		if info.role != wire.RoleMaster {
			return r.s.errorf(wire.CodeAmbiguous, "%s stopped mastering table %d partition %d before the write was replicated", r.s.cfg.NodeID, r.key.table, r.key.part)
		}
		if len(info.inSync) < info.minInSync {
			return r.s.errorf(wire.CodeAmbiguous, "table %d partition %d: the in-sync set fell to %d replicas, below its minimum of %d, before the write was replicated",
				r.key.table, r.key.part, len(info.inSync), info.minInSync)
		}
		if time.Since(since) >= timeout {
			r.dropLagging(info, missing, seq)
		}
		wait := timeout - time.Since(since)
		if wait <= 0 {
			wait = timeout / 4
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return r.s.errorf(wire.CodeAmbiguous, "table %d partition %d: %v before the write was replicated to %v", r.key.table, r.key.part, ctx.Err(), missing)
		}
		t.Stop()
	}
}

// dropLagging stops waiting for joining slaves among missing and asks the
// meta group to remove from the in-sync set those of its members that
// have not acknowledged seq for the in-sync timeout (one request at a
// time per partition).
func (r *replica) dropLagging(info *roleInfo, missing []placement.NodeID, seq uint64) {
	var remove []placement.NodeID
	r.mu.Lock()
	for _, n := range missing {
		if _, ok := r.joining[n]; ok {
			delete(r.joining, n)
			r.wakeLocked()
			continue
		}
		if slices.Contains(info.inSync, n) {
			remove = append(remove, n)
		}
	}
	if len(remove) == 0 || r.shrinking {
		r.mu.Unlock()
		return
	}
	r.shrinking = true
	r.mu.Unlock()
	req := &wire.InSyncRequest{Table: r.key.table, Partition: r.key.part, Node: r.s.cfg.NodeID, Gen: info.mapGen, Remove: remove}
	if !r.s.group.Go(func() {
		defer func() {
			r.mu.Lock()
			r.shrinking = false
			r.mu.Unlock()
		}()
		ctx, cancel := r.s.group.Context(context.Background())
		defer cancel()
		ctx, cancel2 := context.WithTimeout(ctx, max(5*r.s.cfg.HeartbeatInterval, time.Second))
		defer cancel2()
		epoch, err := r.s.cfg.Meta.InSync(ctx, req)
		if err != nil {
			r.s.log.Warn("node: could not shrink the in-sync set", "table", r.s.tableName(r.key.table), "partition", r.key.part, "remove", remove, "err", err)
			return
		}
		r.s.log.Info("node: slaves left the in-sync set", "table", r.s.tableName(r.key.table), "partition", r.key.part, "removed", remove, "seq", seq, "epoch", epoch)
		r.s.requestPull(epoch)
	}) {
		r.mu.Lock()
		r.shrinking = false
		r.mu.Unlock()
	}
}

// maybeJoin is called by the master whenever slave n acknowledges: a slave
// of a sync partition that is not in the in-sync set and has caught up is
// waited for from now on, and added to the set once it has everything the
// master had when the waiting began.
func (r *replica) maybeJoin(n placement.NodeID, acked uint64) {
	info := r.info.Load()
	if !info.sync || info.role != wire.RoleMaster || !slices.Contains(info.slaves, n) || slices.Contains(info.inSync, n) {
		return
	}
	r.mu.Lock()
	if _, ok := r.joining[n]; ok || acked < r.part.State().Seq {
		r.mu.Unlock()
		return
	}
	// Wait for n first, then read the seq it must reach: a write committed
	// after this point waits for n; one committed before has a seq of at
	// most target.
	r.joining[n] = time.Now()
	r.wakeLocked()
	r.mu.Unlock()
	target := r.part.State().Seq
	gen := info.mapGen
	if !r.s.group.Go(func() { r.join(n, target, gen) }) {
		r.mu.Lock()
		delete(r.joining, n)
		r.mu.Unlock()
	}
}

// join waits until slave n has acknowledged target, then asks the meta
// group to add it to the in-sync set. It gives up (n is no longer waited
// for) after the in-sync timeout, or when the role changes.
func (r *replica) join(n placement.NodeID, target, gen uint64) {
	giveUp := func() {
		r.mu.Lock()
		delete(r.joining, n)
		r.wakeLocked()
		r.mu.Unlock()
	}
	ctx, cancel := r.s.group.Context(context.Background())
	defer cancel()
	deadline := time.Now().Add(r.s.cfg.InSyncTimeout)
	for {
		r.mu.Lock()
		acked, ch, still := r.ackedLocked(n), r.ackCh, r.joining[n]
		r.mu.Unlock()
		if still.IsZero() {
			return
		}
		if info := r.info.Load(); info.role != wire.RoleMaster || info.mapGen != gen {
			giveUp()
			return
		}
		if acked >= target {
			break
		}
		d := time.Until(deadline)
		if d <= 0 {
			giveUp()
			return
		}
		t := time.NewTimer(d)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	cctx, cc := context.WithTimeout(ctx, max(5*r.s.cfg.HeartbeatInterval, time.Second))
	defer cc()
	epoch, err := r.s.cfg.Meta.InSync(cctx, &wire.InSyncRequest{Table: r.key.table, Partition: r.key.part, Node: r.s.cfg.NodeID, Gen: gen, Add: []placement.NodeID{n}})
	if err != nil {
		r.s.log.Debug("node: could not add a slave to the in-sync set", "table", r.s.tableName(r.key.table), "partition", r.key.part, "slave", n, "err", err)
		giveUp()
		return
	}
	r.s.log.Info("node: slave joined the in-sync set", "table", r.s.tableName(r.key.table), "partition", r.key.part, "slave", n, "seq", target, "epoch", epoch)
	r.s.requestPull(epoch)
	// n stays joining (waited for) until the map lists it in the set.
}

// replicasAcked returns how many of the partition's slaves have
// acknowledged seq.
func (r *replica) replicasAcked(seq uint64) int {
	info := r.info.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range info.slaves {
		if r.ackedLocked(s) >= seq {
			n++
		}
	}
	return n
}

// waitAcked waits until at least want slaves have acknowledged seq, until
// ctx ends or the role changes, and returns how many had.
func (r *replica) waitAcked(ctx context.Context, seq uint64, want int) int {
	for {
		r.mu.Lock()
		ch := r.ackCh
		r.mu.Unlock()
		got := r.replicasAcked(seq)
		if got >= want || r.info.Load().role != wire.RoleMaster {
			return got
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return r.replicasAcked(seq)
		}
	}
}
