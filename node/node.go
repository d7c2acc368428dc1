package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// MetaClient is what a node needs from the meta group.
type MetaClient interface {
	// Register adds or updates the node in the map.
	Register(ctx context.Context, n placement.Node) error
	// Heartbeat reports to the meta leader; only the leader answers.
	Heartbeat(ctx context.Context, req *wire.HeartbeatRequest) (*wire.HeartbeatReply, error)
	// Pull returns the map when it is newer than known, else nil. With
	// leader set it asks the leader.
	Pull(ctx context.Context, known placement.Epoch, leader bool) (*placement.Map, error)
}

// Config configures a data node.
type Config struct {
	NodeID placement.NodeID
	// Addr is the node's advertised RPC address.
	Addr   string
	Labels placement.Labels
	Weight int

	// Store holds the replicas; the node owns it from Start and closes it.
	Store *partition.Store
	// Meta reaches the meta group.
	Meta MetaClient
	// Dial configures connections to other nodes (replication).
	Dial rpc.DialConfig

	Limits wire.Limits

	// HeartbeatInterval is how often the node heartbeats the meta leader.
	HeartbeatInterval time.Duration
	// MasterLease is how long an acknowledged heartbeat lets the node keep
	// accepting writes on fenced tables. It must be shorter than the meta
	// group's DownTimeout by a safety margin.
	MasterLease time.Duration
	// Retention bounds every replica's binlog.
	Retention partition.Retention
	// FetchWait is how long a master holds a replication fetch that has no
	// record to return yet.
	FetchWait time.Duration
	// FetchBytes bounds the records returned by one fetch (and so the bytes
	// in flight per slave).
	FetchBytes int
	// SnapshotChunk bounds one full-sync chunk.
	SnapshotChunk int

	// Metrics registers the node's Prometheus metrics (none when nil).
	Metrics prometheus.Registerer

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.Limits = c.Limits.WithDefaults()
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.MasterLease <= 0 {
		c.MasterLease = 3 * c.HeartbeatInterval
	}
	if c.FetchWait <= 0 {
		c.FetchWait = max(2*c.HeartbeatInterval, 200*time.Millisecond)
	}
	if c.FetchBytes <= 0 {
		c.FetchBytes = 4 << 20
	}
	if c.SnapshotChunk <= 0 {
		c.SnapshotChunk = 4 << 20
	}
	if c.Weight <= 0 {
		c.Weight = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is a running data node.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *partition.Store
	pool  *rpc.Pool

	// cur is the map the node serves under; fresh reports whether it was
	// pulled from the meta group since start (a map loaded from disk only
	// tells which replicas the node holds).
	cur   atomic.Pointer[placement.Map]
	fresh atomic.Bool
	// registered is set once the meta group accepted the registration.
	registered atomic.Bool
	// storeID identifies the store (chosen when it was created).
	storeID string
	// draining is set by Drain: writes are refused, replication goes on.
	draining atomic.Bool

	// leaseUntil is the monotonic deadline (ns since start) of the master
	// lease.
	start      time.Time
	leaseUntil atomic.Int64

	mu       sync.RWMutex
	replicas map[rkey]*replica

	snaps   snapshots
	metrics *metrics

	pullReq  chan placement.Epoch // wake the map loop
	hbNow    chan struct{}        // send a heartbeat now
	readyCh  chan struct{}        // closed once registered and fresh
	readyOne sync.Once

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

type rkey struct {
	table placement.TableID
	part  placement.PartitionID
}

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node: closed")

var errClosedWire = wire.Errorf(wire.CodeClosed, "node is shutting down")

// Start opens the node's replicas known on disk and starts its loops. It
// returns without waiting for the meta group.
func Start(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" || cfg.Addr == "" || cfg.Store == nil || cfg.Meta == nil {
		return nil, errors.New("node: NodeID, Addr, Store and Meta are required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "node", "node", cfg.NodeID),
		store:    cfg.Store,
		pool:     rpc.NewPool(cfg.Dial),
		start:    time.Now(),
		replicas: make(map[rkey]*replica),
		pullReq:  make(chan placement.Epoch, 1),
		hbNow:    make(chan struct{}, 1),
		readyCh:  make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	s.snaps.init()
	s.metrics = newMetrics(s, cfg.Metrics)
	if err := s.loadLocal(); err != nil {
		cancel()
		return nil, err
	}
	s.wg.Add(3)
	go s.mapLoop()
	go s.heartbeatLoop()
	go s.maintenanceLoop()
	return s, nil
}

// Close stops every loop and replica and closes the store. It is
// idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		reps := make([]*replica, 0, len(s.replicas))
		for _, r := range s.replicas {
			reps = append(reps, r)
		}
		s.mu.Unlock()
		for _, r := range reps {
			r.stopSlave()
		}
		s.wg.Wait()
		s.snaps.closeAll()
		_ = s.pool.Close()
		err = s.store.Close()
	})
	return err
}

// Drain prepares a controlled shutdown: the node refuses new writes (clients
// go to the next master after a failover) while it keeps serving
// replication, and Drain returns once every connected slave has
// acknowledged the last record of every partition this node masters, or
// when ctx ends. In async mode this is what makes a planned restart lose
// nothing.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	for {
		behind := 0
		for _, r := range s.replicaList() {
			if r.info.Load().role == wire.RoleMaster {
				behind += r.unacked()
			}
		}
		if behind == 0 {
			return nil
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("node: %d slave replicas still behind: %w", behind, ctx.Err())
		case <-t.C:
		}
	}
}

// Ready is closed once the node is registered and has pulled a fresh map.
func (s *Server) Ready() <-chan struct{} { return s.readyCh }

func (s *Server) checkReady() {
	if s.registered.Load() && s.fresh.Load() {
		s.readyOne.Do(func() { close(s.readyCh) })
	}
}

// Map returns the map the node serves under (nil before it has one).
func (s *Server) Map() *placement.Map { return s.cur.Load() }

// Epoch returns the epoch of the node's map.
func (s *Server) Epoch() placement.Epoch {
	if m := s.cur.Load(); m != nil {
		return m.Epoch
	}
	return 0
}

// ID returns the node's ID.
func (s *Server) ID() placement.NodeID { return s.cfg.NodeID }

// leaseValid reports whether the master lease is current.
func (s *Server) leaseValid() bool {
	return int64(time.Since(s.start)) < s.leaseUntil.Load()
}

// requestPull asks the map loop to pull a map of at least epoch e.
func (s *Server) requestPull(e placement.Epoch) {
	for {
		select {
		case s.pullReq <- e:
			return
		default:
		}
		select {
		case old := <-s.pullReq:
			e = max(e, old)
		default:
		}
	}
}

// heartbeatLoop registers the node, then heartbeats the meta leader every
// HeartbeatInterval. Each acknowledged heartbeat extends the master lease
// from the moment it was sent.
func (s *Server) heartbeatLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		if !s.registered.Load() {
			s.register()
		} else {
			s.heartbeat()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.hbNow:
		}
	}
}

func (s *Server) self() placement.Node {
	return placement.Node{ID: s.cfg.NodeID, Addr: s.cfg.Addr, Labels: s.cfg.Labels, Weight: s.cfg.Weight, StoreID: s.storeID}
}

func (s *Server) register() {
	ctx, cancel := context.WithTimeout(s.ctx, max(5*s.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	if err := s.cfg.Meta.Register(ctx, s.self()); err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("node: register failed", "err", err)
		}
		return
	}
	s.registered.Store(true)
	s.requestPull(0)
	s.checkReady()
	// Heartbeat right away: it starts the lease.
	s.heartbeat()
}

func (s *Server) heartbeat() {
	req := &wire.HeartbeatRequest{Node: s.cfg.NodeID, Addr: s.cfg.Addr, Epoch: s.Epoch(), Replicas: s.replicaStatuses()}
	ctx, cancel := context.WithTimeout(s.ctx, max(2*s.cfg.HeartbeatInterval, 200*time.Millisecond))
	defer cancel()
	sent := time.Since(s.start)
	reply, err := s.cfg.Meta.Heartbeat(ctx, req)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("node: heartbeat failed", "err", err)
		}
		return
	}
	// The lease renews only while the node's map is the leader's: a node
	// that was replaced while cut off must apply the newer map (and learn
	// it is master no more) before it may take fenced writes again. The
	// heartbeat sent right after applying a map renews it.
	if reply.Epoch <= req.Epoch && s.fresh.Load() {
		s.leaseUntil.Store(int64(sent + s.cfg.MasterLease))
	}
	if reply.Epoch > req.Epoch || !s.fresh.Load() {
		s.requestPull(reply.Epoch)
	}
}

// mapLoop pulls and applies maps. It is the only goroutine that changes
// replica roles.
func (s *Server) mapLoop() {
	defer s.wg.Done()
	// Pull now and then even without a hint: a missed heartbeat reply must
	// not leave the node behind for long.
	t := time.NewTicker(10 * s.cfg.HeartbeatInterval)
	defer t.Stop()
	var want placement.Epoch
	var retry <-chan time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case e := <-s.pullReq:
			want = max(want, e)
		case <-t.C:
		case <-retry:
			retry = nil
		}
		if !s.registered.Load() {
			continue
		}
		if err := s.pull(want); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Debug("node: pull failed", "err", err)
			retry = time.After(s.cfg.HeartbeatInterval / 2)
			continue
		}
		// Served: the next tick or request pulls again.
		want = 0
	}
}

// pull asks the meta group for a map newer than the node's (at least want
// when want is set). A restarted node, whose map came from disk, asks for
// one at least as new as that map: a meta member that lags behind it (its
// own, say) must not make it go back to an older assignment and drop
// replicas it still holds.
func (s *Server) pull(want placement.Epoch) error {
	ctx, cancel := context.WithTimeout(s.ctx, max(5*s.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	fresh := s.fresh.Load()
	var known placement.Epoch
	if cur := s.cur.Load(); cur != nil {
		known = cur.Epoch
		if !fresh && known > 0 {
			known-- // the persisted epoch itself is fine as a first fresh map
		}
	}
	if want != 0 && fresh && known >= want {
		return nil
	}
	for _, leader := range []bool{false, true} {
		m, err := s.cfg.Meta.Pull(ctx, known, leader)
		if err != nil {
			return err
		}
		if m != nil && m.Epoch > known {
			s.applyMap(m)
			known = m.Epoch
		}
		if s.fresh.Load() && known >= want {
			break
		}
	}
	if m := s.cur.Load(); m != nil && s.fresh.Load() {
		// Re-register when the map lost us or has a stale address.
		if n := m.Node(s.cfg.NodeID); n == nil || n.Addr != s.cfg.Addr || n.Labels != s.cfg.Labels ||
			n.Weight != s.cfg.Weight || n.StoreID != s.storeID {
			s.registered.Store(false)
			select {
			case s.hbNow <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// maintenanceLoop purges binlogs and expires idle snapshot sessions.
func (s *Server) maintenanceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.snaps.expire(time.Now(), 30*time.Second)
		s.purge()
	}
}

func (s *Server) purge() {
	for _, r := range s.replicaList() {
		keep := r.keepFrom()
		if _, err := r.part.Purge(s.cfg.Retention, keep); err != nil && !errors.Is(err, partition.ErrClosed) && !errors.Is(err, partition.ErrIncomplete) {
			s.log.Warn("node: binlog purge failed", "table", r.key.table, "partition", r.key.part, "err", err)
		}
	}
}

func (s *Server) replicaList() []*replica {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		out = append(out, r)
	}
	return out
}

func (s *Server) replica(k rkey) *replica {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.replicas[k]
}

// Status describes the node's replicas.
func (s *Server) Status() wire.NodeStatusReply {
	return wire.NodeStatusReply{Node: s.cfg.NodeID, Epoch: s.Epoch(), Replicas: s.replicaStatuses()}
}

func (s *Server) replicaStatuses() []wire.ReplicaStatus {
	reps := s.replicaList()
	out := make([]wire.ReplicaStatus, 0, len(reps))
	for _, r := range reps {
		out = append(out, r.status())
	}
	sortStatuses(out)
	return out
}

func (s *Server) errorf(code wire.Code, format string, args ...any) *wire.Error {
	return &wire.Error{Code: code, Msg: fmt.Sprintf(format, args...), Epoch: s.Epoch()}
}

// Store returns the node's store. It is meant for tests and tools.
func (s *Server) Store() *partition.Store { return s.store }
