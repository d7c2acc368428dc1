package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every failure wraps
// ErrCorrupt, and that every accepted input re-encodes to exactly the same
// bytes (the encoding is canonical). Run it with
//
//	go test ./binlog -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	for _, r := range sampleRecords() {
		enc := r.AppendEncode(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{Version, 0, 0, 0, 0})
	f.Add([]byte{Version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Most mutations break the checksum; also try the input with a
		// correct one so the fuzzer reaches the body parser.
		if len(b) >= headerSize {
			sealed := append([]byte{}, b...)
			binary.BigEndian.PutUint32(sealed[1:], crc32.Checksum(sealed[headerSize:], castagnoli))
			checkDecode(t, sealed)
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	in := append([]byte{}, b...)
	r, err := Decode(b)
	if !bytes.Equal(in, b) {
		t.Fatalf("Decode modified its input")
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	enc := r.AppendEncode(nil)
	if !bytes.Equal(enc, b) {
		t.Fatalf("re-encoding differs:\n in %x\nout %x", b, enc)
	}
	if r.EncodedSize() != len(b) {
		t.Fatalf("EncodedSize %d, encoding %d", r.EncodedSize(), len(b))
	}
	seq, gen, ts, err := Peek(b)
	if err != nil || seq != r.Seq || gen != r.Gen || ts != r.TimeMs {
		t.Fatalf("Peek disagrees with Decode: %d %d %d %v", seq, gen, ts, err)
	}
}
