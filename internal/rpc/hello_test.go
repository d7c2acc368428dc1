package rpc

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// lineServer is a line-oriented server: it reads one line from each
// connection and answers it with reply.
func lineServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
					return
				}
				nc.Write([]byte(reply))
				// Keep the connection open, as a RESP server does after
				// an error reply.
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				nc.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDialOtherProtocols dials servers of other protocols: each answers
// the Hello at once, and Dial names what answered.
func TestDialOtherProtocols(t *testing.T) {
	httpSrv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(httpSrv.Close)
	cases := []struct {
		name, addr, peer string
	}{
		{"RESP error", lineServer(t, "-ERR Protocol error: unexpected byte \\x00 in an inline request\r\n"), "RESP"},
		// "+OK\r" reads as a length under the default frame limit: only
		// the small limit of the first frame makes it fail at once.
		{"RESP status", lineServer(t, "+OK\r\n"), "RESP"},
		{"RESP bulk", lineServer(t, "$5\r\nhello\r\n"), "RESP"},
		{"HTTP", httpSrv.Listener.Addr().String(), "HTTP"},
		// An alert record, as OpenSSL sends (Go's TLS servers hang up
		// without one).
		{"TLS", lineServer(t, "\x15\x03\x01\x00\x02\x02\x0a"), "TLS"},
		{"something else", lineServer(t, "220 mail.example.com ESMTP\r\n"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			conn, err := Dial(ctx, DialConfig{}, c.addr)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded")
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Dial took %v: the peer did not answer the Hello at once", took)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ProtocolError", err)
			}
			if pe.Peer != c.peer || pe.Addr != c.addr || len(pe.Got) == 0 {
				t.Errorf("got %+v, want peer %q at %s", pe, c.peer, c.addr)
			}
			if !errors.Is(err, ErrNotSent) {
				t.Errorf("got %v, want it to wrap ErrNotSent", err)
			}
			t.Log(err)
		})
	}
}

// TestDialHelloFailures checks the failures that are not another
// protocol's answer: a closed port, a peer that says nothing, and a
// version refused by a server of ours.
func TestDialHelloFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, err = Dial(context.Background(), DialConfig{}, closed)
	var pe *ProtocolError
	if !errors.Is(err, ErrNotSent) || errors.As(err, &pe) {
		t.Errorf("dial of a closed port: got %v, want ErrNotSent and no ProtocolError", err)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, DialConfig{}, silent.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &pe) {
		t.Errorf("dial of a silent peer: got %v, want the deadline and no ProtocolError", err)
	}

	// A server of ours that refuses the Hello answers with a frame.
	_, addr := startServer(t, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	buf, _ := wire.AppendMessage(nil, wire.KindHello, helloID, &wire.Hello{Version: wire.ProtocolVersion + 1})
	nc.Write(buf)
	f, err := wire.NewFrameReader(nc, 0).Next()
	if err != nil || f.ID != helloID || f.Kind != wire.KindError {
		t.Fatalf("reply to a Hello of another version: %+v, %v", f, err)
	}
	if pe := sniff(addr, buf[:0]); pe != nil {
		t.Errorf("sniff of nothing: %+v", pe)
	}
	if pe := sniff(addr, wire.AppendFrame(nil, wire.KindHello, helloID, []byte{0x80})); pe != nil {
		t.Errorf("sniff of a Hello reply: %+v", pe)
	}
}

// TestHelloIDHoldsLines checks what makes other servers answer at once:
// the Hello frame ends a line.
func TestHelloIDHoldsLines(t *testing.T) {
	buf, err := wire.AppendMessage(nil, wire.KindHello, helloID, &wire.Hello{Version: wire.ProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[5:13]); got != "\r\n\r\n\r\n\r\n" {
		t.Errorf("Hello ID bytes %q, want CRLF CRLF CRLF CRLF", got)
	}
}
