package wire

import (
	"errors"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

func TestValidateAcceptsEverythingWeEncode(t *testing.T) {
	m := &placement.Map{Epoch: 9, Nodes: []placement.Node{{ID: "a", Addr: "x:1", Weight: 2}},
		Tables: []placement.Table{{ID: 1, Name: "t", Partitions: []placement.Partition{{Master: "a", Slaves: []placement.NodeID{"b", "c"}, Gen: 3}}}}}
	for _, v := range []any{
		&WriteRequest{Table: 1, Epoch: 1 << 40, Groups: []WriteGroup{{Partition: 3, Ops: []Op{{Type: OpSet, Key: []byte("k"), Value: make([]byte, 70000), TTL: -5, Delta: -1 << 62}}}}},
		&PullReply{Epoch: 9, Map: m},
		&Error{Code: CodeMoved, Msg: "x", Addr: "y", Epoch: 3},
		&HeartbeatRequest{Node: "n", Replicas: []ReplicaStatus{{Table: 1, Gen: 1 << 33, Slaves: []SlaveProgress{{Node: "s", LagMs: 1.5e9}}}}},
		&SnapChunkReply{Entries: []SnapEntry{{Key: []byte("k"), Value: nil, ExpireAt: 1 << 50}}, Done: true},
	} {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(b, 0); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

func TestValidateRejectsHostileLengths(t *testing.T) {
	cases := map[string][]byte{
		"array32 of 4G":      {0xdd, 0xff, 0xff, 0xff, 0xff},
		"map32 of 4G":        {0xdf, 0xff, 0xff, 0xff, 0xff},
		"bin32 of 4G":        {0xc6, 0xff, 0xff, 0xff, 0xff},
		"ext32 past the end": {0xc9, 0x00, 0x00, 0x00, 0x09, 0x01, 0x02},
		"fixarray short":     {0x93, 0x01},
		"reserved byte":      {0xc1},
		"trailing":           {0x01, 0x02},
		"empty":              {},
	}
	for name, b := range cases {
		if err := validate(b, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	deep := make([]byte, 0, 100)
	for range 40 {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0x01)
	if err := validate(deep, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
	many := append([]byte{0xdc, 0x00, 0x10}, make([]byte, 16)...)
	if err := validate(many, 8); !errors.Is(err, ErrMalformed) {
		t.Errorf("element budget: %v", err)
	}
	if err := validate(many, 16); err != nil {
		t.Errorf("within budget: %v", err)
	}
}
