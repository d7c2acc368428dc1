package meta

import (
	"fmt"
	"io"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// stateMachine is the replicated map. dragonboat runs Update and
// RecoverFromSnapshot under its write lock and Lookup and SaveSnapshot
// under its read lock; the map pointer is replaced, never mutated, so a map
// handed out by Lookup stays valid and unchanged.
type stateMachine struct {
	m *placement.Map
	// recent remembers the results of the last proposals by ID, oldest
	// first in order, so a retried proposal is answered, not applied
	// again. It is part of the snapshot: every replica deduplicates alike.
	recent map[uint64]recentResult
	order  []uint64
	// applied is the index of the last entry Update applied (0 after a
	// restart until the next entry; see Server.AppliedIndex).
	applied uint64
}

// maxRecent bounds the remembered proposals.
const maxRecent = 4096

type recentResult struct {
	Code uint64 `msgpack:"c"`
	Data []byte `msgpack:"d"`
}

type recentEntry struct {
	ID uint64 `msgpack:"id"`
	recentResult
}

// snapshotBody is what a snapshot holds.
type snapshotBody struct {
	Map    *placement.Map `msgpack:"map"`
	Recent []recentEntry  `msgpack:"recent"`
}

var _ sm.IStateMachine = (*stateMachine)(nil)

func newStateMachine(uint64, uint64) sm.IStateMachine {
	return &stateMachine{m: &placement.Map{NextTableID: 1}, recent: make(map[uint64]recentResult)}
}

// queryMap asks Lookup for the current map.
type queryMap struct{}

// queryApplied asks Lookup for the index of the last applied entry.
type queryApplied struct{}

// updateResult is the msgpack body of sm.Result.Data.
type updateResult struct {
	Err   string           `msgpack:"err,omitempty"`
	Table *placement.Table `msgpack:"table,omitempty"`
	Epoch placement.Epoch  `msgpack:"epoch"`
}

func (s *stateMachine) Update(e sm.Entry) (sm.Result, error) {
	s.applied = e.Index
	var cmd command
	if err := wire.Unmarshal(e.Cmd, &cmd); err != nil {
		return s.result(resInvalid, nil, err), nil
	}
	if r, ok := s.recent[cmd.ID]; ok && cmd.ID != 0 {
		return sm.Result{Value: r.Code, Data: r.Data}, nil
	}
	next := s.m.Clone()
	code, table, err := apply(next, &cmd)
	if code == resOK {
		s.m = next
	}
	res := s.result(code, table, err)
	if cmd.ID != 0 {
		s.remember(cmd.ID, recentResult{Code: res.Value, Data: res.Data})
	}
	return res, nil
}

func (s *stateMachine) remember(id uint64, r recentResult) {
	s.recent[id] = r
	s.order = append(s.order, id)
	if len(s.order) > maxRecent {
		delete(s.recent, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *stateMachine) result(code uint64, table *placement.Table, err error) sm.Result {
	r := updateResult{Table: table, Epoch: s.m.Epoch}
	if err != nil {
		r.Err = err.Error()
	}
	data, encErr := wire.Marshal(&r)
	if encErr != nil {
		data = nil
	}
	return sm.Result{Value: code, Data: data}
}

func (s *stateMachine) Lookup(q any) (any, error) {
	switch q.(type) {
	case queryMap:
		return s.m, nil
	case queryApplied:
		return s.applied, nil
	}
	return nil, fmt.Errorf("meta: unknown query %T", q)
}

func (s *stateMachine) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	body := snapshotBody{Map: s.m, Recent: make([]recentEntry, 0, len(s.order))}
	for _, id := range s.order {
		body.Recent = append(body.Recent, recentEntry{ID: id, recentResult: s.recent[id]})
	}
	b, err := wire.Marshal(&body)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (s *stateMachine) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var body snapshotBody
	if err := wire.Unmarshal(b, &body); err != nil {
		return fmt.Errorf("meta: recover snapshot: %w", err)
	}
	if body.Map == nil {
		return fmt.Errorf("meta: recover snapshot: no map")
	}
	s.m = body.Map
	s.recent = make(map[uint64]recentResult, len(body.Recent))
	s.order = s.order[:0]
	for _, e := range body.Recent {
		s.remember(e.ID, e.recentResult)
	}
	return nil
}

func (s *stateMachine) Close() error { return nil }
