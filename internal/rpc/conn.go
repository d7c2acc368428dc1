package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

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
}

// Dial connects to addr and exchanges Hello.
func Dial(ctx context.Context, cfg DialConfig, addr string) (*Conn, error) {
	nc, err := transport.OrTCP(cfg.Network).Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrNotSent, addr, err)
	}
	c := &Conn{
		nc:      nc,
		addr:    addr,
		out:     make(chan []byte, 1024),
		pending: make(map[uint64]chan wire.Frame),
		done:    make(chan struct{}),
	}
	fr := wire.NewFrameReader(nc, cfg.MaxFrame)
	c.group.Go(func() { c.readLoop(fr) })
	c.group.Go(c.writeLoop)
	if err := c.Call(ctx, wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion, From: cfg.From}, &c.hello); err != nil {
		c.Close()
		if errors.Is(err, ErrConnLost) {
			// Nothing but the hello was sent.
			err = fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return nil, fmt.Errorf("hello %s: %w", addr, err)
	}
	return c, nil
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
	id := c.nextID.Add(1)
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

	select {
	case c.out <- buf:
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("%w: %s: %w", ErrNotSent, c.addr, c.err)
	}

	select {
	case f := <-ch:
		return c.decodeReply(kind, f, resp)
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
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

// decodeReply turns a reply frame into resp or the error it carries.
func (c *Conn) decodeReply(kind wire.Kind, f wire.Frame, resp any) error {
	if f.Kind == wire.KindError {
		var we wire.Error
		if err := wire.Unmarshal(f.Body, &we); err != nil {
			return err
		}
		return &we
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

func (c *Conn) readLoop(fr *wire.FrameReader) {
	for {
		f, err := fr.Next()
		if err != nil {
			c.shutdown(fmt.Errorf("read: %w", err))
			return
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
