package run

import (
	"context"
	"sync"
	"sync/atomic"
)

// Group is a set of goroutines with one owner. The zero value is ready to
// use. A Group must not be copied after first use.
type Group struct {
	mu      sync.Mutex
	stopped atomic.Bool   // set under mu; read without it
	done    chan struct{} // created on first use, closed by Stop
	wg      sync.WaitGroup
}

// Go runs f in a new goroutine and reports true, unless Stop has been
// called: then it starts nothing and reports false. Wait waits for f to
// return.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped.Load() {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Stop begins shutdown: from now on Go starts nothing, and the channel
// returned by Done is closed. It does not wait (see Wait). It reports
// whether this call stopped the group; later calls do nothing and report
// false.
func (g *Group) Stop() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped.Load() {
		return false
	}
	g.stopped.Store(true)
	if g.done == nil {
		g.done = make(chan struct{})
	}
	close(g.done)
	return true
}

// Stopped reports whether Stop has been called. It takes no lock.
func (g *Group) Stopped() bool { return g.stopped.Load() }

// Done returns the group's quit channel, closed by Stop.
func (g *Group) Done() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done == nil {
		g.done = make(chan struct{})
	}
	return g.done
}

// Wait waits until every goroutine started by Go has returned. Call it
// after Stop: before, goroutines may still be starting while it waits.
func (g *Group) Wait() { g.wg.Wait() }

// Context returns a copy of parent that is also cancelled when Stop is
// called. The caller must call cancel once done with it. It watches the
// quit channel from a goroutine of the group, which ends with the returned
// context; after Stop the context comes back already cancelled.
func (g *Group) Context(parent context.Context) (ctx context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(parent)
	done := g.Done()
	if !g.Go(func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}) {
		cancel()
	}
	return ctx, cancel
}
