package node

import (
	"context"
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
	if err := s.cfg.Meta.Register(cctx, s.self()); err != nil {
		if ctx.Err() == nil {
			s.log.Debug("node: register failed", "err", err)
		}
		return
	}
	s.registered.Store(true)
	s.requestPull(0)
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
