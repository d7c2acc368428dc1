package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{},
		{Seq: 1, Gen: 1, TimeMs: 1_700_000_000_000},
		{Seq: math.MaxUint64, Gen: math.MaxUint64, TimeMs: math.MinInt64},
		{Seq: 42, Gen: 3, TimeMs: -5, Effects: []Effect{
			{Kind: EffectSet, Key: []byte("k"), Value: []byte("v"), ExpireAt: 1_700_000_060_000},
			{Kind: EffectSet, Key: []byte("{tag}x"), Value: []byte{}, ExpireAt: 0},
			{Kind: EffectDelete, Key: []byte("gone")},
			{Kind: EffectClear},
			{Kind: EffectSet, Key: bytes.Repeat([]byte{0xff}, 300), Value: bytes.Repeat([]byte("ab"), 5000), ExpireAt: math.MaxInt64},
		}},
	}
}

// canon returns r as Decode returns it: nil slices where the encoding has
// no bytes for them.
func canon(r Record) Record {
	out := r
	out.Effects = nil
	for _, e := range r.Effects {
		c := Effect{Kind: e.Kind}
		switch e.Kind {
		case EffectSet:
			c.Key, c.Value, c.ExpireAt = append([]byte{}, e.Key...), append([]byte{}, e.Value...), e.ExpireAt
		case EffectDelete:
			c.Key = append([]byte{}, e.Key...)
		}
		out.Effects = append(out.Effects, c)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for i, r := range sampleRecords() {
		buf := r.AppendEncode([]byte("prefix"))
		if !bytes.HasPrefix(buf, []byte("prefix")) {
			t.Fatalf("%d: AppendEncode lost dst", i)
		}
		enc := buf[len("prefix"):]
		if got, want := len(enc), r.EncodedSize(); got != want {
			t.Errorf("%d: encoded %d bytes, EncodedSize says %d", i, got, want)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%d: Decode: %v", i, err)
		}
		if want := canon(r); !reflect.DeepEqual(got, want) {
			t.Errorf("%d: round trip:\n got %+v\nwant %+v", i, got, want)
		}
		if again := got.AppendEncode(nil); !bytes.Equal(again, enc) {
			t.Errorf("%d: re-encoding differs", i)
		}
		seq, gen, ts, err := Peek(enc)
		if err != nil || seq != r.Seq || gen != r.Gen || ts != r.TimeMs {
			t.Errorf("%d: Peek = %d %d %d %v, want %d %d %d", i, seq, gen, ts, err, r.Seq, r.Gen, r.TimeMs)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	r := sampleRecords()[3]
	enc := r.AppendEncode(nil)
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0
	}
	if string(got.Effects[0].Key) != "k" || string(got.Effects[0].Value) != "v" {
		t.Fatalf("decoded slices alias the input: %q %q", got.Effects[0].Key, got.Effects[0].Value)
	}
	// Appending to a key must not overwrite the value that follows it.
	_ = append(got.Effects[0].Key, 'X')
	if string(got.Effects[0].Value) != "v" {
		t.Fatalf("key capacity not clipped")
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sampleRecords()[3].AppendEncode(nil)
	reseal := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[1:], crc32.Checksum(b[headerSize:], castagnoli))
		return b
	}
	// body builds a record body by hand and seals it.
	body := func(parts ...[]byte) []byte {
		b := []byte{Version, 0, 0, 0, 0}
		for _, p := range parts {
			b = append(b, p...)
		}
		return reseal(b)
	}
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	cases := map[string][]byte{
		"empty":          nil,
		"short":          good[:3],
		"version":        append([]byte{9}, good[1:]...),
		"checksum":       append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1),
		"truncated":      reseal(append([]byte{}, good[:len(good)-3]...)),
		"trailing":       reseal(append(append([]byte{}, good...), 0)),
		"huge count":     body(uv(1), uv(1), uv(0), uv(math.MaxUint64)),
		"count too big":  body(uv(1), uv(1), uv(0), uv(3), []byte{byte(EffectClear)}),
		"unknown kind":   body(uv(1), uv(1), uv(0), uv(1), []byte{9}),
		"zero kind":      body(uv(1), uv(1), uv(0), uv(1), []byte{0}),
		"huge key len":   body(uv(1), uv(1), uv(0), uv(1), []byte{byte(EffectDelete)}, uv(1<<62)),
		"empty key":      body(uv(1), uv(1), uv(0), uv(1), []byte{byte(EffectDelete)}, uv(0)),
		"expiry range":   body(uv(1), uv(1), uv(0), uv(1), []byte{byte(EffectSet)}, uv(1), []byte("k"), uv(0), uv(math.MaxUint64)),
		"overlong seq":   body([]byte{0x81, 0x00}, uv(1), uv(0), uv(0)),
		"varint too big": body(bytes.Repeat([]byte{0xff}, 11)),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode error = %v, want ErrCorrupt", name, err)
		}
	}
	for _, name := range []string{"empty", "short", "version", "overlong seq", "varint too big"} {
		if _, _, _, err := Peek(cases[name]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Peek error = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestEveryTruncationAndBitFlipFails(t *testing.T) {
	good := sampleRecords()[3].AppendEncode(nil)
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n]); err == nil {
			t.Fatalf("truncation to %d bytes decoded", n)
		}
	}
	for i := 0; i < len(good); i++ {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte{}, good...)
			b[i] ^= 1 << bit
			if _, err := Decode(b); err == nil {
				t.Fatalf("flip of byte %d bit %d decoded", i, bit)
			}
		}
	}
}

func TestKeys(t *testing.T) {
	p := LogPrefix(1, 2, 3)
	if want := []byte{'l', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}; !bytes.Equal(p, want) {
		t.Fatalf("LogPrefix = %x, want %x", p, want)
	}
	k1, k2 := LogKey(p, 255), LogKey(p, 256)
	if bytes.Compare(k1, k2) >= 0 || !bytes.HasPrefix(k1, p) {
		t.Fatalf("log keys do not sort by seq under the prefix")
	}
	if seq, ok := SeqOfKey(k2); !ok || seq != 256 {
		t.Fatalf("SeqOfKey = %d %v", seq, ok)
	}
	if _, ok := SeqOfKey(p); ok {
		t.Fatalf("SeqOfKey accepted a prefix")
	}
	if !bytes.Equal(p, LogPrefix(1, 2, 3)) {
		t.Fatalf("LogKey modified its prefix")
	}
}

func BenchmarkEncode(b *testing.B) {
	r := Record{Seq: 1, Gen: 1, TimeMs: 1_700_000_000_000, Effects: []Effect{
		{Kind: EffectSet, Key: []byte("user:{42}:name"), Value: bytes.Repeat([]byte("x"), 100)},
	}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendEncode(buf[:0])
	}
}

func BenchmarkDecode(b *testing.B) {
	r := Record{Seq: 1, Gen: 1, TimeMs: 1_700_000_000_000, Effects: []Effect{
		{Kind: EffectSet, Key: []byte("user:{42}:name"), Value: bytes.Repeat([]byte("x"), 100)},
	}}
	buf := r.AppendEncode(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
