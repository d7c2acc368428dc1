package partition

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestStateMarshal checks the hand-written encoder against the reflective
// one it replaces, byte for byte, and that the result decodes back.
func TestStateMarshal(t *testing.T) {
	history := func(n int) []GenStart {
		h := make([]GenStart, n)
		for i := range h {
			h[i] = GenStart{Gen: uint64(i + 1), Seq: uint64(i)*1000 + 1}
		}
		return h
	}
	for _, st := range []State{
		{},
		{Gen: 1, Seq: 2, FirstSeq: 1, DataInc: 1, LogInc: 1},
		{Gen: math.MaxUint64, Seq: math.MaxUint64, FirstSeq: math.MaxUint64, DataInc: math.MaxUint32, LogInc: math.MaxUint32, Incomplete: true},
		{Gen: 3, Seq: 40, FirstSeq: 7, History: history(1), DataInc: 2, LogInc: 3},
		{Gen: 15, Seq: 40, History: history(15), Incomplete: true},
		{Gen: 16, Seq: 40, History: history(16)},
		{Gen: 70000, Seq: 1 << 40, History: history(70000), DataInc: 9, LogInc: 9},
	} {
		want, err := msgpack.Marshal(&st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("marshal of state with %d generations:\n got %x\nwant %x", len(st.History), got[:min(len(got), 80)], want[:min(len(want), 80)])
		}
		back, err := unmarshalState(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.History) == 0 {
			st.History = nil
		}
		if !reflect.DeepEqual(back, st) {
			t.Fatalf("decoded %+v, want %+v", back, st)
		}
	}
}
