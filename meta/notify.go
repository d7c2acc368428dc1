package meta

import (
	"context"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Data nodes learn of a new map from their next heartbeat reply, up to a
// heartbeat interval late. After every change this member commits, the
// notifier tells every node the new epoch at once, so a failover or a
// switchover reaches the new master's slaves within milliseconds: the
// window in which a new master's writes exist nowhere else shrinks from a
// heartbeat interval to a round trip. Heartbeats remain the fallback when
// a notification is lost.

// kickNotify asks the notifier to announce the current map.
func (s *Server) kickNotify() {
	select {
	case s.notifyCh <- struct{}{}:
	default:
	}
}

// notifier announces new epochs to the data nodes until the member stops;
// its calls run under ctx, cancelled by Close. Each announcement calls the
// nodes in parallel and waits for every call (each bounded by a timeout)
// before the next.
func (s *Server) notifier(ctx context.Context) {
	var sent placement.Epoch
	var sentTerm uint64
	for {
		select {
		case <-s.stop:
			return
		case <-s.notifyCh:
		}
		m := s.Map()
		id, term := s.Leader()
		leader := id == s.cfg.ReplicaID
		leading := leader && term > sentTerm
		if m.Epoch <= sent && !leading {
			continue
		}
		sent = m.Epoch
		req := &wire.NotifyRequest{Epoch: m.Epoch}
		if leader {
			req.Map = pushable(m)
		}
		if leading {
			// A new leader announces itself: nodes that still heartbeat
			// its predecessor (which may have stopped answering) move over
			// now, well inside DownTimeout.
			sentTerm = term
			req.Leader, req.Term = s.cfg.RPCAddr, term
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		var wg sync.WaitGroup
		for _, n := range m.Nodes {
			if n.State == placement.NodeDown || n.Addr == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.pool.Call(cctx, n.Addr, wire.KindNodeNotify, req, nil)
			}()
		}
		wg.Wait()
		cancel()
	}
}

// maxPushedMap bounds the encoded size of a map the notifier sends along
// with an announcement: a larger one is announced by epoch only and pulled.
const maxPushedMap = 256 << 10

// pushable returns m if it is small enough to send with an announcement.
func pushable(m *placement.Map) *placement.Map {
	b, err := wire.Marshal(m)
	if err != nil || len(b) > maxPushedMap {
		return nil
	}
	return m
}
