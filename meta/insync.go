package meta

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Sync mode (DESIGN.md §6): each partition of a sync table has an in-sync
// set (Partition.InSync, its master included). The master acknowledges a
// write only once every other member has acknowledged it, and failover
// promotes only a member, so no acknowledged write is lost while fewer
// than the table's MinInSync replicas fail. Only the meta group changes
// the set:
//
//   - the master asks to remove slaves that stopped acknowledging within
//     the in-sync timeout (it waits for them meanwhile, acknowledging
//     nothing they might lack);
//   - the master asks to add a slave it has already been waiting for and
//     that holds everything the master had when it started waiting, so
//     the slave holds every write acknowledged before it joins;
//   - the failure detector removes slaves that are down, and failover
//     keeps only the members that are up.
//
// Every change bumps the epoch like any other.

// registerInSync installs the in-sync and table-alteration handlers.
func (s *Server) registerInSync(srv *rpc.Server) {
	srv.Handle(wire.KindMetaInSync, s.handleInSync)
	srv.Handle(wire.KindMetaAlterTable, s.handleAlterTable)
}

// handleInSync changes a partition's in-sync set at its master's request.
func (s *Server) handleInSync(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.InSyncRequest](body)
	if err != nil {
		return nil, err
	}
	if err := s.notLeader("in-sync changes"); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 20; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		t := m.TableByID(req.Table)
		if t == nil || int(req.Partition) >= len(t.Partitions) {
			return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("no table %d partition %d", req.Table, req.Partition), Epoch: m.Epoch}
		}
		p := t.Partitions[req.Partition]
		switch {
		case t.Mode != placement.ModeSync:
			return nil, wire.Errorf(wire.CodeInvalid, "table %s is not a sync table", t.Name)
		case p.Master != req.Node || p.Gen != req.Gen:
			return nil, wire.Errorf(wire.CodeRefused, "%s is not the master of table %s partition %d at generation %d (master %s, generation %d)",
				req.Node, t.Name, req.Partition, req.Gen, p.Master, p.Gen)
		}
		in := slices.Clone(p.InSync)
		for _, n := range req.Remove {
			if n != p.Master {
				in = slices.DeleteFunc(in, func(x placement.NodeID) bool { return x == n })
			}
		}
		for _, n := range req.Add {
			if !p.IsSlave(n) {
				return nil, wire.Errorf(wire.CodeInvalid, "%s is not a slave of table %s partition %d", n, t.Name, req.Partition)
			}
			if !slices.Contains(in, n) {
				in = append(in, n)
			}
		}
		if !slices.Contains(in, p.Master) {
			in = append([]placement.NodeID{p.Master}, in...)
		}
		if slices.Equal(in, p.InSync) {
			return &wire.EpochReply{Epoch: m.Epoch}, nil
		}
		np := p.Clone()
		np.InSync = in
		epoch, err := s.proposePartition(ctx, t.ID, req.Partition, &p, np, nil)
		if err == nil {
			s.events.add(Event{Time: time.Now(), Kind: "in-sync", Table: t.ID, Partition: req.Partition, Node: p.Master, Epoch: epoch})
			s.log.Info("meta: in-sync set changed", "table", t.Name, "partition", req.Partition, "in_sync", in, "added", req.Add, "removed", req.Remove, "epoch", epoch)
			return &wire.EpochReply{Epoch: epoch}, nil
		}
		if !isConflict(err) {
			return nil, err
		}
	}
	return nil, wire.Errorf(wire.CodeWait, "in-sync change: the map keeps changing, retry")
}

// handleAlterTable changes a table's mode, minimum in-sync set or fencing.
// Turning a table sync starts every in-sync set as its master alone (the
// masters add their slaves back as they catch up: writes wait, retryably,
// until MinInSync members are in); turning it async drops the sets.
func (s *Server) handleAlterTable(ctx context.Context, body []byte) (any, error) {
	req, err := decode[wire.AlterTableRequest](body)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 20; attempt++ {
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		cur := m.Table(req.Name)
		if cur == nil {
			return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: fmt.Sprintf("table %q does not exist", req.Name), Epoch: m.Epoch}
		}
		t := cur.Clone()
		if req.Mode != nil {
			switch *req.Mode {
			case placement.ModeAsync, placement.ModeSync:
			default:
				return nil, wire.Errorf(wire.CodeInvalid, "alter table: unknown mode %d", *req.Mode)
			}
			if *req.Mode != t.Mode {
				t.Mode = *req.Mode
				for i := range t.Partitions {
					p := &t.Partitions[i]
					p.InSync = nil
					if t.Mode == placement.ModeSync && p.Master != "" {
						p.InSync = []placement.NodeID{p.Master}
					}
				}
				if t.Mode == placement.ModeSync && t.MinInSync == 0 {
					t.MinInSync = defaultMinInSync(t.Replication)
				}
				if t.Mode == placement.ModeAsync {
					t.MinInSync = 0
				}
			}
		}
		if req.MinInSync != nil {
			if t.Mode != placement.ModeSync {
				return nil, wire.Errorf(wire.CodeInvalid, "alter table: min in-sync applies to sync tables only")
			}
			if *req.MinInSync < 1 || *req.MinInSync > t.Replication {
				return nil, wire.Errorf(wire.CodeInvalid, "alter table: min in-sync %d outside 1..%d (the replication factor)", *req.MinInSync, t.Replication)
			}
			t.MinInSync = *req.MinInSync
		}
		if req.Fenced != nil {
			t.Fenced = *req.Fenced
		}
		if t.Mode == placement.ModeSync {
			t.Fenced = true // sync tables are always fenced
		}
		code, res, err := s.propose(ctx, &command{Op: opAlterTable, ExpectEpoch: m.Epoch, Table: &t})
		if err != nil {
			return nil, err
		}
		switch code {
		case resOK:
			s.log.Info("meta: table altered", "table", t.Name, "mode", t.Mode, "min_in_sync", t.MinInSync, "fenced", t.Fenced, "epoch", res.Epoch)
			return &wire.TableReply{Epoch: res.Epoch, Table: t}, nil
		case resConflict:
			continue
		case resNotFound:
			return nil, &wire.Error{Code: wire.CodeTableNotFound, Msg: res.Err, Epoch: res.Epoch}
		}
		return nil, wire.Errorf(wire.CodeInvalid, "alter table: %s", res.Err)
	}
	return nil, wire.Errorf(wire.CodeWait, "alter table: the map keeps changing, retry")
}

// applyAlterTable replaces a table's mode, minimum in-sync set, fencing
// and in-sync sets (nothing else: its ID, name and assignment stay).
func applyAlterTable(m *placement.Map, nt *placement.Table) (uint64, *placement.Table, error) {
	if nt == nil {
		return resInvalid, nil, fmt.Errorf("alter table: no table")
	}
	t := m.TableByID(nt.ID)
	if t == nil || t.Name != nt.Name {
		return resNotFound, nil, fmt.Errorf("table %q does not exist", nt.Name)
	}
	if len(nt.Partitions) != len(t.Partitions) {
		return resInvalid, nil, fmt.Errorf("alter table %s: %d partitions, the table has %d", nt.Name, len(nt.Partitions), len(t.Partitions))
	}
	t.Mode, t.MinInSync, t.Fenced = nt.Mode, nt.MinInSync, nt.Fenced
	for i := range t.Partitions {
		t.Partitions[i].InSync = slices.Clone(nt.Partitions[i].InSync)
	}
	m.Epoch++
	return resOK, t, nil
}
