package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callCtx is the context of one call under the client's timeout (see
// Client.withTimeout). It reports its deadline from the start, but arms
// the timer that enforces it, and registers with its parent for
// cancellation, only once something asks for Done, or asks for Err after
// the parent ended, the deadline passed or the call returned. A call its
// process's own data node answers without waiting (a read of a partition
// it masters, say) then costs neither a timer nor a child of the parent.
// Until armed it answers Value from its parent; once armed, from the
// armed context, whose own values are its parent's.
type callCtx struct {
	parent   context.Context
	deadline time.Time

	// armed is set once ctx and cancel, the context that enforces the
	// deadline, are: a reader that sees it set may use them.
	armed    atomic.Bool
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex // serializes arming and release
	released bool       // the call returned: the context is cancelled
}

func newCallCtx(parent context.Context, timeout time.Duration) *callCtx {
	return &callCtx{parent: parent, deadline: time.Now().Add(timeout)}
}

// Deadline implements context.Context.
func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context; it arms the deadline.
func (c *callCtx) Done() <-chan struct{} { return c.arm().Done() }

// Err implements context.Context. Unarmed, it is nil while the parent is
// live, the deadline ahead and the call running; otherwise it arms the
// context (whose Done is then closed, or soon will be) and returns its
// error.
func (c *callCtx) Err() error {
	if c.armed.Load() {
		return c.ctx.Err()
	}
	c.mu.Lock()
	released := c.released
	c.mu.Unlock()
	if !released && c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return nil
	}
	return c.arm().Err()
}

// Value implements context.Context.
func (c *callCtx) Value(key any) any {
	if c.armed.Load() {
		return c.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// arm returns the context that enforces the deadline, creating it on first
// use (already cancelled when the call has returned).
func (c *callCtx) arm() context.Context {
	if c.armed.Load() {
		return c.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Load() {
		return c.ctx
	}
	c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	if c.released {
		c.cancel()
	}
	c.armed.Store(true)
	return c.ctx
}

// release ends the call: it cancels the context, and stops its timer if it
// was armed. It does nothing on a nil *callCtx (a call bounded by its
// caller's deadline).
func (c *callCtx) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.released = true
	armed := c.armed.Load()
	c.mu.Unlock()
	if armed {
		c.cancel()
	}
}
