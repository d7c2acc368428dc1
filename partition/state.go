package partition

import (
	"encoding/binary"
	"fmt"
	"math"
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

// marshal encodes st as msgpack.Marshal does (a map of the fields by their
// tags, in declaration order, integers at their full width), without
// reflection: every commit writes the state.
func (st State) marshal() ([]byte, error) {
	b := make([]byte, 0, 64+23*len(st.History))
	fields := 5
	if len(st.History) > 0 {
		fields++
	}
	if st.Incomplete {
		fields++
	}
	b = append(b, 0x80|byte(fields)) // fixmap
	b = appendKey(b, "g")
	b = appendUint64(b, st.Gen)
	b = appendKey(b, "q")
	b = appendUint64(b, st.Seq)
	b = appendKey(b, "f")
	b = appendUint64(b, st.FirstSeq)
	if len(st.History) > 0 {
		b = appendKey(b, "h")
		switch h := len(st.History); {
		case h < 16:
			b = append(b, 0x90|byte(h)) // fixarray
		case h <= math.MaxUint16:
			b = append(b, 0xdc)
			b = binary.BigEndian.AppendUint16(b, uint16(h))
		case h <= math.MaxUint32:
			b = append(b, 0xdd)
			b = binary.BigEndian.AppendUint32(b, uint32(h))
		default:
			return nil, fmt.Errorf("partition: encode state: history of %d generations", h)
		}
		for _, g := range st.History {
			b = append(b, 0x82) // fixmap of 2
			b = appendKey(b, "g")
			b = appendUint64(b, g.Gen)
			b = appendKey(b, "s")
			b = appendUint64(b, g.Seq)
		}
	}
	b = appendKey(b, "di")
	b = append(b, 0xce) // uint32
	b = binary.BigEndian.AppendUint32(b, st.DataInc)
	b = appendKey(b, "li")
	b = append(b, 0xce)
	b = binary.BigEndian.AppendUint32(b, st.LogInc)
	if st.Incomplete {
		b = appendKey(b, "i")
		b = append(b, 0xc3) // true
	}
	return b, nil
}

// appendKey appends a short map key (a fixstr).
func appendKey(b []byte, k string) []byte {
	b = append(b, 0xa0|byte(len(k)))
	return append(b, k...)
}

// appendUint64 appends n as a msgpack uint64.
func appendUint64(b []byte, n uint64) []byte {
	b = append(b, 0xcf)
	return binary.BigEndian.AppendUint64(b, n)
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
