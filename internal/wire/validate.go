package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by decode errors for bodies that are not
// well-formed msgpack or exceed the decoding limits.
var ErrMalformed = errors.New("wire: malformed message")

// maxDepth bounds the nesting of containers in one message.
const maxDepth = 32

// validate walks the msgpack value in b without decoding it and checks that
// it is exactly one well-formed value, that every declared length fits in
// the bytes that remain (so no decoder preallocates for data that is not
// there), that containers nest at most maxDepth deep, and that arrays hold
// at most maxElems elements in total (no limit when ≤ 0). Maps are not
// counted: structs decode from them field by field.
//
// It exists because the msgpack decoder sizes slices from the declared
// length: without it a few bytes claiming a huge array would make the
// process allocate gigabytes.
func validate(b []byte, maxElems int) error {
	pos := 0
	elems := 0 // array elements seen
	// stack of remaining item counts per open container
	var stack [maxDepth + 1]int
	depth := 0
	stack[0] = 1
	need := func(n int) error {
		if n < 0 || n > len(b)-pos {
			return fmt.Errorf("%w: length %d exceeds the %d bytes left at offset %d", ErrMalformed, n, len(b)-pos, pos)
		}
		return nil
	}
	uintN := func(size int) (int, error) {
		if err := need(size); err != nil {
			return 0, err
		}
		var v uint64
		switch size {
		case 1:
			v = uint64(b[pos])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b[pos:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b[pos:]))
		}
		pos += size
		if v > uint64(len(b)) {
			return 0, fmt.Errorf("%w: length %d exceeds the message size %d", ErrMalformed, v, len(b))
		}
		return int(v), nil
	}
	for depth >= 0 {
		if stack[depth] == 0 {
			depth--
			continue
		}
		stack[depth]--
		if pos >= len(b) {
			return fmt.Errorf("%w: truncated at offset %d", ErrMalformed, pos)
		}
		c := b[pos]
		pos++
		skip, count := 0, -1 // bytes to skip; items of a new container
		isArray := false
		var err error
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			count = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			count, isArray = int(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			skip, err = uintN(1)
		case c == 0xc5 || c == 0xda:
			skip, err = uintN(2)
		case c == 0xc6 || c == 0xdb:
			skip, err = uintN(4)
		case c == 0xc7:
			skip, err = uintN(1)
			skip++
		case c == 0xc8:
			skip, err = uintN(2)
			skip++
		case c == 0xc9:
			skip, err = uintN(4)
			skip++
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c == 0xcc, c == 0xd0:
			skip = 1
		case c == 0xcd, c == 0xd1:
			skip = 2
		case c == 0xce, c == 0xd2:
			skip = 4
		case c == 0xcf, c == 0xd3:
			skip = 8
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc:
			count, err = uintN(2)
			isArray = true
		case c == 0xdd:
			count, err = uintN(4)
			isArray = true
		case c == 0xde:
			count, err = uintN(2)
			count *= 2
		case c == 0xdf:
			count, err = uintN(4)
			count *= 2
		default:
			return fmt.Errorf("%w: invalid type byte 0x%02x at offset %d", ErrMalformed, c, pos-1)
		}
		if err != nil {
			return err
		}
		if err := need(skip); err != nil {
			return err
		}
		pos += skip
		if count >= 0 {
			if err := need(count); err != nil {
				return err
			}
			if isArray {
				elems += count
				if maxElems > 0 && elems > maxElems {
					return fmt.Errorf("%w: more than %d array elements", ErrMalformed, maxElems)
				}
			}
			if count > 0 {
				if depth == maxDepth {
					return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
				}
				depth++
				stack[depth] = count
			}
		}
	}
	if pos != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-pos)
	}
	return nil
}
