package partition

import (
	"fmt"
	"slices"
	"sort"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// GenStart records that generation Gen's first record is Seq. It is the
// wire type, so histories travel between replicas unchanged.
type GenStart = wire.GenStart

// ReplicaID names one partition replica in a store.
type ReplicaID struct {
	Table     uint32
	Partition uint32
}

// String returns "table/partition".
func (id ReplicaID) String() string { return fmt.Sprintf("%d/%d", id.Table, id.Partition) }

// State is a replica's persisted state (docs/storage.md, key s T P). It
// commits in the same Badger transaction as every change of the replica's
// data and log.
type State struct {
	// Gen is the generation of the last record; Seq is the last record's
	// seq (0 when the replica has never held one).
	Gen uint64 `msgpack:"g"`
	Seq uint64 `msgpack:"q"`
	// FirstSeq is the oldest retained record; Seq+1 when none is retained.
	FirstSeq uint64 `msgpack:"f"`
	// History lists, in increasing order, the first seq of every generation
	// whose records this replica holds or held.
	History []GenStart `msgpack:"h,omitempty"`
	// DataInc and LogInc are the current data and log incarnations.
	DataInc uint32 `msgpack:"di"`
	LogInc  uint32 `msgpack:"li"`
	// Incomplete marks a replica whose full sync has begun and not finished:
	// it holds no usable data and is never served nor promoted.
	Incomplete bool `msgpack:"i,omitempty"`
}

// GenAt returns the generation of record seq. ok is false when seq is
// beyond Seq or before the first recorded generation. Seq 0, the empty
// prefix of every log, has generation 0.
func (st State) GenAt(seq uint64) (gen uint64, ok bool) {
	if seq == 0 {
		return 0, true
	}
	if seq > st.Seq {
		return 0, false
	}
	// The last entry whose first seq is ≤ seq.
	i := sort.Search(len(st.History), func(i int) bool { return st.History[i].Seq > seq })
	if i == 0 {
		return 0, false
	}
	return st.History[i-1].Gen, true
}

// clone returns a copy that shares nothing with st.
func (st State) clone() State {
	st.History = slices.Clone(st.History)
	return st
}

func (st State) marshal() ([]byte, error) {
	b, err := msgpack.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("partition: encode state: %w", err)
	}
	return b, nil
}

func unmarshalState(b []byte) (State, error) {
	var st State
	if err := msgpack.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("partition: decode state: %w", err)
	}
	return st, nil
}

// nextInc returns the number of a new incarnation.
func (st State) nextInc() uint32 { return max(st.DataInc, st.LogInc) + 1 }
