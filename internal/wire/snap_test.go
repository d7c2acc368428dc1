package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestPackedSnapEntries(t *testing.T) {
	in := []SnapEntry{
		{Key: []byte("a"), Value: []byte("one")},
		{Key: []byte("b"), Value: nil, ExpireAt: 1 << 50},
		{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte("v"), 70000), ExpireAt: 5},
	}
	b := PackSnapEntries(in)
	out, err := UnpackSnapEntries(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d entries, want %d", len(out), len(in))
	}
	for i := range in {
		if !bytes.Equal(out[i].Key, in[i].Key) || !bytes.Equal(out[i].Value, in[i].Value) || out[i].ExpireAt != in[i].ExpireAt {
			t.Fatalf("entry %d: %+v", i, out[i])
		}
		if cap(out[i].Key) != len(out[i].Key) || cap(out[i].Value) != len(out[i].Value) {
			t.Fatalf("entry %d not capped at its length", i)
		}
	}
	if out, err := UnpackSnapEntries(nil); err != nil || len(out) != 0 {
		t.Fatalf("empty: %v %v", out, err)
	}
	// Every truncation, and lengths or expiries out of range, are refused.
	for n := range len(b) {
		if _, err := UnpackSnapEntries(b[:n]); n > 0 && !errors.Is(err, errPacked) {
			switch n {
			case len(PackSnapEntries(in[:1])), len(PackSnapEntries(in[:2])):
				continue // whole entries
			}
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(b), err)
		}
	}
	for _, bad := range [][]byte{
		{5, 'a'},            // key past the end
		{1, 'a', 0, 9, 'v'}, // value past the end
		{1, 'a', 0x80},      // unterminated expiry
		{1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, // expiry past int64
	} {
		if _, err := UnpackSnapEntries(bad); !errors.Is(err, errPacked) {
			t.Fatalf("UnpackSnapEntries(%x) = %v", bad, err)
		}
	}
}
