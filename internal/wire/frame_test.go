package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/zeppelin-kv/zeppelin/placement"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf []byte
	buf = AppendFrame(buf, KindWrite, 7, []byte("abc"))
	buf, err := AppendMessage(buf, KindRead, 8, &ReadRequest{Table: 3, Keys: []KeyRef{{Partition: 1, Key: []byte("k")}}})
	if err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(bytes.NewReader(buf), 0)
	f, err := fr.Next()
	if err != nil || f.Kind != KindWrite || f.ID != 7 || string(f.Body) != "abc" {
		t.Fatalf("first frame: %+v %v", f, err)
	}
	f, err = fr.Next()
	if err != nil || f.Kind != KindRead || f.ID != 8 {
		t.Fatalf("second frame: %+v %v", f, err)
	}
	var rr ReadRequest
	if err := Unmarshal(f.Body, &rr); err != nil || rr.Table != 3 || string(rr.Keys[0].Key) != "k" {
		t.Fatalf("decode: %+v %v", rr, err)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v, want EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	big := AppendHeader(nil, KindWrite, 1, 1<<20)
	if _, err := NewFrameReader(bytes.NewReader(big), 1024).Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	short := []byte{0, 0, 0, 3, 1, 2, 3}
	if _, err := NewFrameReader(bytes.NewReader(short), 0).Next(); !errors.Is(err, ErrFrameTooShort) {
		t.Errorf("short: %v", err)
	}
	cut := AppendFrame(nil, KindWrite, 1, []byte("hello"))[:15]
	if _, err := NewFrameReader(bytes.NewReader(cut), 0).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
}

func TestUnmarshalRejectsTrailingAndWrongTypes(t *testing.T) {
	b, _ := Marshal(&PullRequest{Known: 5})
	var pr PullRequest
	if err := Unmarshal(append(b, 0xc0), &pr); err == nil {
		t.Error("trailing bytes accepted")
	}
	var m placement.Map
	if err := Unmarshal([]byte{0xa3, 'a', 'b', 'c'}, &m); err == nil {
		t.Error("a string decoded into a map")
	}
}

// FuzzFrame feeds arbitrary bytes to the frame reader and every message
// decoder: errors are fine, panics and runaway allocations are not.
func FuzzFrame(f *testing.F) {
	seed, _ := AppendMessage(nil, KindWrite, 1, &WriteRequest{Table: 1, Groups: []WriteGroup{{Ops: []Op{{Type: OpSet, Key: []byte("k"), Value: []byte("v")}}}}})
	f.Add(seed)
	seed2, _ := AppendMessage(nil, KindMetaPull, 2, &PullReply{Map: &placement.Map{Epoch: 3, Tables: []placement.Table{{Name: "t", Partitions: make([]placement.Partition, 2)}}}})
	f.Add(seed2)
	f.Add([]byte{0, 0, 0, 9, 2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data), 1<<20)
		for {
			fm, err := fr.Next()
			if err != nil {
				return
			}
			for _, v := range []any{&Hello{}, &WriteRequest{}, &ReadRequest{}, &WriteReply{}, &PullReply{},
				&HeartbeatRequest{}, &FetchReply{}, &SnapChunkReply{}, &StatusReply{}, &Error{}} {
				_ = Unmarshal(fm.Body, v)
			}
		}
	})
}

func TestHostileLengthAllocatesWhatArrives(t *testing.T) {
	claim := AppendHeader(nil, KindWrite, 1, 200<<20)
	data := append(claim, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewFrameReader(bytes.NewReader(data), 256<<20).Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("a 10-byte body claiming 200 MiB allocated %d bytes", grew)
	}
}

// Bodies of every size around the piece boundaries arrive whole, however
// the reader splits them.
func TestLargeBodies(t *testing.T) {
	for _, n := range []int{1<<20 - 1, 1 << 20, 1<<20 + 1, 2<<20 + 3, 5<<20 + 7} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7 / 3)
		}
		frame := AppendFrame(nil, KindWrite, 9, body)
		f, err := NewFrameReader(iotest.HalfReader(bytes.NewReader(frame)), 0).Next()
		if err != nil || !bytes.Equal(f.Body, body) {
			t.Fatalf("%d-byte body: %d bytes, %v", n, len(f.Body), err)
		}
		if _, err := NewFrameReader(bytes.NewReader(frame[:len(frame)-1]), 0).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d-byte body cut short: %v", n, err)
		}
	}
}
