package node

import (
	"context"
	"errors"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// heartbeatLoop registers the node, then heartbeats the meta leader every
// HeartbeatInterval, until ctx ends. Each acknowledged heartbeat extends
// the master lease from the moment it was sent.
func (s *Server) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		if !s.registered.Load() {
			s.register(ctx)
		} else {
			s.heartbeat(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.hbNow:
		}
	}
}

func (s *Server) self() placement.Node {
	return placement.Node{ID: s.cfg.NodeID, Addr: s.cfg.Addr, Labels: s.cfg.Labels, Weight: s.cfg.Weight, StoreID: s.storeID}
}

func (s *Server) register(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, max(5*s.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	req := &wire.RegisterRequest{Node: s.self(), LeaseMs: s.cfg.MasterLease.Milliseconds(), HeartbeatMs: s.cfg.HeartbeatInterval.Milliseconds()}
	epoch, err := s.cfg.Meta.Register(cctx, req)
	if err != nil {
		if ctx.Err() == nil {
			s.registerFailed(err)
		}
		return
	}
	s.regFailedSince, s.regWarned = time.Time{}, time.Time{}
	// A map older than the registration describes the node as it was
	// before it registered: with a new store, say, it would still name
	// this node master of partitions whose data the old store took along
	// (the registration fails them over). Such a map is never applied.
	s.regEpoch.Store(uint64(epoch))
	s.registered.Store(true)
	s.requestPull(epoch)
	s.checkReady()
	// Heartbeat right away: it starts the lease.
	s.heartbeat(ctx)
}

func (s *Server) heartbeat(ctx context.Context) {
	req := &wire.HeartbeatRequest{Node: s.cfg.NodeID, Addr: s.cfg.Addr, Epoch: s.Epoch(), Replicas: s.replicaStatuses()}
	cctx, cancel := context.WithTimeout(ctx, max(2*s.cfg.HeartbeatInterval, 200*time.Millisecond))
	defer cancel()
	sent := time.Since(s.start)
	reply, err := s.cfg.Meta.Heartbeat(cctx, req)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Debug("node: heartbeat failed", "err", err)
		}
		return
	}
	// The lease renews only while the node's map is the leader's: a node
	// that was replaced while cut off must apply the newer map (and learn
	// it is master no more) before it may take fenced writes again. The
	// heartbeat sent right after applying a map renews it.
	if reply.Epoch <= req.Epoch && s.fresh.Load() {
		s.leaseUntil.Store(int64(sent + s.cfg.MasterLease))
	}
	if reply.Epoch > req.Epoch || !s.fresh.Load() {
		s.requestPull(reply.Epoch)
	}
}

// leaseValid reports whether the master lease is current.
func (s *Server) leaseValid() bool { return s.leaseLeft() > 0 }

// leaseLeft returns how long the master lease still runs (≤ 0 once it
// has lapsed).
func (s *Server) leaseLeft() time.Duration {
	return time.Duration(s.leaseUntil.Load() - int64(time.Since(s.start)))
}

// registerWarnAfter is how long registration may fail for want of a meta
// leader (while the meta group elects one, say) before it is logged at
// WARN; registerWarnEvery bounds how often it is logged then.
const (
	registerWarnAfter = 5 * time.Second
	registerWarnEvery = 30 * time.Second
)

// registerFailed logs a failed registration: a refusal by the meta group
// (the node was removed, a limit, an identity the connection may not
// claim) at WARN at once, anything else once it has lasted
// registerWarnAfter; either at most once every registerWarnEvery. Only the
// heartbeat loop calls it.
func (s *Server) registerFailed(err error) {
	now := time.Now()
	if s.regFailedSince.IsZero() {
		s.regFailedSince = now
	}
	var we *wire.Error
	refused := errors.As(err, &we) && (we.Code == wire.CodeRefused || we.Code == wire.CodeInvalid ||
		we.Code == wire.CodeUnauthenticated || we.Code == wire.CodeNoPerm || we.Code == wire.CodeNotFound)
	if (!refused && now.Sub(s.regFailedSince) < registerWarnAfter) || now.Sub(s.regWarned) < registerWarnEvery {
		s.log.Debug("node: register failed", "err", err)
		return
	}
	s.regWarned = now
	if refused {
		s.log.Warn("node: the meta group refuses this node's registration; it serves nothing until it is accepted", "err", err)
		return
	}
	s.log.Warn("node: cannot register with the meta group", "failing_for", now.Sub(s.regFailedSince).Round(time.Second).String(), "err", err)
}
