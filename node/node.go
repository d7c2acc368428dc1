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
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// MetaClient is what a node needs from the meta group.
type MetaClient interface {
	// Register adds or updates the node in the map and returns the epoch
	// of the map that committed it.
	Register(ctx context.Context, req *wire.RegisterRequest) (placement.Epoch, error)
	// Heartbeat reports to the meta leader; only the leader answers.
	Heartbeat(ctx context.Context, req *wire.HeartbeatRequest) (*wire.HeartbeatReply, error)
	// Pull returns the map when it is newer than known, else nil. With
	// leader set it asks the leader.
	Pull(ctx context.Context, known placement.Epoch, leader bool) (*placement.Map, error)
	// InSync asks the meta leader to change a sync partition's in-sync set
	// and returns the epoch that commits it.
	InSync(ctx context.Context, req *wire.InSyncRequest) (placement.Epoch, error)
	// LeaderHint tells the client that the member at addr announced itself
	// as the leader of Raft term term; a hint from an older term than one
	// already known is ignored.
	LeaderHint(addr string, term uint64)
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
	// InSyncTimeout is how long a sync-mode master waits for an in-sync
	// slave's acknowledgement before it asks the meta group to remove the
	// slave from the in-sync set (default five heartbeat intervals, at
	// least 500 ms).
	InSyncTimeout time.Duration
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
	// PartitionMetrics adds the series with a partition label (replica
	// positions, lag, slave connected) to Metrics; the per-node figures
	// are exported either way.
	PartitionMetrics bool

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
	if c.InSyncTimeout <= 0 {
		c.InSyncTimeout = max(5*c.HeartbeatInterval, 500*time.Millisecond)
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
	// regEpoch is the epoch of the map that committed the last
	// registration; older maps are not applied.
	regEpoch atomic.Uint64
	// regFailedSince and regWarned are when registration started failing
	// and when that was last logged at WARN (heartbeat loop only).
	regFailedSince, regWarned time.Time
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

	pullReq chan placement.Epoch // wake the map loop
	// pushed is the newest map the meta leader sent with a notification,
	// for the map loop to apply without pulling it.
	pushed atomic.Pointer[placement.Map]
	hbNow  chan struct{} // send a heartbeat now
	// applied is closed (and replaced) each time the node applies a map,
	// waking requests that wait for the node to catch up. It is read on
	// every request, so it is swapped rather than guarded by a lock.
	applied  atomic.Pointer[chan struct{}]
	readyCh  chan struct{} // closed once registered and fresh
	readyOne sync.Once

	// group runs every goroutine of the node: the map, heartbeat and
	// maintenance loops, the slave loops and the watchers of contexts
	// derived from its quit channel, which closes when Close begins.
	group run.Group
	// cancel cancels the context the loops were started with, and so
	// every slave loop.
	cancel context.CancelFunc
	once   sync.Once

	// encodeMap replaces wire.Marshal for the map applyMap persists; nil
	// except in tests.
	encodeMap func(any) ([]byte, error)
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
		log:      cfg.Logger.With("component", "node"),
		store:    cfg.Store,
		pool:     rpc.NewPool(cfg.Dial),
		start:    time.Now(),
		replicas: make(map[rkey]*replica),
		pullReq:  make(chan placement.Epoch, 1),
		hbNow:    make(chan struct{}, 1),
		readyCh:  make(chan struct{}),
		cancel:   cancel,
	}
	applied := make(chan struct{})
	s.applied.Store(&applied)
	s.snaps.init()
	s.metrics = newMetrics(s, cfg.Metrics)
	if err := s.loadLocal(); err != nil {
		cancel()
		return nil, err
	}
	s.group.Go(func() { s.mapLoop(ctx) })
	s.group.Go(func() { s.heartbeatLoop(ctx) })
	s.group.Go(func() { s.maintenanceLoop(ctx) })
	return s, nil
}

// Close stops every loop and replica and closes the store. It is
// idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.group.Stop()
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
		s.group.Wait()
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

// closing reports whether Close has begun.
func (s *Server) closing() bool { return s.group.Stopped() }

// maintenanceLoop purges binlogs and expires idle snapshot sessions until
// ctx ends.
func (s *Server) maintenanceLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.snaps.expire(time.Now(), 30*time.Second)
		s.purge()
	}
}

func (s *Server) purge() {
	for _, r := range s.replicaList() {
		keep, ret := r.keepFrom(), s.cfg.Retention
		if r.solo() {
			ret = ret.Solo()
		}
		if _, err := r.part.Purge(ret, keep); err != nil && !errors.Is(err, partition.ErrClosed) && !errors.Is(err, partition.ErrIncomplete) {
			s.log.Warn("node: binlog purge failed", "table", s.tableName(r.key.table), "partition", r.key.part, "err", err)
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
