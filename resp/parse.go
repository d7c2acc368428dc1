package resp

import (
	"bytes"
	"fmt"
)

// inlineMax bounds an inline command line and the count line of a
// multibulk request or bulk string, as Redis's PROTO_INLINE_MAX_SIZE does.
const inlineMax = 64 << 10

// protoError is malformed input. The connection answers
// "-ERR Protocol error: <msg>" and is closed, as Redis does.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "Protocol error: " + e.msg }

func protoErrorf(format string, args ...any) error {
	return &protoError{msg: fmt.Sprintf(format, args...)}
}

// parse parses the command at the front of buf. It is pure: it only reads
// buf and never allocates for a multibulk request (the arguments alias buf
// and are appended to args[:0]); inline requests with quoted strings get
// fresh slices.
//
// It returns the arguments and n, the number of bytes the command occupies.
// An empty command (a blank inline line, "*0\r\n", "*-1\r\n") has n > 0
// and no arguments. When buf holds only the beginning of a command, n is 0,
// err is nil and need is the length buf must reach before parsing again can
// make progress (len(buf)+1 when any byte may help). Malformed input, a
// bulk string longer than maxBulk and a request of more than maxArgs
// arguments are reported as a *protoError as soon as the header that
// declares them is read, before any payload is waited for.
func parse(buf []byte, args [][]byte, maxBulk, maxArgs int) (out [][]byte, n, need int, err error) {
	out = args[:0]
	if len(buf) == 0 {
		return out, 0, 1, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, out, maxArgs)
	}
	count, pos, ok, err := readCount(buf, 1, "multibulk")
	if err != nil || !ok {
		return out, 0, len(buf) + 1, err
	}
	if count <= 0 {
		return out, pos, 0, nil
	}
	if count > int64(maxArgs) {
		return out, 0, 0, protoErrorf("invalid multibulk length %d (this server accepts at most %d arguments)", count, maxArgs)
	}
	for i := int64(0); i < count; i++ {
		if pos >= len(buf) {
			return out, 0, pos + 1, nil
		}
		if buf[pos] != '$' {
			return out, 0, 0, protoErrorf("expected '$', got '%s'", printable(buf[pos]))
		}
		l, next, ok, err := readCount(buf, pos+1, "bulk")
		if err != nil {
			return out, 0, 0, err
		}
		if !ok {
			return out, 0, len(buf) + 1, nil
		}
		if l < 0 {
			return out, 0, 0, protoErrorf("invalid bulk length")
		}
		if l > int64(maxBulk) {
			return out, 0, 0, protoErrorf("invalid bulk length %d (this server accepts at most %d bytes)", l, maxBulk)
		}
		end := next + int(l)
		if end+2 > len(buf) {
			return out, 0, end + 2, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return out, 0, 0, protoErrorf("expected CRLF after a bulk string of %d bytes", l)
		}
		out = append(out, buf[next:end:end])
		pos = end + 2
	}
	return out, pos, 0, nil
}

// readCount reads the decimal number that starts at buf[pos] and ends with
// CRLF. ok is false when the CRLF has not arrived yet.
func readCount(buf []byte, pos int, what string) (v int64, next int, ok bool, err error) {
	i := bytes.IndexByte(buf[pos:], '\r')
	if i < 0 || pos+i+1 >= len(buf) {
		if len(buf)-pos > inlineMax {
			return 0, 0, false, protoErrorf("too big %s count string", what)
		}
		return 0, 0, false, nil
	}
	if buf[pos+i+1] != '\n' {
		return 0, 0, false, protoErrorf("expected CRLF after the %s length", what)
	}
	v, good := parseDecimal(buf[pos : pos+i])
	if !good {
		return 0, 0, false, protoErrorf("invalid %s length", what)
	}
	return v, pos + i + 2, true, nil
}

// parseDecimal parses an optionally negative decimal integer of at most 18
// digits, so it cannot overflow.
func parseDecimal(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}

// parseInline parses a telnet-style command line: arguments separated by
// spaces or tabs, with Redis's double-quoted (escapes \n \r \t \b \a \\ \"
// \xHH) and single-quoted (escape \') strings. Control characters other
// than tab, and a lone CR, are rejected: a line holding them is binary
// garbage, not a command.
func parseInline(buf []byte, out [][]byte, maxArgs int) ([][]byte, int, int, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > inlineMax {
			return out, 0, 0, protoErrorf("too big inline request")
		}
		if i := badInlineByte(buf); i >= 0 && !(buf[i] == '\r' && i == len(buf)-1) {
			return out, 0, 0, protoErrorf("unexpected byte %s in an inline request", printable(buf[i]))
		}
		return out, 0, len(buf) + 1, nil
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if i := badInlineByte(line); i >= 0 {
		return out, 0, 0, protoErrorf("unexpected byte %s in an inline request", printable(line[i]))
	}
	var err error
	out, err = splitArgs(line, out, maxArgs)
	if err != nil {
		return out[:0], 0, 0, err
	}
	return out, nl + 1, 0, nil
}

// badInlineByte returns the index of the first byte that may not appear in
// an inline request, or -1.
func badInlineByte(b []byte) int {
	for i, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// splitArgs splits an inline line the way Redis's sdssplitargs does.
// Unquoted arguments alias line; quoted ones are copied.
func splitArgs(line []byte, out [][]byte, maxArgs int) ([][]byte, error) {
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return out, nil
		}
		if len(out) == maxArgs {
			return out, protoErrorf("too many arguments in an inline request (this server accepts at most %d)", maxArgs)
		}
		switch line[p] {
		case '"':
			var cur []byte
			p++
			for {
				if p >= len(line) {
					return out, protoErrorf("unbalanced quotes in request")
				}
				c := line[p]
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, hexVal(line[p+2])<<4|hexVal(line[p+3]))
					p += 4
					continue
				case c == '\\' && p+1 < len(line):
					p++
					switch e := line[p]; e {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					default:
						c = e
					}
				case c == '"':
					// The closing quote must end the argument.
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return out, protoErrorf("unbalanced quotes in request")
					}
					p++
					if cur == nil {
						cur = []byte{}
					}
					out = append(out, cur)
					goto next
				}
				cur = append(cur, c)
				p++
			}
		case '\'':
			var cur []byte
			p++
			for {
				if p >= len(line) {
					return out, protoErrorf("unbalanced quotes in request")
				}
				c := line[p]
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					c = '\''
				case c == '\'':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return out, protoErrorf("unbalanced quotes in request")
					}
					p++
					if cur == nil {
						cur = []byte{}
					}
					out = append(out, cur)
					goto next
				}
				cur = append(cur, c)
				p++
			}
		default:
			start := p
			for p < len(line) && !isSpace(line[p]) {
				p++
			}
			out = append(out, line[start:p:p])
		}
	next:
	}
}

// appendCommand appends args encoded as a RESP multibulk request, the
// encoding clients send.
func appendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = appendInt(b, int64(len(args)))
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = appendInt(b, int64(len(a)))
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
