package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// rerouter watches a client's remote calls while they wait for their
// replies (Config.RerouteAfter). Calls register on their way out; one
// goroutine, started with the first call and stopped by Close, wakes every
// RerouteAfter, and when some call has waited that long it pulls the map
// once and abandons every such call whose partitions are no longer
// mastered where it was sent. A call is thus looked at between one and two
// RerouteAfter after it was sent, and again every RerouteAfter. A timer and
// a cancellable context per call cost a loaded client a tenth of its CPU.
type rerouter struct {
	c     *Client
	every time.Duration

	shards [rerouteShards]rerouteShard
	next   atomic.Uint32 // spreads calls over the shards

	// once starts the loop, or, run by close first, keeps it from
	// starting. ctx ends (stop) with close; done is closed once the loop
	// has returned (or by close when it never started).
	once sync.Once
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
}

const rerouteShards = 8

type rerouteShard struct {
	mu    sync.Mutex
	calls map[*waitingCall]struct{}
}

// waitingCall is a remote call the rerouter watches.
type waitingCall struct {
	addr  string
	req   any
	sent  time.Time
	shard *rerouteShard
	// abort is closed, once, when the call is to be abandoned; aborted
	// (under the shard's lock) says it was.
	abort   chan struct{}
	aborted bool
}

func newRerouter(c *Client, every time.Duration) *rerouter {
	r := &rerouter{c: c, every: every, done: make(chan struct{})}
	r.ctx, r.stop = context.WithCancel(context.Background())
	for i := range r.shards {
		r.shards[i].calls = make(map[*waitingCall]struct{})
	}
	return r
}

// watch registers a call to addr carrying req; the caller passes w.abort
// to the call and calls done when it returns.
func (r *rerouter) watch(addr string, req any) *waitingCall {
	r.once.Do(r.start)
	sh := &r.shards[r.next.Add(1)%rerouteShards]
	w := &waitingCall{addr: addr, req: req, sent: time.Now(), shard: sh, abort: make(chan struct{})}
	sh.mu.Lock()
	sh.calls[w] = struct{}{}
	sh.mu.Unlock()
	return w
}

// done unregisters w and reports whether it was abandoned.
func (w *waitingCall) done() (aborted bool) {
	w.shard.mu.Lock()
	delete(w.shard.calls, w)
	aborted = w.aborted
	w.shard.mu.Unlock()
	return aborted
}

func (r *rerouter) start() { go r.loop() }

// close stops the loop and waits for it.
func (r *rerouter) close() {
	r.stop()
	r.once.Do(func() { close(r.done) }) // never started: nothing to wait for
	<-r.done
}

func (r *rerouter) loop() {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	var due []*waitingCall
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		due = r.due(due[:0], time.Now().Add(-r.every))
		if len(due) > 0 {
			r.check(due)
			clear(due)
		}
	}
}

// due appends the calls sent before cutoff and not yet abandoned.
func (r *rerouter) due(out []*waitingCall, cutoff time.Time) []*waitingCall {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for w := range sh.calls {
			if !w.aborted && w.sent.Before(cutoff) {
				out = append(out, w)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// check pulls the map and abandons the calls of due whose partitions have
// moved from the address they were sent to.
func (r *rerouter) check(due []*waitingCall) {
	ctx, cancel := context.WithTimeout(r.ctx, r.every)
	defer cancel()
	var seen placement.Epoch
	if m := r.c.cur.Load(); m != nil {
		seen = m.Epoch
	}
	_ = r.c.refresh(ctx, seen, 0)
	m := r.c.cur.Load()
	if m == nil {
		return
	}
	for _, w := range due {
		if routedTo(m, w.addr, w.req) {
			continue
		}
		w.shard.mu.Lock()
		if !w.aborted {
			w.aborted = true
			close(w.abort)
		}
		w.shard.mu.Unlock()
	}
}
