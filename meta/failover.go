package meta

import (
	"context"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// leaderDuties runs the failure detector while this member leads, releases
// partitions a previous leader left stuck in a handover, and schedules
// master rebalancing after nodes come back. It runs on the run loop, under
// its ctx.
func (s *Server) leaderDuties(ctx context.Context) {
	id, term := s.Leader()
	if id != s.cfg.ReplicaID {
		return
	}
	now := time.Now()
	s.det.enterTerm(term, now)
	if term != s.ledTerm {
		// First pass of this leadership term (the detector may already
		// have started it on an early heartbeat: the event carries that
		// start, which the grace period before failovers counts from).
		s.ledTerm = term
		s.events.add(Event{Time: s.det.termStart(), Kind: "leader", Epoch: s.Map().Epoch})
		s.log.Info("meta: leading the meta group", "term", term, "epoch", s.Map().Epoch)
		s.kickNotify()
		// A new leader looks at the master balance once it has heard
		// from everyone.
		s.auto.schedule(now.Add(2 * s.cfg.DownTimeout))
	}
	// Confirm leadership first: heartbeats are acknowledged only after a
	// linearizable read, so while reads fail, nodes look silent through
	// no fault of theirs.
	rctx, cancel := context.WithTimeout(ctx, max(s.cfg.HeartbeatInterval, 100*time.Millisecond))
	_, err := s.read(rctx)
	cancel()
	if err != nil {
		s.det.restartGrace(now)
		return
	}
	m := s.Map()
	states, parts, deaf := changes(m, s.det.view(), now, s.cfg.DownTimeout)
	if deaf {
		// Every node that is up in the map fell silent at once: far more
		// likely this leader lost them than they all died, and with none
		// heard nothing could be promoted anyway. Declare nothing; hear
		// from them again for a full DownTimeout first.
		if !s.deaf {
			s.log.Warn("meta: no data node heard for DownTimeout: declaring none down", "down_timeout", s.cfg.DownTimeout)
		}
		s.deaf = true
		s.det.restartGrace(now)
		return
	}
	s.deaf = false
	parts = append(parts, s.unstick(m, parts)...)
	if len(states) > 0 || len(parts) > 0 {
		// No node being declared down may renew its lease while the
		// proposal is in flight; if one has spoken up since the view was
		// taken, decide again on the next tick.
		var down []placement.NodeID
		for _, ns := range states {
			if ns.State == placement.NodeDown {
				down = append(down, ns.Node)
			}
		}
		if !s.det.condemn(down, time.Now(), s.cfg.DownTimeout) {
			return
		}
		s.applyChanges(ctx, now, m, states, parts)
		s.det.absolve(down)
	}
	s.driveMigrations(ctx, s.Map(), s.det.view(), now)
	if s.auto.due(now) && !s.group.Go(func() { s.autoRebalance(ctx) }) {
		s.auto.finish() // the member is stopping
	}
}

// applyChanges proposes node state changes and partition reassignments
// decided at time now against map m, and records what was committed. The
// events carry the decision time, which precedes the commit.
func (s *Server) applyChanges(ctx context.Context, now time.Time, m *placement.Map, states []nodeStateChange, parts []partitionChange) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout())
	defer cancel()
	code, res, err := s.propose(ctx, &command{Op: opUpdate, ExpectEpoch: m.Epoch, NodeStates: states, Partitions: parts})
	if err != nil {
		s.log.Warn("meta: failover proposal failed", "err", err)
		return
	}
	if code != resOK {
		s.log.Debug("meta: failover proposal not applied", "result", code, "err", res.Err)
		return
	}
	var evs []Event
	for _, ns := range states {
		kind := "down"
		if ns.State == placement.NodeUp {
			kind = "up"
			s.auto.schedule(now.Add(2 * s.cfg.DownTimeout))
		}
		evs = append(evs, Event{Time: now, Kind: kind, Node: ns.Node, Epoch: res.Epoch})
		if ns.State == placement.NodeDown {
			s.log.Warn("meta: node declared down", "target", ns.Node, "silent_for", s.cfg.DownTimeout, "epoch", res.Epoch)
		} else {
			s.log.Info("meta: node state changed", "target", ns.Node, "state", ns.State, "epoch", res.Epoch)
		}
	}
	for _, pc := range parts {
		old := m.TableByID(pc.Table).Partitions[pc.Partition]
		ev := Event{Time: now, Table: pc.Table, Partition: pc.Partition, Node: pc.New.Master, From: old.Master, Gen: pc.New.Gen, Epoch: res.Epoch}
		switch {
		case old.State == placement.PartitionStuck && pc.New.Master == old.Master:
			ev.Kind = "released"
			s.log.Info("meta: released a partition left held by an interrupted switchover", "table", s.tableName(pc.Table), "partition", pc.Partition)
		case pc.New.Master == "":
			ev.Kind = "unavailable"
			s.log.Warn("meta: partition unavailable: no eligible replica", "table", s.tableName(pc.Table), "partition", pc.Partition)
		case pc.New.Master == old.Master:
			// The master stays; a down slave left the partition's in-sync
			// set (sync tables) or its replica list changed.
			ev.Kind = "in-sync"
			if slices.Equal(pc.New.InSync, old.InSync) {
				ev.Kind = "replicas"
			}
			s.log.Info("meta: partition changed, master kept", "table", s.tableName(pc.Table), "partition", pc.Partition, "master", old.Master, "in_sync", pc.New.InSync)
		default:
			ev.Kind = "failover"
			s.log.Info("meta: failover", "table", s.tableName(pc.Table), "partition", pc.Partition, "from", old.Master, "master", pc.New.Master, "gen", pc.New.Gen)
		}
		evs = append(evs, ev)
	}
	s.events.add(evs...)
}

// unstick returns the partitions held for a handover that no switchover of
// this leader is running (a previous leader's, interrupted), made active
// again; partitions already in parts are left to those changes.
func (s *Server) unstick(m *placement.Map, parts []partitionChange) []partitionChange {
	var out []partitionChange
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.State != placement.PartitionStuck || s.sw.active(replicaKey{t.ID, p.ID}) {
				continue
			}
			if mg := m.Moving(t.ID, p.ID); mg != nil && mg.State == placement.MigrationHandover {
				continue // the migration driver releases it, with its migration
			}
			if slices.ContainsFunc(parts, func(pc partitionChange) bool { return pc.Table == t.ID && pc.Partition == p.ID }) {
				continue
			}
			np := p.Clone()
			np.State = placement.PartitionActive
			out = append(out, partitionChange{Table: t.ID, Partition: p.ID, New: np})
		}
	}
	return out
}
