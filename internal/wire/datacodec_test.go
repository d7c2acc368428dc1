package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Mirrors of the data path's messages: the same fields and tags, no
// methods, so msgpack encodes and decodes them by reflection. The
// hand-written codecs must agree with them byte for byte.
type (
	errorM struct {
		Code  uint16 `msgpack:"c"`
		Msg   string `msgpack:"m,omitempty"`
		Addr  string `msgpack:"a,omitempty"`
		Epoch uint64 `msgpack:"e,omitempty"`
	}
	keyRefM struct {
		Partition uint32 `msgpack:"p"`
		Key       []byte `msgpack:"k"`
	}
	readRequestM struct {
		Table      uint32    `msgpack:"t"`
		Epoch      uint64    `msgpack:"e"`
		Op         uint8     `msgpack:"o"`
		Keys       []keyRefM `msgpack:"k"`
		AllowSlave bool      `msgpack:"as,omitempty"`
	}
	readResultM struct {
		Err   *errorM `msgpack:"err,omitempty"`
		Found bool    `msgpack:"f,omitempty"`
		Value []byte  `msgpack:"v,omitempty"`
		TTL   int64   `msgpack:"ttl,omitempty"`
	}
	readReplyM struct {
		Results []readResultM `msgpack:"r"`
		LeaseMs int64         `msgpack:"lm,omitempty"`
	}
	opM struct {
		Type      uint8  `msgpack:"y"`
		Key       []byte `msgpack:"k"`
		Value     []byte `msgpack:"v,omitempty"`
		TTL       int64  `msgpack:"ttl,omitempty"`
		Cond      uint8  `msgpack:"c,omitempty"`
		KeepTTL   bool   `msgpack:"kt,omitempty"`
		ReturnOld bool   `msgpack:"ro,omitempty"`
		Delta     int64  `msgpack:"d,omitempty"`
	}
	writeGroupM struct {
		Partition uint32 `msgpack:"p"`
		Ops       []opM  `msgpack:"o"`
	}
	writeRequestM struct {
		Table  uint32        `msgpack:"t"`
		Epoch  uint64        `msgpack:"e"`
		Groups []writeGroupM `msgpack:"g"`
	}
	opResultM struct {
		Done  bool   `msgpack:"d,omitempty"`
		Found bool   `msgpack:"f,omitempty"`
		Old   []byte `msgpack:"o,omitempty"`
		Int   int64  `msgpack:"i,omitempty"`
	}
	groupResultM struct {
		Err     *errorM     `msgpack:"err,omitempty"`
		Results []opResultM `msgpack:"r,omitempty"`
		Seq     uint64      `msgpack:"q,omitempty"`
	}
	writeReplyM struct {
		Groups  []groupResultM `msgpack:"g"`
		LeaseMs int64          `msgpack:"lm,omitempty"`
	}
	fetchRequestM struct {
		Table     uint32 `msgpack:"t"`
		Partition uint32 `msgpack:"p"`
		Node      string `msgpack:"n"`
		MapGen    uint64 `msgpack:"mg"`
		From      uint64 `msgpack:"f"`
		Acked     uint64 `msgpack:"a"`
		MaxBytes  int64  `msgpack:"mb"`
		WaitMs    int64  `msgpack:"w"`
	}
	fetchReplyM struct {
		Records [][]byte `msgpack:"r"`
		Seq     uint64   `msgpack:"q"`
		Purged  bool     `msgpack:"p,omitempty"`
		TimeMs  int64    `msgpack:"tm,omitempty"`
	}
)

// convert copies src into dst, field by field: the two have the same
// shape, with different named types.
func convert(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			convert(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		if src.Type().Elem().Kind() == reflect.Uint8 {
			dst.SetBytes(bytes.Clone(src.Bytes()))
			return
		}
		dst.Set(reflect.MakeSlice(dst.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			convert(dst.Index(i), src.Index(i))
		}
	case reflect.Pointer:
		if src.IsNil() {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		dst.Set(reflect.New(dst.Type().Elem()))
		convert(dst.Elem(), src.Elem())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		dst.SetUint(src.Uint())
	case reflect.Int, reflect.Int64:
		dst.SetInt(src.Int())
	case reflect.Bool:
		dst.SetBool(src.Bool())
	case reflect.String:
		dst.SetString(src.String())
	default:
		panic("convert: unexpected kind " + src.Kind().String())
	}
}

// gen makes random messages, edge cases included: nil and empty lists and
// byte strings, zero and extreme integers, present and absent errors.
type gen struct{ r *rand.Rand }

func (g gen) u64() uint64 {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	case 2:
		return uint64(g.r.IntN(128))
	case 3:
		return uint64(g.r.IntN(1 << 16))
	default:
		return g.r.Uint64() >> g.r.IntN(64)
	}
}

func (g gen) i64() int64 {
	switch g.r.IntN(5) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return math.MinInt64
	case 3:
		return int64(g.r.IntN(200)) - 100
	default:
		return int64(g.r.Uint64())
	}
}

func (g gen) bytes() []byte {
	switch g.r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return bytes.Repeat([]byte{'x'}, 300) // past a fixstr's and a bin8's length
	default:
		b := make([]byte, g.r.IntN(40))
		for i := range b {
			b[i] = byte(g.r.Uint32())
		}
		return b
	}
}

func (g gen) str() string { return string(g.bytes()) }

func (g gen) n() int {
	switch g.r.IntN(6) {
	case 0:
		return -1 // nil
	case 1:
		return 0
	case 2:
		return 20 // past a fixarray's length
	default:
		return 1 + g.r.IntN(4)
	}
}

func list[T any](g gen, elem func() T) []T {
	n := g.n()
	if n < 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = elem()
	}
	return out
}

func (g gen) err() *Error {
	if g.r.IntN(2) == 0 {
		return nil
	}
	return &Error{Code: Code(g.u64()), Msg: g.str(), Addr: g.str(), Epoch: epochOf(g.u64())}
}

func (g gen) messages() []any {
	keyRef := func() KeyRef { return KeyRef{Partition: partOf(g.u64()), Key: g.bytes()} }
	result := func() ReadResult {
		return ReadResult{Err: g.err(), Found: g.r.IntN(2) == 0, Value: g.bytes(), TTL: g.i64()}
	}
	op := func() Op {
		return Op{Type: OpType(g.u64()), Key: g.bytes(), Value: g.bytes(), TTL: g.i64(), Cond: Cond(g.u64()),
			KeepTTL: g.r.IntN(2) == 0, ReturnOld: g.r.IntN(2) == 0, Delta: g.i64()}
	}
	group := func() WriteGroup { return WriteGroup{Partition: partOf(g.u64()), Ops: list(g, op)} }
	opResult := func() OpResult {
		return OpResult{Done: g.r.IntN(2) == 0, Found: g.r.IntN(2) == 0, Old: g.bytes(), Int: g.i64()}
	}
	groupResult := func() GroupResult {
		return GroupResult{Err: g.err(), Results: list(g, opResult), Seq: g.u64()}
	}
	e := g.err()
	if e == nil {
		e = &Error{}
	}
	return []any{
		e,
		&ReadRequest{Table: tableOf(g.u64()), Epoch: epochOf(g.u64()), Op: ReadOp(g.u64()), Keys: list(g, keyRef), AllowSlave: g.r.IntN(2) == 0},
		&ReadReply{Results: list(g, result), LeaseMs: g.i64()},
		&WriteRequest{Table: tableOf(g.u64()), Epoch: epochOf(g.u64()), Groups: list(g, group)},
		&WriteReply{Groups: list(g, groupResult), LeaseMs: g.i64()},
		&FetchRequest{Table: tableOf(g.u64()), Partition: partOf(g.u64()), Node: placement.NodeID(g.str()), MapGen: g.u64(),
			From: g.u64(), Acked: g.u64(), MaxBytes: int(g.i64()), WaitMs: g.i64()},
		&FetchReply{Records: list(g, g.bytes), Seq: g.u64(), Purged: g.r.IntN(2) == 0, TimeMs: g.i64()},
	}
}

// mirrorOf returns a new zero mirror of the message type of v.
func mirrorOf(v any) any {
	switch v.(type) {
	case *Error:
		return new(errorM)
	case *ReadRequest:
		return new(readRequestM)
	case *ReadReply:
		return new(readReplyM)
	case *WriteRequest:
		return new(writeRequestM)
	case *WriteReply:
		return new(writeReplyM)
	case *FetchRequest:
		return new(fetchRequestM)
	case *FetchReply:
		return new(fetchReplyM)
	}
	panic("mirrorOf: unexpected type")
}

// checkAgainstMirror holds the codec of v to the reflective codec of its
// mirror: the same bytes, and the same message decoded from them.
func checkAgainstMirror(t *testing.T, v any) {
	t.Helper()
	m := mirrorOf(v)
	convert(reflect.ValueOf(m).Elem(), reflect.ValueOf(v).Elem())
	got, err := Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	want, err := Marshal(m)
	if err != nil {
		t.Fatalf("encode mirror of %T: %v", v, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%T %+v encodes as\n%x\nreflection encodes its mirror as\n%x", v, v, got, want)
	}
	checkDecode(t, v, want)
}

// checkDecode decodes b as v's type, by the codec and by reflection into
// the mirror, and fails unless both succeed with the same message or both
// fail.
func checkDecode(t *testing.T, v any, b []byte) {
	t.Helper()
	dec := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	decErr := Unmarshal(b, dec)
	m := mirrorOf(v)
	mErr := Unmarshal(b, m)
	if (decErr == nil) != (mErr == nil) {
		t.Fatalf("decode %x as %T: %v; by reflection: %v", b, v, decErr, mErr)
	}
	if decErr != nil {
		return
	}
	want := reflect.New(reflect.TypeOf(v).Elem())
	convert(want.Elem(), reflect.ValueOf(m).Elem())
	if !reflect.DeepEqual(dec, want.Interface()) {
		t.Fatalf("decode %x as %T: %+v; by reflection: %+v", b, v, dec, want.Interface())
	}
}

func tableOf(n uint64) placement.TableID    { return placement.TableID(n) }
func partOf(n uint64) placement.PartitionID { return placement.PartitionID(n) }
func epochOf(n uint64) placement.Epoch      { return placement.Epoch(n) }

func TestDataCodecMatchesReflection(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for range 3000 {
		for _, v := range g.messages() {
			checkAgainstMirror(t, v)
		}
	}
}

// TestDataCodecDecodesLikeReflection decodes encodings the codec never
// writes: fields out of order, unknown fields, nils for messages and
// lists, other integer widths.
func TestDataCodecDecodesLikeReflection(t *testing.T) {
	enc := func(v any) []byte {
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf) // integers at their full width
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cases := []struct {
		v any
		b []byte
	}{
		{&ReadRequest{}, []byte{0xc0}},
		{&ReadRequest{}, []byte{0x80}},
		{&ReadRequest{}, enc(map[string]any{"k": nil, "zz": []any{1, "x", map[string]any{"q": 1}}, "t": uint64(7), "e": int8(3)})},
		{&ReadRequest{}, enc(map[string]any{"k": []any{nil, map[string]any{"k": "str-not-bin", "p": 2}}})},
		{&ReadRequest{}, enc(map[string]any{"t": -1})},
		{&ReadRequest{}, enc(map[string]any{"t": "seven"})},
		{&ReadRequest{}, enc(map[string]any{"a-long-unknown-field-name": true, "t": 1})},
		{&ReadRequest{}, enc([]any{1, 2, 3, nil, false})},
		{&ReadReply{}, enc(map[string]any{"r": []any{map[string]any{"err": nil, "v": nil}, nil}})},
		{&ReadReply{}, enc(map[string]any{"r": []any{map[string]any{"err": map[string]any{"c": 300, "m": "x"}}}})},
		{&WriteRequest{}, enc(map[string]any{"g": []any{map[string]any{"o": []any{map[string]any{"y": 1, "k": []byte("k"), "d": uint64(math.MaxUint64)}}}}})},
		{&WriteReply{}, enc(map[string]any{"g": []any{map[string]any{"r": []any{}, "q": 5}}, "lm": int64(-3)})},
		{&Error{}, enc(map[string]any{"c": 70000, "e": 1})},
		{&FetchRequest{}, enc(map[string]any{"n": []byte("bin-node"), "mb": uint64(math.MaxUint64), "w": -5})},
		{&FetchReply{}, enc(map[string]any{"r": []any{nil, "s", []byte{}}, "q": 1, "p": false})},
	}
	for _, c := range cases {
		if c.b[0]&0xf0 == 0x90 {
			// The array form: reflection reads it when the field count
			// matches, the codec refuses it (nothing writes it).
			if err := Unmarshal(c.b, c.v); err == nil {
				t.Errorf("decode of the array form %x as %T succeeded", c.b, c.v)
			}
			continue
		}
		checkDecode(t, c.v, c.b)
	}
}

// FuzzDataCodec builds messages from the fuzzer's bytes and holds the
// codec to reflection on them; then decodes the bytes themselves as every
// data message, which must not panic and, when both codecs accept them
// and no key repeats, must agree.
func FuzzDataCodec(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	b, _ := Marshal(&ReadRequest{Table: 1, Epoch: 2, Op: ReadGet, Keys: []KeyRef{{Partition: 3, Key: []byte("k")}}})
	f.Add(b)
	b, _ = Marshal(&WriteReply{Groups: []GroupResult{{Err: &Error{Code: CodeMoved, Addr: "a"}}, {Results: []OpResult{{Done: true}}, Seq: 9}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var seed [16]byte
		copy(seed[:], b)
		g := gen{rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))}
		for _, v := range g.messages() {
			checkAgainstMirror(t, v)
		}
		for _, v := range []any{&Error{}, &ReadRequest{}, &ReadReply{}, &WriteRequest{}, &WriteReply{}, &FetchRequest{}, &FetchReply{}} {
			dec := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if Unmarshal(b, dec) != nil {
				continue
			}
			// What the codec decoded encodes and decodes back to itself,
			// by either codec.
			again, err := Marshal(dec)
			if err != nil {
				t.Fatalf("re-encode %T: %v", dec, err)
			}
			checkDecode(t, dec, again)
		}
	})
}
