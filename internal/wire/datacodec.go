package wire

import (
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// The messages of the data path (reads and writes, their keys,
// operations, results and errors, and a slave's fetches of binlog
// records) encode and decode themselves, field by field, instead of
// through msgpack's reflection: on a remote read, reflection (struct field
// caches behind a sync.Map, omitempty checks, per-field decoders) took a
// third of the CPU of client and server together.
//
// The bytes are exactly those the reflective encoder writes (a map of the
// non-omitted fields by their tags, in declaration order, integers as
// small as they fit, as UseCompactInts does), and the decoders read what
// it reads: fields in any order, unknown ones skipped, a nil in place of
// a message or a list decoding as its zero value. datacodec_test.go holds
// them to that against the reflective codec of mirror types; the one
// difference is that a message written as an array (msgpack's AsArray,
// which nothing here writes) is refused.

// sliceAllocLimit caps the capacity a decoder gives a list up front; a
// longer list grows as its elements arrive (the length in a hostile frame
// is bounded by validate, but each element takes more memory than its
// encoding).
const sliceAllocLimit = 1024

// encoder writes fields to a msgpack.Encoder and keeps its first error.
type encoder struct {
	e   *msgpack.Encoder
	err error
}

func (w *encoder) mapLen(n int) {
	if w.err == nil {
		w.err = w.e.EncodeMapLen(n)
	}
}

func (w *encoder) arrayLen(n int) {
	if w.err == nil {
		w.err = w.e.EncodeArrayLen(n)
	}
}

func (w *encoder) nil() {
	if w.err == nil {
		w.err = w.e.EncodeNil()
	}
}

func (w *encoder) key(k string) {
	if w.err == nil {
		w.err = w.e.EncodeString(k)
	}
}

func (w *encoder) uint(k string, n uint64) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeUint(n)
	}
}

func (w *encoder) int(k string, n int64) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeInt(n)
	}
}

func (w *encoder) bool(k string, v bool) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeBool(v)
	}
}

func (w *encoder) bytes(k string, b []byte) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeBytes(b)
	}
}

func (w *encoder) string(k string, s string) {
	w.key(k)
	if w.err == nil {
		w.err = w.e.EncodeString(s)
	}
}

// elemBytes writes a byte string that is a list's element, not a field.
func (w *encoder) elemBytes(b []byte) {
	if w.err == nil {
		w.err = w.e.EncodeBytes(b)
	}
}

// value writes a field whose value encodes itself.
func (w *encoder) value(k string, v msgpack.CustomEncoder) {
	w.key(k)
	if w.err == nil {
		w.err = v.EncodeMsgpack(w.e)
	}
}

// encodeWith runs f on an encoder writing to enc and returns its error.
func encodeWith(enc *msgpack.Encoder, f func(*encoder)) error {
	w := encoder{e: enc}
	f(&w)
	return w.err
}

// count returns how many of the optional fields are present.
func count(present ...bool) int {
	n := 0
	for _, p := range present {
		if p {
			n++
		}
	}
	return n
}

// encodeList writes a list field: nil as nil, as the reflective encoder
// does.
func encodeList[T any](w *encoder, k string, list []T, elem func(*encoder, *T)) {
	w.key(k)
	if list == nil {
		w.nil()
		return
	}
	w.arrayLen(len(list))
	for i := range list {
		elem(w, &list[i])
	}
}

// decodeFields reads a map and calls field with each key (valid until the
// next read) to decode its value; field returns false for a key it does
// not know, whose value is then skipped. A nil decodes as no fields.
func decodeFields(d *msgpack.Decoder, field func(key []byte) (bool, error)) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	var buf [16]byte
	for range max(n, 0) {
		k, err := d.DecodeBytesLen()
		if err != nil {
			return err
		}
		key := buf[:0]
		switch {
		case k > len(buf):
			key = make([]byte, k)
		case k > 0:
			key = buf[:k]
		}
		if err := d.ReadFull(key); err != nil {
			return err
		}
		known, err := field(key)
		if err != nil {
			return err
		}
		if !known {
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeList reads a list: nil for nil, each element decoded by elem into
// a zero T.
func decodeList[T any](d *msgpack.Decoder, elem func(*T) error) ([]T, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	list := make([]T, 0, min(n, sliceAllocLimit))
	for range n {
		var zero T
		list = append(list, zero)
		if err := elem(&list[len(list)-1]); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// decodeError reads an optional error: nil for nil.
func decodeError(d *msgpack.Decoder) (*Error, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if c == msgpcode.Nil {
		return nil, d.DecodeNil()
	}
	e := new(Error)
	return e, e.DecodeMsgpack(d)
}

// decodeUint reads an unsigned integer into *p, truncated to its width as
// the reflective decoder does.
func decodeUint[T ~uint8 | ~uint16 | ~uint32 | ~uint64](d *msgpack.Decoder, p *T) error {
	n, err := d.DecodeUint64()
	*p = T(n)
	return err
}

// decodeInt reads a signed integer into *p.
func decodeInt[T ~int | ~int64](d *msgpack.Decoder, p *T) error {
	n, err := d.DecodeInt64()
	*p = T(n)
	return err
}

// encodeReply writes a reply made of one list of results (under key) and
// a lease.
func encodeReply[T any](enc *msgpack.Encoder, key string, list []T, elem func(*encoder, *T), leaseMs int64) error {
	w := encoder{e: enc}
	w.mapLen(1 + count(leaseMs != 0))
	encodeList(&w, key, list, elem)
	if leaseMs != 0 {
		w.int("lm", leaseMs)
	}
	return w.err
}

// decodeReply reads what encodeReply writes.
func decodeReply[T any](d *msgpack.Decoder, key string, list *[]T, elem func(*T) error, leaseMs *int64) error {
	return decodeFields(d, func(k []byte) (bool, error) {
		var err error
		switch string(k) {
		case key:
			*list, err = decodeList(d, elem)
		case "lm":
			err = decodeInt(d, leaseMs)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (e Error) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := encoder{e: enc}
	w.mapLen(1 + count(e.Msg != "", e.Addr != "", e.Epoch != 0))
	w.uint("c", uint64(e.Code))
	if e.Msg != "" {
		w.string("m", e.Msg)
	}
	if e.Addr != "" {
		w.string("a", e.Addr)
	}
	if e.Epoch != 0 {
		w.uint("e", uint64(e.Epoch))
	}
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (e *Error) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "c":
			err = decodeUint(d, &e.Code)
		case "m":
			e.Msg, err = d.DecodeString()
		case "a":
			e.Addr, err = d.DecodeString()
		case "e":
			err = decodeUint(d, &e.Epoch)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (k KeyRef) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, k.encode) }

func (k *KeyRef) encode(w *encoder) {
	w.mapLen(2)
	w.uint("p", uint64(k.Partition))
	w.bytes("k", k.Key)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (k *KeyRef) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "p":
			err = decodeUint(d, &k.Partition)
		case "k":
			k.Key, err = d.DecodeBytes()
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r ReadRequest) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := encoder{e: enc}
	w.mapLen(4 + count(r.AllowSlave))
	w.uint("t", uint64(r.Table))
	w.uint("e", uint64(r.Epoch))
	w.uint("o", uint64(r.Op))
	encodeList(&w, "k", r.Keys, func(w *encoder, k *KeyRef) { k.encode(w) })
	if r.AllowSlave {
		w.bool("as", true)
	}
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *ReadRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "t":
			err = decodeUint(d, &r.Table)
		case "e":
			err = decodeUint(d, &r.Epoch)
		case "o":
			err = decodeUint(d, &r.Op)
		case "k":
			r.Keys, err = decodeList(d, func(k *KeyRef) error { return k.DecodeMsgpack(d) })
		case "as":
			r.AllowSlave, err = d.DecodeBool()
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r ReadResult) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, r.encode) }

func (r *ReadResult) encode(w *encoder) {
	w.mapLen(count(r.Err != nil, r.Found, len(r.Value) > 0, r.TTL != 0))
	if r.Err != nil {
		w.value("err", r.Err)
	}
	if r.Found {
		w.bool("f", true)
	}
	if len(r.Value) > 0 {
		w.bytes("v", r.Value)
	}
	if r.TTL != 0 {
		w.int("ttl", r.TTL)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *ReadResult) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "err":
			r.Err, err = decodeError(d)
		case "f":
			r.Found, err = d.DecodeBool()
		case "v":
			r.Value, err = d.DecodeBytes()
		case "ttl":
			err = decodeInt(d, &r.TTL)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r ReadReply) EncodeMsgpack(enc *msgpack.Encoder) error {
	return encodeReply(enc, "r", r.Results, func(w *encoder, res *ReadResult) { res.encode(w) }, r.LeaseMs)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *ReadReply) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeReply(d, "r", &r.Results, func(res *ReadResult) error { return res.DecodeMsgpack(d) }, &r.LeaseMs)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (o Op) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, o.encode) }

func (o *Op) encode(w *encoder) {
	w.mapLen(2 + count(len(o.Value) > 0, o.TTL != 0, o.Cond != 0, o.KeepTTL, o.ReturnOld, o.Delta != 0))
	w.uint("y", uint64(o.Type))
	w.bytes("k", o.Key)
	if len(o.Value) > 0 {
		w.bytes("v", o.Value)
	}
	if o.TTL != 0 {
		w.int("ttl", o.TTL)
	}
	if o.Cond != 0 {
		w.uint("c", uint64(o.Cond))
	}
	if o.KeepTTL {
		w.bool("kt", true)
	}
	if o.ReturnOld {
		w.bool("ro", true)
	}
	if o.Delta != 0 {
		w.int("d", o.Delta)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (o *Op) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "y":
			err = decodeUint(d, &o.Type)
		case "k":
			o.Key, err = d.DecodeBytes()
		case "v":
			o.Value, err = d.DecodeBytes()
		case "ttl":
			err = decodeInt(d, &o.TTL)
		case "c":
			err = decodeUint(d, &o.Cond)
		case "kt":
			o.KeepTTL, err = d.DecodeBool()
		case "ro":
			o.ReturnOld, err = d.DecodeBool()
		case "d":
			err = decodeInt(d, &o.Delta)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (g WriteGroup) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, g.encode) }

func (g *WriteGroup) encode(w *encoder) {
	w.mapLen(2)
	w.uint("p", uint64(g.Partition))
	encodeList(w, "o", g.Ops, func(w *encoder, o *Op) { o.encode(w) })
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (g *WriteGroup) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "p":
			err = decodeUint(d, &g.Partition)
		case "o":
			g.Ops, err = decodeList(d, func(o *Op) error { return o.DecodeMsgpack(d) })
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r WriteRequest) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := encoder{e: enc}
	w.mapLen(3)
	w.uint("t", uint64(r.Table))
	w.uint("e", uint64(r.Epoch))
	encodeList(&w, "g", r.Groups, func(w *encoder, g *WriteGroup) { g.encode(w) })
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *WriteRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "t":
			err = decodeUint(d, &r.Table)
		case "e":
			err = decodeUint(d, &r.Epoch)
		case "g":
			r.Groups, err = decodeList(d, func(g *WriteGroup) error { return g.DecodeMsgpack(d) })
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r OpResult) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, r.encode) }

func (r *OpResult) encode(w *encoder) {
	w.mapLen(count(r.Done, r.Found, len(r.Old) > 0, r.Int != 0))
	if r.Done {
		w.bool("d", true)
	}
	if r.Found {
		w.bool("f", true)
	}
	if len(r.Old) > 0 {
		w.bytes("o", r.Old)
	}
	if r.Int != 0 {
		w.int("i", r.Int)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *OpResult) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "d":
			r.Done, err = d.DecodeBool()
		case "f":
			r.Found, err = d.DecodeBool()
		case "o":
			r.Old, err = d.DecodeBytes()
		case "i":
			err = decodeInt(d, &r.Int)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (g GroupResult) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeWith(enc, g.encode) }

func (g *GroupResult) encode(w *encoder) {
	w.mapLen(count(g.Err != nil, len(g.Results) > 0, g.Seq != 0))
	if g.Err != nil {
		w.value("err", g.Err)
	}
	if len(g.Results) > 0 {
		encodeList(w, "r", g.Results, func(w *encoder, r *OpResult) { r.encode(w) })
	}
	if g.Seq != 0 {
		w.uint("q", g.Seq)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (g *GroupResult) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "err":
			g.Err, err = decodeError(d)
		case "r":
			g.Results, err = decodeList(d, func(r *OpResult) error { return r.DecodeMsgpack(d) })
		case "q":
			err = decodeUint(d, &g.Seq)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r WriteReply) EncodeMsgpack(enc *msgpack.Encoder) error {
	return encodeReply(enc, "g", r.Groups, func(w *encoder, g *GroupResult) { g.encode(w) }, r.LeaseMs)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *WriteReply) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeReply(d, "g", &r.Groups, func(g *GroupResult) error { return g.DecodeMsgpack(d) }, &r.LeaseMs)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r FetchRequest) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := encoder{e: enc}
	w.mapLen(8)
	w.uint("t", uint64(r.Table))
	w.uint("p", uint64(r.Partition))
	w.string("n", string(r.Node))
	w.uint("mg", r.MapGen)
	w.uint("f", r.From)
	w.uint("a", r.Acked)
	w.int("mb", int64(r.MaxBytes))
	w.int("w", r.WaitMs)
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *FetchRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "t":
			err = decodeUint(d, &r.Table)
		case "p":
			err = decodeUint(d, &r.Partition)
		case "n":
			var s string
			s, err = d.DecodeString()
			r.Node = placement.NodeID(s)
		case "mg":
			err = decodeUint(d, &r.MapGen)
		case "f":
			err = decodeUint(d, &r.From)
		case "a":
			err = decodeUint(d, &r.Acked)
		case "mb":
			err = decodeInt(d, &r.MaxBytes)
		case "w":
			err = decodeInt(d, &r.WaitMs)
		default:
			return false, nil
		}
		return true, err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r FetchReply) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := encoder{e: enc}
	w.mapLen(2 + count(r.Purged, r.TimeMs != 0))
	encodeList(&w, "r", r.Records, func(w *encoder, rec *[]byte) { w.elemBytes(*rec) })
	w.uint("q", r.Seq)
	if r.Purged {
		w.bool("p", true)
	}
	if r.TimeMs != 0 {
		w.int("tm", r.TimeMs)
	}
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *FetchReply) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeFields(d, func(key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "r":
			r.Records, err = decodeList(d, func(rec *[]byte) error {
				var err error
				*rec, err = d.DecodeBytes()
				return err
			})
		case "q":
			err = decodeUint(d, &r.Seq)
		case "p":
			r.Purged, err = d.DecodeBool()
		case "tm":
			err = decodeInt(d, &r.TimeMs)
		default:
			return false, nil
		}
		return true, err
	})
}

// dataMessage is a message sent as a frame's body that encodes itself:
// AppendMessage calls it directly when the pointer is not nil.
type dataMessage interface {
	msgpack.CustomEncoder
	isNil() bool
}

func (e *Error) isNil() bool        { return e == nil }
func (r *ReadRequest) isNil() bool  { return r == nil }
func (r *ReadReply) isNil() bool    { return r == nil }
func (r *WriteRequest) isNil() bool { return r == nil }
func (r *WriteReply) isNil() bool   { return r == nil }
func (r *FetchRequest) isNil() bool { return r == nil }
func (r *FetchReply) isNil() bool   { return r == nil }

// Compile-time checks that the data path's messages encode and decode
// themselves.
var (
	_ dataMessage           = (*Error)(nil)
	_ msgpack.CustomDecoder = (*Error)(nil)
	_ dataMessage           = (*ReadRequest)(nil)
	_ msgpack.CustomDecoder = (*ReadRequest)(nil)
	_ dataMessage           = (*ReadReply)(nil)
	_ msgpack.CustomDecoder = (*ReadReply)(nil)
	_ dataMessage           = (*WriteRequest)(nil)
	_ msgpack.CustomDecoder = (*WriteRequest)(nil)
	_ dataMessage           = (*WriteReply)(nil)
	_ msgpack.CustomDecoder = (*WriteReply)(nil)
	_ dataMessage           = (*FetchRequest)(nil)
	_ msgpack.CustomDecoder = (*FetchRequest)(nil)
	_ dataMessage           = (*FetchReply)(nil)
	_ msgpack.CustomDecoder = (*FetchReply)(nil)
)
