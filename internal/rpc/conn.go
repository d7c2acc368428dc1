package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// DialConfig configures outgoing connections.
type DialConfig struct {
	// Network dials (TCP when nil).
	Network transport.Network
	// From names this process in Hello (a node ID, or empty for clients).
	From string
	// MaxFrame bounds incoming frames (wire.DefaultMaxFrame when 0).
	MaxFrame int
	// Node says this process dials as the cluster node From (a data node
	// or meta member), which node-only requests need; clients leave it
	// false.
	Node bool
	// Keyring, when it holds secrets, authenticates every connection
	// with them: the dialer proves it knows one the server accepts and
	// the server proves it knows the same one; a server that does not
	// authenticate is refused.
	Keyring *auth.Keyring
	// User and Password authenticate as a user instead (SCRAM-SHA-256:
	// the password never crosses the wire).
	User, Password string
}

// Conn is a client connection multiplexing concurrent calls. It is safe for
// concurrent use.
type Conn struct {
	nc    net.Conn
	addr  string
	hello wire.HelloReply

	nextID atomic.Uint64
	out    chan []byte

	mu      sync.Mutex
	pending map[uint64]chan wire.Frame
	err     error // set once, before done is closed

	done  chan struct{}
	group run.Group // the read and write loops

	// idleAfter is how long the connection may stay unused before Pool
	// closes it rather than use it, ahead of the server's idle timeout
	// (0: never); lastUse is when a call last started or ended, in
	// UnixNano.
	idleAfter time.Duration
	lastUse   atomic.Int64
}

// helloID is the request ID of the Hello that opens a connection. Its
// bytes are "\r\n\r\n\r\n\r\n", so the Hello holds complete lines: a
// line-oriented server dialed by mistake (an HTTP or a RESP port) answers
// it at once, with an error of its own protocol, instead of waiting for
// the rest of a line, and Dial reports what answered (ProtocolError).
// Calls number their requests from 1 and never reach it.
const helloID uint64 = 0x0d0a0d0a0d0a0d0a

// Dial connects to addr and exchanges Hello. When the peer answers in
// another protocol the error wraps ErrNotSent and a *ProtocolError.
func Dial(ctx context.Context, cfg DialConfig, addr string) (*Conn, error) {
	nc, err := transport.OrTCP(cfg.Network).Dial(ctx, addr)
	if err != nil {
		var te *transport.TLSError
		if errors.As(err, &te) {
			return nil, &AuthError{Addr: addr, Reason: te.Reason()}
		}
		return nil, fmt.Errorf("%w: dial %s: %w", ErrNotSent, addr, err)
	}
	c := &Conn{
		nc:      nc,
		addr:    addr,
		out:     make(chan []byte, 1024),
		pending: make(map[uint64]chan wire.Frame),
		done:    make(chan struct{}),
	}
	// Until the Hello reply has come only small frames are accepted, as
	// the server does: bytes of another protocol read as a huge length.
	first := &firstBytes{r: nc}
	fr := wire.NewFrameReader(first, helloMaxFrame)
	c.group.Go(func() { c.readLoop(fr, cfg.MaxFrame) })
	c.group.Go(c.writeLoop)
	hello := wire.Hello{Version: wire.ProtocolVersion, From: cfg.From, Node: cfg.Node}
	if cfg.Keyring.Len() > 0 || cfg.User != "" {
		hello.Nonce, hello.User = auth.Nonce(), cfg.User
	}
	f, err := c.roundTrip(ctx, helloID, wire.KindHello, &hello)
	if err == nil {
		err = c.dialAuth(ctx, cfg, hello, f)
	}
	if err != nil {
		c.Close() // the read loop has ended: first is ours to read
		var we *wire.Error
		var ae *AuthError
		switch {
		case errors.As(err, &ae):
			return nil, err
		case transport.IsTLSPeerRefusal(err):
			return nil, &AuthError{Addr: addr, Reason: fmt.Sprintf("the server at %s refused this process's TLS certificate: %v", addr, err)}
		}
		if pe := sniff(addr, first.buf); pe != nil && !errors.As(err, &we) {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, pe)
		}
		if errors.As(err, &we) && we.Code == wire.CodeUnauthenticated {
			// Refused before any challenge: the server wants
			// credentials this dialer lacks.
			return nil, &AuthError{Addr: addr, Reason: fmt.Sprintf("the server at %s refused the connection: %s", addr, we.Msg)}
		}
		if errors.Is(err, ErrConnLost) {
			// Nothing but the hello was sent.
			err = fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return nil, fmt.Errorf("hello %s: %w", addr, err)
	}
	if c.hello.IdleMs > 0 {
		c.idleAfter = time.Duration(c.hello.IdleMs) * time.Millisecond * 3 / 4
	}
	c.touch()
	return c, nil
}

// touch records that the connection is in use.
func (c *Conn) touch() { c.lastUse.Store(time.Now().UnixNano()) }

// closeIfIdle closes the connection when it has nothing in flight and
// has not been used for longer than the server lets it idle (less a
// margin), and reports whether it did. Pool calls it before handing the
// connection out, so that the server's idle timeout never closes a
// connection a call is being sent on.
func (c *Conn) closeIfIdle() bool {
	if c.idleAfter <= 0 {
		return false
	}
	c.mu.Lock()
	idle := c.pending != nil && len(c.pending) == 0 &&
		time.Since(time.Unix(0, c.lastUse.Load())) > c.idleAfter
	c.mu.Unlock()
	if idle {
		c.Close()
	}
	return idle
}

// roundTrip sends req with kind and request ID id and returns the reply
// frame, whatever its kind (a KindError reply is returned as a
// *wire.Error).
func (c *Conn) roundTrip(ctx context.Context, id uint64, kind wire.Kind, req any) (wire.Frame, error) {
	var f wire.Frame
	err := c.call(ctx, id, kind, req, &f)
	return f, err
}

// ProtocolError is returned by Dial when the peer answered the Hello with
// bytes that are no frame of this protocol: the address is another kind of
// server's, or another port of a Zeppelin process (its RESP or HTTP
// listener).
type ProtocolError struct {
	// Addr is the address dialed.
	Addr string
	// Peer names the protocol the answer looks like: "RESP", "HTTP",
	// "TLS" or "SSH"; empty when it is not recognised.
	Peer string
	// Got holds the first bytes of the answer.
	Got []byte
}

func (e *ProtocolError) Error() string {
	what := map[string]string{
		"RESP": "a Redis server (RESP)", "HTTP": "an HTTP server", "TLS": "a TLS server", "SSH": "an SSH server",
	}[e.Peer]
	if what == "" {
		line, _, _ := bytes.Cut(e.Got, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return fmt.Sprintf("rpc: %s answered %s, not like a Zeppelin RPC port", e.Addr, strconv.QuoteToASCII(string(line)))
	}
	return fmt.Sprintf("rpc: %s answered like %s, not a Zeppelin RPC port", e.Addr, what)
}

// sniffLen bounds the bytes firstBytes keeps.
const sniffLen = 128

// firstBytes is a reader that keeps the first sniffLen bytes read through
// it, for Dial to tell what answered a Hello that failed.
type firstBytes struct {
	r   io.Reader
	buf []byte
}

func (f *firstBytes) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if k := min(n, sniffLen-len(f.buf)); k > 0 {
		f.buf = append(f.buf, p[:k]...)
	}
	return n, err
}

// sniff returns the ProtocolError of a peer whose first bytes were got,
// or nil when they are empty or start like a reply frame of ours.
func sniff(addr string, got []byte) *ProtocolError {
	if len(got) == 0 {
		return nil
	}
	if got[0] == 0 {
		// A length below 16 MiB: ours unless the header says otherwise.
		if len(got) < wire.HeaderSize {
			return nil
		}
		n, kind := binary.BigEndian.Uint32(got), wire.Kind(got[4])
		if n >= 9 && n <= helloMaxFrame && (kind == wire.KindHello || kind == wire.KindError) {
			return nil
		}
	}
	pe := &ProtocolError{Addr: addr, Got: bytes.Clone(got)}
	digit := func(b byte) bool { return b >= '0' && b <= '9' }
	letter := func(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' }
	switch {
	case bytes.HasPrefix(got, []byte("HTTP/")):
		pe.Peer = "HTTP"
	case bytes.HasPrefix(got, []byte("SSH-")):
		pe.Peer = "SSH"
	case len(got) >= 2 && got[0] == 0x15 && got[1] == 0x03: // an alert record
		pe.Peer = "TLS"
	case len(got) >= 2 && (got[0] == '-' || got[0] == '+') && letter(got[1]),
		len(got) >= 2 && (got[0] == ':' || got[0] == '$' || got[0] == '*') && (digit(got[1]) || got[1] == '-'):
		pe.Peer = "RESP"
	}
	return pe
}

// Hello returns the peer's answer to Hello.
func (c *Conn) Hello() wire.HelloReply { return c.hello }

// Addr returns the address the connection was dialed to.
func (c *Conn) Addr() string { return c.addr }

// Done is closed when the connection has failed or been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is alive.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection and waits for its goroutines. Calls in flight
// fail with ErrConnLost. It is idempotent.
func (c *Conn) Close() error {
	c.shutdown(ErrClosed)
	c.group.Stop()
	c.group.Wait()
	return nil
}

func (c *Conn) shutdown(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	_ = c.nc.Close()
}

// Call sends req with kind and decodes the reply into resp (which may be nil
// to discard it). A reply of kind KindError is returned as a *wire.Error.
func (c *Conn) Call(ctx context.Context, kind wire.Kind, req, resp any) error {
	return c.call(ctx, c.nextID.Add(1), kind, req, resp)
}

// CallWithAbort is Call that also gives up, with ErrAborted, once abort is
// closed (a nil abort never is). What an abandoned request did is unknown.
func (c *Conn) CallWithAbort(ctx context.Context, abort <-chan struct{}, kind wire.Kind, req, resp any) error {
	return c.callAbort(ctx, abort, c.nextID.Add(1), kind, req, resp)
}

// call is Call with the request ID given.
func (c *Conn) call(ctx context.Context, id uint64, kind wire.Kind, req, resp any) error {
	return c.callAbort(ctx, nil, id, kind, req, resp)
}

func (c *Conn) callAbort(ctx context.Context, abort <-chan struct{}, id uint64, kind wire.Kind, req, resp any) error {
	buf, err := wire.AppendMessage(nil, kind, id, req)
	if err != nil {
		return err
	}
	ch := make(chan wire.Frame, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%w: %s: %w", ErrNotSent, c.addr, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	c.touch()

	select {
	case c.out <- buf:
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	case <-abort:
		c.forget(id)
		return fmt.Errorf("%w: %s", ErrAborted, c.addr)
	case <-c.done:
		return fmt.Errorf("%w: %s: %w", ErrNotSent, c.addr, c.err)
	}

	select {
	case f := <-ch:
		return c.decodeReply(kind, f, resp)
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	case <-abort:
		c.forget(id)
		return fmt.Errorf("%w: %s", ErrAborted, c.addr)
	case <-c.done:
		// The reply may have arrived just before the connection ended.
		select {
		case f := <-ch:
			return c.decodeReply(kind, f, resp)
		default:
		}
		return fmt.Errorf("%w: %s: %w", ErrConnLost, c.addr, c.err)
	}
}

// decodeReply turns a reply frame into resp or the error it carries. A
// *wire.Frame resp takes the frame as it is, whatever its kind.
func (c *Conn) decodeReply(kind wire.Kind, f wire.Frame, resp any) error {
	c.touch()
	if f.Kind == wire.KindError {
		var we wire.Error
		if err := wire.Unmarshal(f.Body, &we); err != nil {
			return err
		}
		return &we
	}
	if fp, ok := resp.(*wire.Frame); ok {
		*fp = f
		return nil
	}
	if f.Kind != kind {
		return fmt.Errorf("rpc: %s answered %v with %v", c.addr, kind, f.Kind)
	}
	if resp == nil {
		return nil
	}
	return wire.Unmarshal(f.Body, resp)
}

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	if c.pending != nil {
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// readLoop delivers replies; the Hello reply (after the challenge of an
// authenticating server) lifts fr's limit to maxFrame.
func (c *Conn) readLoop(fr *wire.FrameReader, maxFrame int) {
	for opening := true; ; {
		f, err := fr.Next()
		if err != nil {
			c.shutdown(fmt.Errorf("read: %w", err))
			return
		}
		if opening && f.Kind != wire.KindAuth {
			fr.SetMax(maxFrame)
			opening = false
		}
		c.mu.Lock()
		ch := c.pending[f.ID]
		if ch != nil {
			delete(c.pending, f.ID)
		}
		c.mu.Unlock()
		if ch != nil {
			ch <- f
		} else if f.ID == 0 && f.Kind == wire.KindError {
			// A connection-level error from the server: it closes next.
			var we wire.Error
			if wire.Unmarshal(f.Body, &we) == nil {
				c.shutdown(&we)
				return
			}
		}
	}
}

func (c *Conn) writeLoop() {
	if err := pump(c.out, c.done, newCoalescer(c.nc)); err != nil {
		c.shutdown(err)
	}
}
