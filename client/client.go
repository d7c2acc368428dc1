package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Client is a smart client of one cluster. It is safe for concurrent use.
type Client struct {
	cfg    Config
	limits Limits
	log    *slog.Logger
	pool   *rpc.Pool
	meta   *rpc.MetaCaller

	cur atomic.Pointer[placement.Map]
	// One map pull at a time; callers that need one meanwhile wait for it,
	// each within its own deadline.
	flightMu sync.Mutex
	flight   *pullFlight

	// local serves, in-process, requests addressed to localAddr (the data
	// node of the process the client lives in).
	local     Local
	localAddr string

	closed atomic.Bool
}

// New returns a client for the cluster reachable through cfg.Seeds. It does
// not contact the cluster; the first call does.
func New(cfg Config) (*Client, error) {
	return newClient(cfg)
}

// NewWithNetwork is New with the connections dialed through network. It is
// meant for the zeppelin package and tests that inject faults.
func NewWithNetwork(cfg Config, network transport.Network) (*Client, error) {
	cfg.network = network
	return newClient(cfg)
}

// Local serves data requests in-process. The zeppelin package gives the
// client of a process its own data node, so calls to partitions that node
// masters skip the network (and the encoding) entirely.
type Local interface {
	// ServeLocal answers req of kind into resp (both the wire message
	// types of that kind) and reports whether it handled the kind.
	ServeLocal(ctx context.Context, kind wire.Kind, req, resp any) (bool, error)
}

// NewInProcess is NewWithNetwork for a client living in the process of a
// data node: requests to addr (the node's advertised address) go to local
// directly. Request slices are not retained once a call returns.
func NewInProcess(cfg Config, network transport.Network, addr string, local Local) (*Client, error) {
	c, err := NewWithNetwork(cfg, network)
	if err != nil {
		return nil, err
	}
	c.local, c.localAddr = local, addr
	return c, nil
}

// call sends one data request to the node at addr, in-process when that
// is this process's own node.
func (c *Client) call(ctx context.Context, addr string, kind wire.Kind, req, resp any) error {
	if c.local != nil && addr == c.localAddr {
		if ok, err := c.local.ServeLocal(ctx, kind, req, resp); ok {
			return err
		}
	}
	return c.pool.Call(ctx, addr, kind, req, resp)
}

func newClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits := cfg.Limits.WithDefaults()
	pool := rpc.NewPool(rpc.DialConfig{
		Network:  cfg.network,
		From:     cfg.Name,
		MaxFrame: frameLimit(limits),
	})
	return &Client{
		cfg:    cfg,
		limits: limits,
		log:    log,
		pool:   pool,
		meta:   rpc.NewMetaCaller(pool, cfg.Seeds),
	}, nil
}

// frameLimit is the largest frame the client accepts: room for a full
// multi-key reply at the configured limits, within sane bounds.
func frameLimit(l Limits) int {
	n := int64(l.MaxValueSize)*4 + int64(l.MaxKeySize)*int64(l.MaxMultiKeys) + 64<<20
	return int(min(max(n, 64<<20), 1<<30))
}

// Close closes every connection. Calls in flight fail; later calls return
// ErrClosed. It is idempotent.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.pool.Close()
}

// Limits returns the limits the client enforces.
func (c *Client) Limits() Limits { return c.limits }

// Table returns a handle on the table called name. It does not check that
// the table exists: operations on a missing table return ErrTableNotFound.
func (c *Client) Table(name string) *Table {
	return &Table{c: c, name: name}
}

// Map returns the client's current cluster map, pulling it first if the
// client has none. The returned map must not be modified.
func (c *Client) Map(ctx context.Context) (*placement.Map, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.mapFor(ctx)
}

// Refresh pulls the cluster map from the meta group now and returns it.
func (c *Client) Refresh(ctx context.Context) (*placement.Map, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var known placement.Epoch
	if m := c.cur.Load(); m != nil {
		known = m.Epoch
	}
	if err := c.refresh(ctx, known, known); err != nil {
		return nil, err
	}
	return c.cur.Load(), nil
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

func (c *Client) mapFor(ctx context.Context) (*placement.Map, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if m := c.cur.Load(); m != nil {
		return m, nil
	}
	if err := c.refresh(ctx, 0, 0); err != nil {
		return nil, err
	}
	return c.cur.Load(), nil
}

// pullFlight is a map pull in progress.
type pullFlight struct {
	done chan struct{}
	err  error
}

// refresh pulls the map unless one newer than seen has arrived meanwhile.
// It tries to reach at least epoch want, asking the leader when a follower
// answers with an older map. A caller that finds a pull in progress waits
// for it (or for its own ctx) instead of starting another.
func (c *Client) refresh(ctx context.Context, seen, want placement.Epoch) error {
	if m := c.cur.Load(); m != nil && m.Epoch > seen && m.Epoch >= want {
		return nil
	}
	c.flightMu.Lock()
	if f := c.flight; f != nil {
		c.flightMu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &pullFlight{done: make(chan struct{})}
	c.flight = f
	c.flightMu.Unlock()
	f.err = c.pull(ctx, want)
	c.flightMu.Lock()
	c.flight = nil
	c.flightMu.Unlock()
	close(f.done)
	return f.err
}

// pull fetches the map from the meta group, from the leader when a member
// answers with one older than want.
func (c *Client) pull(ctx context.Context, want placement.Epoch) error {
	for _, leaderOnly := range []bool{false, true} {
		var known placement.Epoch
		if m := c.cur.Load(); m != nil {
			known = m.Epoch
		}
		var reply wire.PullReply
		if err := c.meta.Call(ctx, leaderOnly, wire.KindMetaPull, &wire.PullRequest{Known: known}, &reply); err != nil {
			if c.closed.Load() {
				return ErrClosed
			}
			if errors.Is(err, rpc.ErrNoMeta) {
				return fmt.Errorf("%w: %w", ErrNoMeta, err)
			}
			return err
		}
		if reply.Map != nil {
			for {
				cur := c.cur.Load()
				if cur != nil && reply.Map.Epoch <= cur.Epoch {
					break
				}
				if c.cur.CompareAndSwap(cur, reply.Map) {
					c.meta.SetMembers(reply.Map.Meta)
					break
				}
			}
		}
		if m := c.cur.Load(); m != nil && m.Epoch >= want {
			return nil
		}
	}
	return nil
}

// errNoMaster is an internal marker: the map names no master for a
// partition.
var errNoMaster = errors.New("no master")

// errTableMissing is an internal marker: the map has no such table.
var errTableMissing = errors.New("table missing from map")

// do runs fn until it succeeds, a terminal error occurs, or ctx ends.
// fn gets the current map; it returns nil, a *wire.Error from a node, a
// connection error from rpc, errNoMaster/errTableMissing, or a terminal
// error. idempotent says whether fn may be repeated after the connection
// failed once its request was sent.
func (c *Client) do(ctx context.Context, idempotent bool, fn func(m *placement.Map) error) error {
	r := retrier{c: c, idempotent: idempotent}
	for {
		m, err := c.mapFor(ctx)
		if err != nil {
			return c.finalErr(ctx, err, r.last)
		}
		err = fn(m)
		if err == nil {
			return nil
		}
		wait, terminal := r.classify(ctx, m, err)
		if terminal != nil {
			return terminal
		}
		if err := r.pause(ctx, wait); err != nil {
			return err
		}
	}
}

// retrier holds the state of one call's retries.
type retrier struct {
	c          *Client
	idempotent bool
	backoff    time.Duration
	triedTable bool
	waits      int
	last       error
}

// classify handles one failed attempt made with map m. It returns a
// terminal error to give the caller, or whether to back off before the next
// attempt (false: retry at once, the map was refreshed).
func (r *retrier) classify(ctx context.Context, m *placement.Map, err error) (wait bool, terminal error) {
	c := r.c
	if c.closed.Load() {
		return false, ErrClosed
	}
	r.last = err
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		switch we.Code {
		case wire.CodeMoved, wire.CodeTableNotFound:
			if we.Epoch > m.Epoch {
				// The node knows a newer map: follow at once.
				_ = c.refresh(ctx, m.Epoch, we.Epoch)
				return false, nil
			}
			if we.Code == wire.CodeTableNotFound && we.Epoch == m.Epoch {
				// The node and we agree: the table is gone.
				if r.triedTable {
					return false, fromWire(we)
				}
				r.triedTable = true
				_ = c.refresh(ctx, m.Epoch, 0)
				return false, nil
			}
			// The node lags behind our map: give it a moment.
			return true, nil
		case wire.CodeWait, wire.CodeStaleEpoch, wire.CodeNotEnoughReplicas, wire.CodeTimeout:
			// A node that keeps asking to wait may have been replaced
			// without knowing it (cut off from the meta group): look at
			// the map now and then.
			r.waits++
			if r.waits%4 == 0 {
				_ = c.refresh(ctx, m.Epoch, 0)
			}
			return true, nil
		case wire.CodeClosed, wire.CodeUnavailable:
			_ = c.refresh(ctx, m.Epoch, 0)
			return true, nil
		}
		return false, fromWire(we)
	case errors.Is(err, errTableMissing):
		if r.triedTable {
			return false, fmt.Errorf("%w: %s", ErrTableNotFound, tableOf(err))
		}
		r.triedTable = true
		_ = c.refresh(ctx, m.Epoch, 0)
		return false, nil
	case errors.Is(err, errNoMaster), errors.Is(err, rpc.ErrNotSent):
		_ = c.refresh(ctx, m.Epoch, 0)
		return true, nil
	case errors.Is(err, rpc.ErrConnLost):
		if !r.idempotent {
			return false, fmt.Errorf("%w: %w", ErrAmbiguous, err)
		}
		_ = c.refresh(ctx, m.Epoch, 0)
		return true, nil
	case errors.Is(err, rpc.ErrClosed):
		return false, ErrClosed
	case ctx.Err() != nil:
		return false, c.finalErr(ctx, ctx.Err(), r.last)
	}
	return false, err
}

// pause waits before the next attempt when wait is set, with exponential
// backoff and jitter; it returns the final error when ctx ends.
func (r *retrier) pause(ctx context.Context, wait bool) error {
	if ctx.Err() != nil {
		return r.c.finalErr(ctx, ctx.Err(), r.last)
	}
	if !wait {
		return nil
	}
	if r.backoff == 0 {
		r.backoff = time.Millisecond
	}
	d := r.backoff/2 + rand.N(r.backoff/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return r.c.finalErr(ctx, ctx.Err(), r.last)
	case <-t.C:
	}
	r.backoff = min(2*r.backoff, 50*time.Millisecond)
	return nil
}

// finalErr builds the error returned when ctx ended: it wraps the context's
// error and what the last attempt ran into.
func (c *Client) finalErr(ctx context.Context, err, last error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if last == nil || errors.Is(err, last) {
		return err
	}
	var cause error
	var we *wire.Error
	switch {
	case errors.Is(last, errNoMaster):
		cause = fmt.Errorf("%w: %w", ErrUnavailable, last)
	case errors.As(last, &we):
		switch we.Code {
		case wire.CodeWait:
			cause = fmt.Errorf("%w: kept waiting: %s", ErrUnavailable, we.Msg)
		case wire.CodeMoved, wire.CodeTableNotFound, wire.CodeStaleEpoch, wire.CodeClosed:
			cause = fmt.Errorf("%w: %w", ErrUnavailable, we)
		default:
			cause = fromWire(we)
		}
	case rpc.IsConnError(last):
		cause = fmt.Errorf("%w: %w", ErrUnavailable, last)
	default:
		cause = last
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), cause)
	}
	return fmt.Errorf("%w: %w", err, cause)
}

type tableErr struct{ name string }

func (e tableErr) Error() string { return "table " + e.name + " missing from map" }
func (e tableErr) Unwrap() error { return errTableMissing }

func tableOf(err error) string {
	var te tableErr
	if errors.As(err, &te) {
		return te.name
	}
	return ""
}

// route returns the table and the master address of partition part.
func route(m *placement.Map, name string, part placement.PartitionID) (*placement.Table, string, error) {
	t := m.Table(name)
	if t == nil {
		return nil, "", tableErr{name}
	}
	if int(part) >= len(t.Partitions) {
		// The table was dropped and created again, smaller, meanwhile.
		return t, "", fmt.Errorf("zeppelin: table %s has %d partitions now, no partition %d", name, len(t.Partitions), part)
	}
	p := &t.Partitions[part]
	if p.Master == "" {
		return t, "", fmt.Errorf("table %s partition %d: %w", name, part, errNoMaster)
	}
	addr := m.NodeAddr(p.Master)
	if addr == "" {
		return t, "", fmt.Errorf("table %s partition %d: master %s has no address: %w", name, part, p.Master, errNoMaster)
	}
	return t, addr, nil
}
