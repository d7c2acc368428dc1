package rpc

import (
	"context"
	"errors"
	"sync"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// Pool keeps one Conn per address, dialing on first use and again after a
// connection fails. It is safe for concurrent use.
type Pool struct {
	cfg DialConfig

	mu     sync.Mutex
	closed bool
	conns  map[string]*poolEntry
}

type poolEntry struct {
	ready chan struct{} // closed when dialing finished
	conn  *Conn
	err   error
}

// NewPool returns an empty pool dialing with cfg.
func NewPool(cfg DialConfig) *Pool {
	return &Pool{cfg: cfg, conns: make(map[string]*poolEntry)}
}

// Get returns a live connection to addr, dialing when needed. Concurrent
// callers share one dial.
func (p *Pool) Get(ctx context.Context, addr string) (*Conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		e, ok := p.conns[addr]
		if !ok {
			e = &poolEntry{ready: make(chan struct{})}
			p.conns[addr] = e
			p.mu.Unlock()
			e.conn, e.err = Dial(ctx, p.cfg, addr)
			p.mu.Lock()
			if e.err != nil || p.closed {
				if p.conns[addr] == e {
					delete(p.conns, addr)
				}
			}
			closed := p.closed
			p.mu.Unlock()
			close(e.ready)
			if closed && e.conn != nil {
				e.conn.Close()
				return nil, ErrClosed
			}
			return e.conn, e.err
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			// The dial another caller made failed; try our own.
			if ctx.Err() != nil {
				return nil, e.err
			}
			p.drop(addr, e)
			continue
		}
		if e.conn.Err() != nil || e.conn.closeIfIdle() {
			p.drop(addr, e)
			continue
		}
		return e.conn, nil
	}
}

func (p *Pool) drop(addr string, e *poolEntry) {
	p.mu.Lock()
	if p.conns[addr] == e {
		delete(p.conns, addr)
	}
	p.mu.Unlock()
	if e.conn != nil {
		e.conn.Close()
	}
}

// Call sends one request to addr over the pooled connection.
func (p *Pool) Call(ctx context.Context, addr string, kind wire.Kind, req, resp any) error {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return err
	}
	return c.Call(ctx, kind, req, resp)
}

// CallWithAbort is Call that gives up with ErrAborted once abort is closed
// (see Conn.CallWithAbort).
func (p *Pool) CallWithAbort(ctx context.Context, abort <-chan struct{}, addr string, kind wire.Kind, req, resp any) error {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return err
	}
	return c.CallWithAbort(ctx, abort, kind, req, resp)
}

// Forget closes and removes the connection to addr, if any.
func (p *Pool) Forget(addr string) {
	p.mu.Lock()
	e := p.conns[addr]
	delete(p.conns, addr)
	p.mu.Unlock()
	if e != nil {
		<-e.ready
		if e.conn != nil {
			e.conn.Close()
		}
	}
}

// Close closes every connection. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	entries := make([]*poolEntry, 0, len(p.conns))
	for _, e := range p.conns {
		entries = append(entries, e)
	}
	clear(p.conns)
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			errs = append(errs, e.conn.Close())
		}
	}
	return errors.Join(errs...)
}
