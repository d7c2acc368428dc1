package meta

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/planner"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// autoRebalance spreads masters evenly again; when some switchovers fail
// (a returning node still catching up) it tries again later, a bounded
// number of times. It runs until it is done, for at most two minutes, or
// until ctx ends.
func (s *Server) autoRebalance(ctx context.Context) {
	defer s.auto.finish()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	m := s.Map()
	if slices.ContainsFunc(m.Migrations, func(mg placement.Migration) bool { return !mg.State.Finished() }) {
		// A move under way changes its partition's master itself, and a
		// switchover under it would turn a master move into a slave
		// move: look again once the moves are done.
		s.auto.postpone(time.Now().Add(s.cfg.DownTimeout))
		return
	}
	plan, err := planner.RebalanceMasters(plannerNodes(m), m.Tables)
	if err != nil || plan.Summary.MasterChanges == 0 {
		return
	}
	s.log.Info("meta: rebalancing masters", "switchovers", plan.Summary.MasterChanges)
	if _, _, err := s.rebalanceMasters(ctx, ""); err != nil {
		s.log.Info("meta: master rebalance incomplete, will retry", "err", err)
		s.auto.retry(time.Now().Add(s.cfg.DownTimeout))
	}
}

// handleRebalance balances replicas by migrations (queued as one batch:
// the reply names it, and masters are balanced again once it completes),
// or, with MastersOnly or when no replica needs to move, masters by
// planned switchovers, which it waits for.
func (s *Server) handleRebalance(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.RebalanceRequest](body)
	if err != nil {
		return nil, err
	}
	if err := s.notLeader("rebalances"); err != nil {
		return nil, err
	}
	reply := &wire.RebalanceReply{}
	if !req.MastersOnly {
		batch, n, err := s.rebalance(ctx, req.Table, req.RateBytes, nil)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			s.log.Info("meta: rebalancing replicas", "migrations", n, "batch", batch, "table", req.Table)
			reply.Batch, reply.Migrations, reply.Epoch = batch, n, s.Map().Epoch
			return reply, nil
		}
	}
	epoch, moved, err := s.rebalanceMasters(ctx, req.Table)
	if err != nil {
		return nil, err
	}
	reply.Epoch, reply.Switchovers = epoch, moved
	return reply, nil
}

// rebalanceMasters plans master-only moves and runs them as switchovers,
// a few at a time. It returns the epoch after the last one and how many
// switchovers committed.
func (s *Server) rebalanceMasters(ctx context.Context, table string) (placement.Epoch, int, error) {
	m, err := s.read(ctx)
	if err != nil {
		return 0, 0, err
	}
	tables := m.Tables
	if table != "" {
		t := m.Table(table)
		if t == nil {
			return 0, 0, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", table), Epoch: m.Epoch}
		}
		tables = []placement.Table{*t}
	}
	plan, err := planner.RebalanceMasters(plannerNodes(m), tables)
	if err != nil {
		return 0, 0, wire.Errorf(wire.CodeInvalid, "plan: %v", err)
	}
	var errs []error
	moved := 0
	for _, step := range plan.Steps(4) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, mv := range step {
			if mv.Kind != planner.ChangeMaster {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.switchover(ctx, mv.Table, mv.Partition, mv.To)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("table %d partition %d → %s: %w", mv.Table, mv.Partition, mv.To, err))
					return
				}
				moved++
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return s.Map().Epoch, moved, wire.Errorf(wire.CodeWait, "%d of the planned switchovers failed, first: %v", len(errs), errs[0])
	}
	return s.Map().Epoch, moved, nil
}

// autoSchedule decides when the leader next rebalances masters on its own.
type autoSchedule struct {
	mu       sync.Mutex
	after    time.Time
	running  bool
	attempts int
}

// maxAutoAttempts bounds the retries after one trigger.
const maxAutoAttempts = 10

// schedule asks for a rebalance at t (a fresh trigger resets the retries).
func (a *autoSchedule) schedule(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.after = t
	a.attempts = 0
}

// retry asks for another attempt at t, unless the retries are used up.
func (a *autoSchedule) retry(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.attempts < maxAutoAttempts && a.after.IsZero() {
		a.after = t
	}
}

// postpone asks for the rebalance that is starting to run at t instead,
// without counting it as an attempt.
func (a *autoSchedule) postpone(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.after.IsZero() {
		a.after = t
	}
	a.attempts = max(a.attempts-1, 0)
}

// due reports whether a rebalance should start now, and marks it running.
func (a *autoSchedule) due(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running || a.after.IsZero() || now.Before(a.after) {
		return false
	}
	a.after = time.Time{}
	a.running = true
	a.attempts++
	return true
}

func (a *autoSchedule) finish() {
	a.mu.Lock()
	a.running = false
	a.mu.Unlock()
}

// plannerNodes returns m's nodes as the planner sees them: a node being
// drained counts as NodeDraining while it is up.
func plannerNodes(m *placement.Map) []placement.Node {
	out := slices.Clone(m.Nodes)
	for i := range out {
		out[i].State = out[i].PlacementState()
	}
	return out
}
