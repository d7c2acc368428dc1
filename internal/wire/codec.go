package wire

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

type encBuf struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encPool = sync.Pool{New: func() any {
	e := &encBuf{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	return e
}}

// AppendMessage appends a complete frame carrying v, msgpack-encoded, to dst.
func AppendMessage(dst []byte, kind Kind, id uint64, v any) ([]byte, error) {
	e := encPool.Get().(*encBuf)
	defer encPool.Put(e)
	e.buf.Reset()
	if err := encode(e.enc, v); err != nil {
		return dst, fmt.Errorf("wire: encode %v: %w", kind, err)
	}
	dst = AppendHeader(dst, kind, id, e.buf.Len())
	return append(dst, e.buf.Bytes()...), nil
}

// Marshal encodes v as msgpack.
func Marshal(v any) ([]byte, error) {
	e := encPool.Get().(*encBuf)
	defer encPool.Put(e)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("wire: encode: %w", err)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

type decBuf struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decPool = sync.Pool{New: func() any {
	d := &decBuf{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Unmarshal decodes the msgpack body b into v. Byte slices in v never alias
// b. The body must be exactly one well-formed value whose declared lengths
// fit in b (see UnmarshalLimited).
func Unmarshal(b []byte, v any) error {
	return UnmarshalLimited(b, v, 0)
}

// UnmarshalLimited is Unmarshal that also refuses bodies holding more than
// maxElems array elements in total (no limit when ≤ 0). Servers use
// it on requests so that a small hostile frame cannot make them allocate
// far more than it carries.
func UnmarshalLimited(b []byte, v any, maxElems int) (err error) {
	if err := validate(b, maxElems); err != nil {
		return fmt.Errorf("wire: decode %T: %w", v, err)
	}
	d := decPool.Get().(*decBuf)
	defer decPool.Put(d)
	d.r.Reset(b)
	d.dec.ResetReader(&d.r)
	defer func() {
		// The decoder must never take the process down on hostile input.
		if r := recover(); r != nil {
			err = fmt.Errorf("wire: decode %T: %v", v, r)
		}
	}()
	if err := decode(d.dec, v); err != nil {
		return fmt.Errorf("wire: decode %T: %w", v, err)
	}
	if d.r.Len() != 0 {
		return fmt.Errorf("wire: decode %T: %d trailing bytes", v, d.r.Len())
	}
	return nil
}

// Decode decodes a request body into a new T, refusing bodies with more
// than maxElems array elements in total (see UnmarshalLimited). Handlers
// return its error as it is: a *Error with CodeBadRequest.
func Decode[T any](body []byte, maxElems int) (*T, error) {
	var v T
	if err := UnmarshalLimited(body, &v, maxElems); err != nil {
		return nil, Errorf(CodeBadRequest, "%v", err)
	}
	return &v, nil
}

// encode encodes v with e; a data-path message (datacodec.go) encodes
// itself without msgpack's lookup of its type's encoder.
func encode(e *msgpack.Encoder, v any) error {
	if m, ok := v.(dataMessage); ok && !m.isNil() {
		return m.EncodeMsgpack(e)
	}
	return e.Encode(v)
}

// decode decodes into v with d; a data-path message decodes itself
// without msgpack's lookup of its type's decoder (a nil still decodes as
// msgpack decodes it, to the zero message).
func decode(d *msgpack.Decoder, v any) error {
	if m, ok := v.(msgpack.CustomDecoder); ok {
		if c, err := d.PeekCode(); err == nil && c != msgpcode.Nil {
			return m.DecodeMsgpack(d)
		}
	}
	return d.Decode(v)
}
