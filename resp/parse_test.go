package resp

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const maxBulk, maxArgs = 100, 8
	type want struct {
		args []string // nil with n == 0: incomplete
		n    int
		need int    // checked when incomplete and non-zero
		err  string // error prefix
	}
	tests := []struct {
		in string
		want
	}{
		{"*1\r\n$4\r\nPING\r\n", want{args: []string{"PING"}, n: 14}},
		{"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", want{args: []string{"GET", ""}, n: 19}},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n", want{args: []string{"GET", "k"}, n: 20}},
		{"*0\r\n", want{args: []string{}, n: 4}},
		{"*-1\r\n", want{args: []string{}, n: 5}},
		{"*2\r\n$4\r\nA\r\nB\r\n$1\r\nx\r\n", want{args: []string{"A\r\nB", "x"}, n: 21}},
		// Incomplete.
		{"", want{need: 1}},
		{"*", want{need: 2}},
		{"*2\r", want{need: 4}},
		{"*2\r\n", want{need: 5}},
		{"*2\r\n$3\r\nGE", want{need: 13}},
		{"*2\r\n$3\r\nGET\r", want{need: 13}},
		{"*2\r\n$3\r\nGET\r\n", want{need: 14}},
		{"*2\r\n$3\r\nGET\r\n$100\r\n", want{need: 121}},
		{"PING", want{need: 5}},
		{"PING\r", want{need: 6}},
		// Inline.
		{"PING\r\n", want{args: []string{"PING"}, n: 6}},
		{"PING\n", want{args: []string{"PING"}, n: 5}},
		{"  set  k \t v  \r\n", want{args: []string{"set", "k", "v"}, n: 16}},
		{"\r\n", want{args: []string{}, n: 2}},
		{`SET k "a\"b\\\n\x41\xzz"` + "\r\n", want{args: []string{"SET", "k", "a\"b\\\nAxzz"}, n: 26}},
		{`SET k 'it\'s' ""` + "\r\n", want{args: []string{"SET", "k", "it's", ""}, n: 18}},
		{"café crème\r\n", want{args: []string{"café", "crème"}, n: 14}},
		// Errors.
		{"*9\r\n", want{err: "Protocol error: invalid multibulk length 9"}},
		{"*x\r\n", want{err: "Protocol error: invalid multibulk length"}},
		{"*1\r\n$101\r\n", want{err: "Protocol error: invalid bulk length 101"}},
		{"*1\r\n$1073741824\r\n", want{err: "Protocol error: invalid bulk length 1073741824"}},
		{"*1\r\n$-1\r\n", want{err: "Protocol error: invalid bulk length"}},
		{"*1\r\n$99999999999999999999\r\n", want{err: "Protocol error: invalid bulk length"}},
		{"*1\r\n+PING\r\n", want{err: "Protocol error: expected '$', got '+'"}},
		{"*1\r\n$4\r\nPINGxx", want{err: "Protocol error: expected CRLF after a bulk string"}},
		{"*1\rx", want{err: "Protocol error: expected CRLF after the multibulk length"}},
		{"\x00\x01junk\r\n", want{err: "Protocol error: unexpected byte \\x00"}},
		{"junk\x00", want{err: "Protocol error: unexpected byte \\x00"}},
		{"a\rb\r\n", want{err: "Protocol error: unexpected byte \\x0d"}},
		{`SET "abc`, want{need: 9}},
		{`SET "abc` + "\r\n", want{err: "Protocol error: unbalanced quotes"}},
		{`SET "a"b` + "\r\n", want{err: "Protocol error: unbalanced quotes"}},
		{"a b c d e f g h i\r\n", want{err: "Protocol error: too many arguments"}},
		{strings.Repeat("x", inlineMax+1), want{err: "Protocol error: too big inline request"}},
		{"*" + strings.Repeat("1", inlineMax+1), want{err: "Protocol error: too big multibulk count string"}},
	}
	for _, tt := range tests {
		args, n, need, err := parse([]byte(tt.in), nil, maxBulk, maxArgs)
		name := fmt.Sprintf("%.40q", tt.in)
		switch {
		case tt.err != "":
			var pe *protoError
			if err == nil || !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", name, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: unexpected error %v", name, err)
		case tt.args == nil:
			if n != 0 || (tt.need != 0 && need != tt.need) {
				t.Errorf("%s: n = %d need = %d, want incomplete with need %d", name, n, need, tt.need)
			}
		default:
			got := make([]string, len(args))
			for i, a := range args {
				got[i] = string(a)
			}
			if n != tt.n || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.args) {
				t.Errorf("%s: got %q (n=%d), want %q (n=%d)", name, got, n, tt.args, tt.n)
			}
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	buf := appendCommand(nil, []byte("SET"), []byte("key:000001"), bytes.Repeat([]byte("v"), 100))
	args := make([][]byte, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		args, _, _, _ = parse(buf, args, 1<<20, 1024)
	})
	if allocs != 0 {
		t.Errorf("parse allocates %v times per multibulk command", allocs)
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w *writer)
		resp2, rs3 string
	}{
		{"simple", func(w *writer) { w.simple("OK") }, "+OK\r\n", "+OK\r\n"},
		{"error", func(w *writer) { w.error("ERR a\r\nb") }, "-ERR a  b\r\n", "-ERR a  b\r\n"},
		{"int", func(w *writer) { w.int(-42); w.int(7) }, ":-42\r\n:7\r\n", ":-42\r\n:7\r\n"},
		{"bulk", func(w *writer) { w.bulk([]byte("a\r\nb")); w.bulk(nil) }, "$4\r\na\r\nb\r\n$0\r\n\r\n", "$4\r\na\r\nb\r\n$0\r\n\r\n"},
		{"null", func(w *writer) { w.null(); w.nullArray() }, "$-1\r\n*-1\r\n", "_\r\n_\r\n"},
		{"map", func(w *writer) { w.mapHeader(1); w.kv("a", "b") }, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "%1\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"set", func(w *writer) { w.set(1); w.simple("x") }, "*1\r\n+x\r\n", "~1\r\n+x\r\n"},
		{"double", func(w *writer) { w.double(1.5); w.double(math.Inf(1)) }, "$3\r\n1.5\r\n$3\r\ninf\r\n", ",1.5\r\n,inf\r\n"},
		{"bool", func(w *writer) { w.boolean(true); w.boolean(false) }, ":1\r\n:0\r\n", "#t\r\n#f\r\n"},
		{"boolInt", func(w *writer) { w.boolInt(true); w.boolInt(false) }, ":1\r\n:0\r\n", ":1\r\n:0\r\n"},
		{"verbatim", func(w *writer) { w.verbatim("txt", "hi") }, "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n"},
	}
	for _, tt := range tests {
		for _, resp3 := range []bool{false, true} {
			w := writer{resp3: resp3}
			tt.write(&w)
			want := tt.resp2
			if resp3 {
				want = tt.rs3
			}
			if string(w.buf) != want {
				t.Errorf("%s (resp3=%v) = %q, want %q", tt.name, resp3, w.buf, want)
			}
		}
	}
}

// quoteInline encodes arg as a double-quoted inline argument.
func quoteInline(arg []byte) []byte {
	b := []byte{'"'}
	for _, ch := range arg {
		if ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' {
			b = append(b, ch)
		} else {
			b = fmt.Appendf(b, "\\x%02x", ch)
		}
	}
	return append(b, '"')
}

func FuzzParser(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n"))
	f.Add([]byte("PING\r\nSET k \"v\\x00\"\r\n"))
	f.Add([]byte("*1\r\n$1073741824\r\n"))
	f.Add([]byte("\x00\xff\x00garbage\r\n"))
	f.Add([]byte("SET\x00key\x00value"))
	f.Add([]byte("*-1\r\n*0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxBulk, maxArgs = 1 << 16, 64

		// Arbitrary input: parse command after command; never panic, always
		// progress or stop.
		buf := data
		var args [][]byte
		for len(buf) > 0 {
			var n, need int
			var err error
			args, n, need, err = parse(buf, args, maxBulk, maxArgs)
			if err != nil {
				var pe *protoError
				if !errors.As(err, &pe) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				break
			}
			if n == 0 {
				if need <= len(buf) {
					t.Fatalf("incomplete with need %d ≤ %d buffered", need, len(buf))
				}
				break
			}
			if n > len(buf) || len(args) > maxArgs {
				t.Fatalf("n = %d of %d, %d args", n, len(buf), len(args))
			}
			for _, a := range args {
				if len(a) > maxBulk {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
			buf = buf[n:]
		}

		// The input split at NUL bytes is a command: its multibulk
		// encoding parses back to it, and every prefix of the encoding is
		// incomplete.
		want := bytes.Split(data, []byte{0})
		if len(want) > maxArgs {
			want = want[:maxArgs]
		}
		for _, a := range want {
			if len(a) > maxBulk {
				return
			}
		}
		enc := appendCommand(nil, want...)
		two := append(append([]byte(nil), enc...), enc...)
		got, n, _, err := parse(two, nil, maxBulk, maxArgs)
		if err != nil || n != len(enc) || len(got) != len(want) {
			t.Fatalf("round trip of %q: %q, n=%d (want %d), %v", want, got, n, len(enc), err)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("argument %d: got %q, want %q", i, got[i], want[i])
			}
		}
		step := max(1, len(enc)/64)
		for cut := 0; cut < len(enc); cut += step {
			_, n, need, err := parse(enc[:cut], nil, maxBulk, maxArgs)
			if err != nil || n != 0 || need <= cut || need > len(enc) {
				t.Fatalf("prefix %d of %d: n=%d need=%d err=%v", cut, len(enc), n, need, err)
			}
		}

		// The same command quoted inline parses back to it too.
		var line []byte
		for i, a := range want {
			if i > 0 {
				line = append(line, ' ')
			}
			line = append(line, quoteInline(a)...)
		}
		if len(line)+2 <= inlineMax {
			line = append(line, '\r', '\n')
			got, n, _, err = parse(line, nil, maxBulk, maxArgs)
			if err != nil || n != len(line) || len(got) != len(want) {
				t.Fatalf("inline round trip of %q: %q, n=%d (want %d), %v", want, got, n, len(line), err)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("inline argument %d: got %q, want %q", i, got[i], want[i])
				}
			}
		}
	})
}
