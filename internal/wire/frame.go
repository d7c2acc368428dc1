package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header: length, kind and request id.
const HeaderSize = 4 + 1 + 8

// DefaultMaxFrame is the default upper bound of a frame's length field.
const DefaultMaxFrame = 256 << 20

// Frame errors. Both mean the peer sent bytes that cannot be a frame of this
// protocol; the connection must be closed.
var (
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrFrameTooShort = errors.New("wire: frame too short")
	// ErrFrameKind means the frame's kind is one the reader does not
	// accept (see FrameReader.SetKindMax); its body was not read.
	ErrFrameKind = errors.New("wire: unexpected frame kind")
)

// Frame is one decoded frame. Body is owned by the frame.
type Frame struct {
	Kind Kind
	ID   uint64
	Body []byte
}

// AppendHeader appends a frame header for a body of bodyLen bytes to dst.
func AppendHeader(dst []byte, kind Kind, id uint64, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+8+bodyLen))
	dst = append(dst, byte(kind))
	return binary.BigEndian.AppendUint64(dst, id)
}

// AppendFrame appends a whole frame to dst.
func AppendFrame(dst []byte, kind Kind, id uint64, body []byte) []byte {
	dst = AppendHeader(dst, kind, id, len(body))
	return append(dst, body...)
}

// FrameReader reads frames from a stream, refusing any whose length field
// exceeds its limit before reading the body.
type FrameReader struct {
	r       *bufio.Reader
	max     int
	kindMax func(Kind) int
	hdr     [HeaderSize]byte
}

// NewFrameReader returns a reader over r that refuses frames longer than
// maxFrame bytes (DefaultMaxFrame when maxFrame ≤ 0).
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &FrameReader{r: br, max: maxFrame}
}

// Next reads the next frame. It returns io.EOF when the stream ends cleanly
// between frames, io.ErrUnexpectedEOF when it ends inside one, and an error
// wrapping ErrFrameTooLarge or ErrFrameTooShort for a bad length field.
func (fr *FrameReader) Next() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:4]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	if n < 9 {
		return Frame{}, fmt.Errorf("%w: length %d", ErrFrameTooShort, n)
	}
	if uint64(n) > uint64(fr.max) {
		return Frame{}, fmt.Errorf("%w: length %d exceeds limit %d", ErrFrameTooLarge, n, fr.max)
	}
	if _, err := io.ReadFull(fr.r, fr.hdr[4:]); err != nil {
		return Frame{}, unexpected(err)
	}
	f := Frame{Kind: Kind(fr.hdr[4]), ID: binary.BigEndian.Uint64(fr.hdr[5:])}
	if fr.kindMax != nil {
		switch km := fr.kindMax(f.Kind); {
		case km <= 0:
			return Frame{ID: f.ID}, fmt.Errorf("%w: %v", ErrFrameKind, f.Kind)
		case uint64(n) > uint64(km):
			return Frame{ID: f.ID}, fmt.Errorf("%w: %v frame of length %d exceeds its limit %d", ErrFrameTooLarge, f.Kind, n, km)
		}
	}
	body, err := readBody(fr.r, int(n)-9)
	if err != nil {
		return Frame{}, unexpected(err)
	}
	f.Body = body
	return f, nil
}

// readBody reads n bytes. A large body is read a megabyte at a time until
// half of it has arrived, so what is allocated follows what actually
// arrives (at most twice as much), not what a length header claims; then
// the body itself is allocated, those pieces are copied into it and the
// rest is read straight into it. Growing one buffer instead would copy
// the body some twice over.
func readBody(r io.Reader, n int) ([]byte, error) {
	const step = 1 << 20
	if n <= step {
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return body, err
	}
	var pieces [][]byte
	for got := 0; got < n/2; {
		p := make([]byte, min(step, n/2-got))
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, err
		}
		pieces = append(pieces, p)
		got += len(p)
	}
	body := make([]byte, n)
	off := 0
	for _, p := range pieces {
		off += copy(body[off:], p)
	}
	if _, err := io.ReadFull(r, body[off:]); err != nil {
		return nil, err
	}
	return body, nil
}

// SetMax changes the largest frame the reader accepts.
func (fr *FrameReader) SetMax(maxFrame int) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	fr.max = maxFrame
}

// SetKindMax makes the reader check each frame's kind, from its header and
// before its body is read: max returns the largest frame of a kind it
// accepts (at most the reader's overall limit applies as well), or 0 for
// a kind it refuses (ErrFrameKind). nil removes the check. On either error
// the returned Frame carries the header's request ID.
func (fr *FrameReader) SetKindMax(max func(Kind) int) { fr.kindMax = max }

// Buffered reports how many bytes are buffered and not yet consumed.
func (fr *FrameReader) Buffered() int { return fr.r.Buffered() }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
