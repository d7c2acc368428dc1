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
}

var _ sm.IStateMachine = (*stateMachine)(nil)

func newStateMachine(uint64, uint64) sm.IStateMachine {
	return &stateMachine{m: &placement.Map{NextTableID: 1}}
}

// queryMap asks Lookup for the current map.
type queryMap struct{}

// updateResult is the msgpack body of sm.Result.Data.
type updateResult struct {
	Err   string           `msgpack:"err,omitempty"`
	Table *placement.Table `msgpack:"table,omitempty"`
	Epoch placement.Epoch  `msgpack:"epoch"`
}

func (s *stateMachine) Update(e sm.Entry) (sm.Result, error) {
	var cmd command
	if err := wire.Unmarshal(e.Cmd, &cmd); err != nil {
		return s.result(resInvalid, nil, err), nil
	}
	next := s.m.Clone()
	code, table, err := apply(next, &cmd)
	if code == resOK {
		s.m = next
	}
	return s.result(code, table, err), nil
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
	}
	return nil, fmt.Errorf("meta: unknown query %T", q)
}

func (s *stateMachine) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	b, err := wire.Marshal(s.m)
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
	var m placement.Map
	if err := wire.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("meta: recover snapshot: %w", err)
	}
	s.m = &m
	return nil
}

func (s *stateMachine) Close() error { return nil }
