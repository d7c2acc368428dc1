package node

import (
	"bytes"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// TestCloneWrite: the clone holds the request's keys and values in memory
// of its own (nil stays nil, empty stays empty), and no op's slices reach
// into another's.
func TestCloneWrite(t *testing.T) {
	key := func(s string) []byte { return []byte(s) }
	req := &wire.WriteRequest{Table: 3, Epoch: 7, Groups: []wire.WriteGroup{
		{Partition: 1, Ops: []wire.Op{{Type: wire.OpSet, Key: key("a"), Value: key("va")}, {Type: wire.OpDelete, Key: key("b")}}},
		{Partition: 2},
		{Partition: 4, Ops: []wire.Op{{Type: wire.OpSet, Key: key("c"), Value: []byte{}}, {Type: wire.OpIncr, Key: key("d"), Delta: 5}}},
	}}
	out := cloneWrite(req)
	if out.Table != 3 || out.Epoch != 7 || len(out.Groups) != 3 {
		t.Fatalf("clone %+v", out)
	}
	for i, g := range req.Groups {
		og := out.Groups[i]
		if og.Partition != g.Partition || len(og.Ops) != len(g.Ops) {
			t.Fatalf("group %d: %+v, want %+v", i, og, g)
		}
		for j, op := range g.Ops {
			o := og.Ops[j]
			if o.Type != op.Type || o.Delta != op.Delta || !bytes.Equal(o.Key, op.Key) || !bytes.Equal(o.Value, op.Value) ||
				(o.Value == nil) != (op.Value == nil) {
				t.Fatalf("group %d op %d: %+v, want %+v", i, j, o, op)
			}
		}
	}
	for _, g := range req.Groups {
		for _, op := range g.Ops {
			for k := range op.Key {
				op.Key[k] = 'X'
			}
			for k := range op.Value {
				op.Value[k] = 'X'
			}
		}
	}
	if a := out.Groups[0].Ops[0]; string(a.Key) != "a" || string(a.Value) != "va" {
		t.Fatalf("clone changed with the request: %q=%q", a.Key, a.Value)
	}
	// Appending to one op's value must not overwrite the next op's key.
	_ = append(out.Groups[0].Ops[0].Value, "more"...)
	if b := out.Groups[0].Ops[1]; string(b.Key) != "b" {
		t.Fatalf("append to an op's value reached the next op: key %q", b.Key)
	}
	_ = append(out.Groups[0].Ops, wire.Op{Key: key("z")})
	if c := out.Groups[2].Ops[0]; string(c.Key) != "c" {
		t.Fatalf("append to a group's ops reached the next group: key %q", c.Key)
	}
}
