package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
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
	limits wire.Limits // with defaults applied
	log    *slog.Logger
	pool   *rpc.Pool
	meta   *rpc.MetaCaller

	cur atomic.Pointer[placement.Map]
	// One map pull at a time; callers that need one meanwhile wait for it,
	// each within its own deadline.
	flightMu sync.Mutex
	flight   *pullFlight
	// testHookJoined, when set, runs when a refresh joins another's pull.
	testHookJoined func()

	// writes tracks the client's writes for WaitReplicas.
	writes *Writes

	// local serves, in-process, requests addressed to localAddr (the data
	// node of the process the client lives in).
	local     Local
	localAddr string

	// reroute watches remote calls while they wait (nil when
	// RerouteAfter is negative).
	reroute *rerouter

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
	// ServeLocal answers req into resp and reports whether it handled
	// req. Both are pointers to messages of the cluster's internal
	// protocol: a data request (a write, a read or a list) and its reply.
	ServeLocal(ctx context.Context, req, resp any) (bool, error)
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
		if ok, err := c.local.ServeLocal(ctx, req, resp); ok {
			if err == nil && kind == wire.KindWrite {
				c.noteWrite(ctx, req.(*wire.WriteRequest), resp.(*wire.WriteReply))
			}
			return err
		}
	}
	sent := time.Now()
	if err := c.callRemote(ctx, addr, kind, req, resp); err != nil {
		return err
	}
	// A fenced master's reply is good only if it arrived before the lease
	// it reported ran out: a master paused after answering (or whose
	// answer was held up) may have been replaced meanwhile, and what it
	// acknowledged may be lost.
	if lease := replyLease(resp); lease > 0 {
		if took := time.Since(sent); took >= time.Duration(lease)*time.Millisecond {
			return fmt.Errorf("%w: %s answered %v after the request was sent, past the %d ms left of its master lease",
				errLateReply, addr, took.Round(time.Millisecond), lease)
		}
	}
	if kind == wire.KindWrite {
		c.noteWrite(ctx, req.(*wire.WriteRequest), resp.(*wire.WriteReply))
	}
	return nil
}

// errLateReply marks a reply that arrived too late to be trusted. It counts
// as a connection lost after the request was sent: repeated when that is
// harmless, ErrAmbiguous otherwise.
var errLateReply = fmt.Errorf("%w: late reply", rpc.ErrConnLost)

// errRerouted marks a request abandoned because its partition moved while
// it waited for the reply; like errLateReply, its outcome is unknown.
var errRerouted = fmt.Errorf("%w: the partition moved while the request waited", rpc.ErrConnLost)

// replyLease returns the master lease a data reply reports (0: none).
func replyLease(resp any) int64 {
	switch r := resp.(type) {
	case *wire.WriteReply:
		return r.LeaseMs
	case *wire.ReadReply:
		return r.LeaseMs
	case *wire.ListReply:
		return r.LeaseMs
	}
	return 0
}

// callRemote sends a data request over the network. While the reply is
// outstanding the client looks at the map every RerouteAfter; once a
// partition of the request is no longer mastered at addr, it abandons the
// request (reroute.go).
func (c *Client) callRemote(ctx context.Context, addr string, kind wire.Kind, req, resp any) error {
	if c.reroute == nil {
		return c.pool.Call(ctx, addr, kind, req, resp)
	}
	w := c.reroute.watch(addr, req)
	err := c.pool.CallWithAbort(ctx, w.abort, addr, kind, req, resp)
	if w.done() && errors.Is(err, rpc.ErrAborted) {
		return fmt.Errorf("%w (request to %s)", errRerouted, addr)
	}
	return err
}

// routedTo reports whether every partition that req (a data request)
// addresses is mastered by the node at addr in m.
func routedTo(m *placement.Map, addr string, req any) bool {
	check := func(table placement.TableID, parts ...placement.PartitionID) bool {
		t := m.TableByID(table)
		if t == nil {
			return false
		}
		for _, p := range parts {
			if int(p) >= len(t.Partitions) || m.NodeAddr(t.Partitions[p].Master) != addr {
				return false
			}
		}
		return true
	}
	switch r := req.(type) {
	case *wire.WriteRequest:
		for _, g := range r.Groups {
			if !check(r.Table, g.Partition) {
				return false
			}
		}
		return true
	case *wire.ReadRequest:
		for _, k := range r.Keys {
			if !check(r.Table, k.Partition) {
				return false
			}
		}
		return true
	case *wire.ListRequest:
		return check(r.Table, r.Partition)
	}
	return true
}

func newClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RerouteAfter == 0 {
		cfg.RerouteAfter = DefaultRerouteAfter
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits := cfg.Limits.toWire().WithDefaults()
	dc, err := cfg.dialConfig(limits)
	if err != nil {
		return nil, err
	}
	pool := rpc.NewPool(dc)
	c := &Client{
		writes: NewWrites(),
		cfg:    cfg,
		limits: limits,
		log:    log,
		pool:   pool,
		meta:   rpc.NewMetaCaller(pool, cfg.Seeds),
	}
	if cfg.RerouteAfter > 0 {
		c.reroute = newRerouter(c, cfg.RerouteAfter)
	}
	return c, nil
}

// Close closes every connection. Calls in flight fail; later calls return
// ErrClosed. It is idempotent.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.reroute != nil {
		c.reroute.close()
	}
	return c.pool.Close()
}

// Limits returns the limits the client enforces.
func (c *Client) Limits() Limits { return limitsFromWire(c.limits) }

// Table returns a handle on the table called name. It does not check that
// the table exists: operations on a missing table return ErrTableNotFound.
func (c *Client) Table(name string) *Table {
	return &Table{c: c, name: name}
}

// Map returns the client's current cluster map, pulling it first if the
// client has none. The returned map must not be modified.
func (c *Client) Map(ctx context.Context) (*placement.Map, error) {
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	return c.mapFor(ctx)
}

// Refresh pulls the cluster map from the meta group now and returns it.
func (c *Client) Refresh(ctx context.Context) (*placement.Map, error) {
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	var known placement.Epoch
	if m := c.cur.Load(); m != nil {
		known = m.Epoch
	}
	if err := c.refresh(ctx, known, known); err != nil {
		return nil, err
	}
	return c.cur.Load(), nil
}

// withTimeout bounds a call by the client's timeout unless ctx has a
// deadline of its own (then the *callCtx is nil). The caller releases it
// when the call returns. Its timer is armed lazily: most calls never wait
// on it.
func (c *Client) withTimeout(ctx context.Context) (context.Context, *callCtx) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, nil
	}
	cc := newCallCtx(ctx, c.cfg.Timeout)
	return cc, cc
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
	for {
		if m := c.cur.Load(); m != nil && m.Epoch > seen && m.Epoch >= want {
			return nil
		}
		c.flightMu.Lock()
		if f := c.flight; f != nil {
			c.flightMu.Unlock()
			if h := c.testHookJoined; h != nil {
				h()
			}
			select {
			case <-f.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if f.err != nil {
				return f.err
			}
			// That pull may have wanted less than this caller (an older
			// epoch, or any map a lagging member had): look again, and
			// pull for this caller when it still falls short.
			if m := c.cur.Load(); m != nil && m.Epoch >= want {
				return nil
			}
			continue
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
}

// pull fetches the map from the meta group, from the leader when a member
// answers with one older than want.
func (c *Client) pull(ctx context.Context, want placement.Epoch) error {
	for _, leaderOnly := range []bool{false, true} {
		if err := c.pullOnce(ctx, leaderOnly); err != nil {
			return err
		}
		if m := c.cur.Load(); m != nil && m.Epoch >= want {
			return nil
		}
	}
	return nil
}

// pullOnce asks one meta member (the leader when leaderOnly) for a map
// newer than the client's and installs it.
func (c *Client) pullOnce(ctx context.Context, leaderOnly bool) error {
	var known placement.Epoch
	if m := c.cur.Load(); m != nil {
		known = m.Epoch
	}
	var reply wire.PullReply
	if err := c.callMeta(ctx, leaderOnly, wire.KindMetaPull, &wire.PullRequest{Known: known}, &reply); err != nil {
		return err
	}
	if reply.Map == nil {
		return nil
	}
	for {
		cur := c.cur.Load()
		if cur != nil && reply.Map.Epoch <= cur.Epoch {
			return nil
		}
		if c.cur.CompareAndSwap(cur, reply.Map) {
			c.meta.SetMembers(reply.Map.Meta)
			return nil
		}
	}
}

// seedWait bounds how long a call to the meta group waits while the client
// knows no meta member: when no seed has led to one by then, the call fails
// with ErrNoMeta however much time its context has left. Seeds that refuse
// connections or do not speak the protocol are a mistake that waiting does
// not mend; a member that is still starting gets this long to answer.
const seedWait = time.Second

// errNoSeed is an internal marker: the ErrNoMeta of a call that gave up on
// the seeds after seedWait.
var errNoSeed = errors.New("no seed led to a meta member")

// callMeta calls the meta group. It returns ErrClosed after Close, and an
// error wrapping ErrNoMeta when no meta member could be reached: none of
// the seeds led to one within seedWait, or the members known did not answer
// before ctx ended. Other errors, answers of the meta group included, are
// returned as they are.
func (c *Client) callMeta(ctx context.Context, leaderOnly bool, kind wire.Kind, req, resp any) error {
	for {
		seeding := len(c.meta.Members()) == 0
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if seeding {
			cctx, cancel = context.WithTimeout(ctx, seedWait)
		}
		err := c.meta.Call(cctx, leaderOnly, kind, req, resp)
		expired := cctx.Err()
		cancel()
		switch {
		case err == nil:
			return nil
		case c.closed.Load():
			return ErrClosed
		case seeding && expired != nil && ctx.Err() == nil:
			if len(c.meta.Members()) > 0 {
				// A seed named the members in time: give them the time
				// left (they may be electing a leader).
				continue
			}
			// The cause is formatted, not wrapped: it may carry a
			// per-attempt deadline, which is not the caller's.
			return fmt.Errorf("%w: %w within %v (seeds %s): %v",
				ErrNoMeta, errNoSeed, seedWait, strings.Join(c.cfg.Seeds, ", "), metaCause(err, expired))
		case errors.Is(err, rpc.ErrNoMeta), rpc.IsConnError(err):
			return fmt.Errorf("%w: %w", ErrNoMeta, err)
		}
		return err
	}
}

// metaCause returns what a meta call ended by its context (whose error is
// ctxErr) last ran into: the call's error without the context's own.
func metaCause(err, ctxErr error) error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			if e != ctxErr {
				return e
			}
		}
	}
	return err
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
			return r.finalErr(err)
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
	last       error // the last attempt's failure
	refreshErr error // the last map pull's failure; nil once one succeeds
	// maybeApplied is set once an attempt ended with its outcome unknown
	// and the request was repeated: if the call fails in the end, an
	// earlier attempt may still have been applied.
	maybeApplied bool
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
				return r.refresh(ctx, m.Epoch, we.Epoch, false)
			}
			if we.Code == wire.CodeTableNotFound && we.Epoch == m.Epoch {
				// The node and we agree: the table is gone, unless both
				// lag behind the leader.
				if r.triedTable {
					return false, fromWire(we)
				}
				r.triedTable = true
				return r.refreshFromLeader(ctx)
			}
			// The node lags behind our map: give it a moment.
			return true, nil
		case wire.CodeAmbiguous, wire.CodeTimeout:
			// The master may have applied the request (it timed out while
			// the request was being applied, or its lease lapsed under it).
			if !r.idempotent {
				return false, fmt.Errorf("%w: %w", ErrAmbiguous, we)
			}
			r.maybeApplied = true
			return r.refresh(ctx, m.Epoch, 0, true)
		case wire.CodeWait, wire.CodeStaleEpoch, wire.CodeNotEnoughReplicas:
			// A node that keeps asking to wait may have been replaced
			// without knowing it (cut off from the meta group): look at
			// the map now and then.
			r.waits++
			if r.waits%4 == 0 {
				return r.refresh(ctx, m.Epoch, 0, true)
			}
			return true, nil
		case wire.CodeClosed, wire.CodeUnavailable:
			return r.refresh(ctx, m.Epoch, 0, true)
		}
		return false, fromWire(we)
	case errors.Is(err, errTableMissing):
		// Only the leader's map tells: a member may lag behind a table
		// just created.
		if r.triedTable {
			return false, fmt.Errorf("%w: %s", ErrTableNotFound, tableOf(err))
		}
		r.triedTable = true
		return r.refreshFromLeader(ctx)
	case errors.Is(err, errNoMaster), errors.Is(err, rpc.ErrNotSent):
		return r.refresh(ctx, m.Epoch, 0, true)
	case errors.Is(err, rpc.ErrConnLost):
		if !r.idempotent {
			return false, fmt.Errorf("%w: %w", ErrAmbiguous, err)
		}
		r.maybeApplied = true
		return r.refresh(ctx, m.Epoch, 0, true)
	case errors.Is(err, rpc.ErrClosed):
		return false, ErrClosed
	case ctx.Err() != nil:
		return false, r.finalErr(ctx.Err())
	}
	return false, err
}

// refresh pulls a map newer than epoch seen (of at least epoch want) for
// the next attempt and returns classify's verdict: wait as given when the
// pull succeeded. A failed pull is remembered for the final error and makes
// the next attempt back off; it ends the call when the client is closed or
// no seed led to a meta member (waiting longer would not help).
func (r *retrier) refresh(ctx context.Context, seen, want placement.Epoch, wait bool) (bool, error) {
	return r.refreshed(r.c.refresh(ctx, seen, want), wait)
}

// refreshed turns the outcome of a map refresh into classify's answer.
func (r *retrier) refreshed(err error, wait bool) (bool, error) {
	switch {
	case err == nil:
		r.refreshErr = nil
		return wait, nil
	case errors.Is(err, ErrClosed):
		return false, ErrClosed
	case errors.Is(err, errNoSeed):
		return false, r.finalErr(err)
	}
	r.refreshErr = err
	return true, nil
}

// refreshFromLeader is refresh from the meta leader's own map.
func (r *retrier) refreshFromLeader(ctx context.Context) (bool, error) {
	return r.refreshed(r.c.pullOnce(ctx, true), false)
}

// pause waits before the next attempt when wait is set, with exponential
// backoff and jitter; it returns the final error when ctx ends.
func (r *retrier) pause(ctx context.Context, wait bool) error {
	if ctx.Err() != nil {
		return r.finalErr(ctx.Err())
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
		return r.finalErr(ctx.Err())
	case <-t.C:
	}
	r.backoff = min(2*r.backoff, 50*time.Millisecond)
	return nil
}

// finalErr builds the error that ends the call: err (the context's error,
// or the failed map pull that ended the call) wrapping what the last attempt
// ran into. When the last map pull failed because no meta member could be
// reached, it wraps that failure (ErrNoMeta) too, provided the last attempt
// failed in a way a later call may mend (retryLater): a server-side
// timeout, whose outcome is unknown, must not read as "try again".
func (r *retrier) finalErr(err error) error {
	if r.c.closed.Load() {
		return ErrClosed
	}
	if r.last == nil || errors.Is(err, r.last) {
		return r.ambiguous(err)
	}
	cause := attemptErr(r.last)
	if re := r.refreshErr; re != nil && errors.Is(re, ErrNoMeta) && !errors.Is(err, ErrNoMeta) && retryLater(cause) {
		cause = fmt.Errorf("%w; map not refreshed: %w", cause, re)
	}
	return r.ambiguous(fmt.Errorf("%w: %w", err, cause))
}

// ambiguous marks err as ErrAmbiguous when an earlier attempt may have been
// applied.
func (r *retrier) ambiguous(err error) error {
	if !r.maybeApplied || errors.Is(err, ErrAmbiguous) {
		return err
	}
	return fmt.Errorf("%w (an earlier attempt may have been applied): %w", ErrAmbiguous, err)
}

// retryLater reports whether cause, attemptErr's account of a failed
// attempt, says the call may succeed if made again: the partition had no
// reachable master or too few in-sync replicas, or the table was missing
// from the map.
func retryLater(cause error) bool {
	return errors.Is(cause, ErrUnavailable) || errors.Is(cause, ErrNotEnoughReplicas) || errors.Is(cause, errTableMissing)
}

// attemptErr maps the failure of the last attempt of a call that could not
// finish to the client's error vocabulary.
func attemptErr(last error) error {
	var we *wire.Error
	switch {
	case errors.Is(last, errNoMaster):
		return fmt.Errorf("%w: %w", ErrUnavailable, last)
	case errors.As(last, &we):
		switch we.Code {
		case wire.CodeWait:
			return fmt.Errorf("%w: kept waiting: %s", ErrUnavailable, we.Msg)
		case wire.CodeMoved, wire.CodeTableNotFound, wire.CodeStaleEpoch, wire.CodeClosed:
			return fmt.Errorf("%w: %w", ErrUnavailable, we)
		}
		return fromWire(we)
	case rpc.IsConnError(last):
		return fmt.Errorf("%w: %w", ErrUnavailable, last)
	}
	return last
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
		if t.Mode == placement.ModeSync {
			// Only a member of the in-sync set may be promoted: say which
			// nodes the partition waits for.
			return t, "", fmt.Errorf("table %s partition %d: %w: no member of its in-sync set %v is up", name, part, errNoMaster, p.InSync)
		}
		return t, "", fmt.Errorf("table %s partition %d: %w", name, part, errNoMaster)
	}
	addr := m.NodeAddr(p.Master)
	if addr == "" {
		return t, "", fmt.Errorf("table %s partition %d: master %s has no address: %w", name, part, p.Master, errNoMaster)
	}
	return t, addr, nil
}
