package resp

import (
	"math"
	"strconv"
	"strings"
)

func appendInt(b []byte, v int64) []byte {
	if v >= 0 && v < 10 {
		return append(b, byte('0'+v))
	}
	return strconv.AppendInt(b, v, 10)
}

// writer appends replies to a buffer in RESP2, or in RESP3 once the
// connection said HELLO 3. RESP3-only types degrade as Redis degrades them
// for RESP2 clients: maps and sets become flat arrays, nulls become null
// bulk strings or null arrays, doubles and verbatim strings become bulk
// strings, booleans become integers.
type writer struct {
	buf   []byte
	resp3 bool

	// sink, when set, writes buf and then value to the client: bulk uses
	// it for large values and when buf has grown large, so a reply is
	// never copied whole into buf and the connection holds at most
	// maxBuffered bytes of replies besides the values it was given.
	sink func(buf, value []byte) error
	// err is the first error of sink; once set, nothing more is written.
	err error
}

const (
	// directBulk is the size from which a bulk string is written straight
	// from its value.
	directBulk = 32 << 10
	// maxBuffered bounds the reply bytes buffered before bulk writes them.
	maxBuffered = 256 << 10
)

func (w *writer) line(prefix byte, s string) {
	w.buf = append(w.buf, prefix)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *writer) header(prefix byte, n int64) {
	w.buf = append(w.buf, prefix)
	w.buf = appendInt(w.buf, n)
	w.buf = append(w.buf, '\r', '\n')
}

// simple appends a simple string; s must not contain CR or LF.
func (w *writer) simple(s string) { w.line('+', s) }

// ok appends +OK.
func (w *writer) ok() { w.buf = append(w.buf, "+OK\r\n"...) }

// error appends an error reply. msg starts with the error code ("ERR ...",
// "CROSSSLOT ..."); CR and LF in it are replaced by spaces.
func (w *writer) error(msg string) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.line('-', msg)
}

// int appends an integer.
func (w *writer) int(v int64) { w.header(':', v) }

// bulk appends a bulk string.
func (w *writer) bulk(b []byte) {
	w.header('$', int64(len(b)))
	if w.sink != nil && (len(b) >= directBulk || len(w.buf)+len(b) > maxBuffered) {
		if w.err == nil {
			w.err = w.sink(w.buf, b)
		}
		w.buf = append(w.buf[:0], '\r', '\n')
		return
	}
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

// bulkString appends a bulk string.
func (w *writer) bulkString(s string) {
	w.header('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// null appends the null reply for a missing value: _ in RESP3, a null bulk
// string in RESP2.
func (w *writer) null() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// nullArray appends the null reply for a missing array: _ in RESP3, a null
// array in RESP2.
func (w *writer) nullArray() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// array appends the header of an array of n elements.
func (w *writer) array(n int) { w.header('*', int64(n)) }

// mapHeader appends the header of a map of n key-value pairs; the caller
// appends 2n elements.
func (w *writer) mapHeader(n int) {
	if w.resp3 {
		w.header('%', int64(n))
		return
	}
	w.header('*', 2*int64(n))
}

// set appends the header of a set of n elements.
func (w *writer) set(n int) {
	if w.resp3 {
		w.header('~', int64(n))
		return
	}
	w.header('*', int64(n))
}

// double appends a floating-point number.
func (w *writer) double(f float64) {
	var s string
	switch {
	case math.IsInf(f, 1):
		s = "inf"
	case math.IsInf(f, -1):
		s = "-inf"
	case math.IsNaN(f):
		s = "nan"
	default:
		s = strconv.FormatFloat(f, 'g', 17, 64)
	}
	if w.resp3 {
		w.line(',', s)
		return
	}
	w.bulkString(s)
}

// boolean appends a boolean.
func (w *writer) boolean(b bool) {
	switch {
	case w.resp3 && b:
		w.buf = append(w.buf, "#t\r\n"...)
	case w.resp3:
		w.buf = append(w.buf, "#f\r\n"...)
	case b:
		w.int(1)
	default:
		w.int(0)
	}
}

// verbatim appends a verbatim string of format "txt" or "mkd" (a bulk
// string in RESP2).
func (w *writer) verbatim(format, s string) {
	if !w.resp3 {
		w.bulkString(s)
		return
	}
	w.header('=', int64(len(format)+1+len(s)))
	w.buf = append(w.buf, format...)
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// kv appends a bulk-string key followed by a bulk-string value, one pair
// of a map.
func (w *writer) kv(k, v string) {
	w.bulkString(k)
	w.bulkString(v)
}

// kvInt appends a bulk-string key followed by an integer value.
func (w *writer) kvInt(k string, v int64) {
	w.bulkString(k)
	w.int(v)
}

// boolInt appends :1 for true and :0 for false, as Redis's integer
// replies to yes/no questions.
func (w *writer) boolInt(b bool) {
	if b {
		w.buf = append(w.buf, ":1\r\n"...)
		return
	}
	w.buf = append(w.buf, ":0\r\n"...)
}
