package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// shardID is the dragonboat shard of the meta group.
const shardID = 1

// Config configures a meta member.
type Config struct {
	// ReplicaID is this member's ID in the Raft group (≥ 1, unique).
	ReplicaID uint64
	// RaftAddr is the address the Raft transport listens on; it is recorded
	// in the data directory and must not change.
	RaftAddr string
	// RPCAddr is the advertised RPC address of this process.
	RPCAddr string
	// Dir holds the Raft log and snapshots.
	Dir string
	// InitialMembers maps replica IDs to Raft addresses for a new group.
	// Ignored once the group is bootstrapped.
	InitialMembers map[uint64]string
	// Join starts this member as a new member of an existing group (it must
	// have been added by the group first).
	Join bool

	// RTT is the Raft tick; ElectionRTT and HeartbeatRTT are in ticks.
	RTT          time.Duration
	ElectionRTT  uint64
	HeartbeatRTT uint64
	// SnapshotEntries is how many log entries trigger a snapshot.
	SnapshotEntries uint64
	// SmallLogDB sizes the Raft log store for tests and demos.
	SmallLogDB bool

	// HeartbeatInterval is how often data nodes heartbeat the leader.
	HeartbeatInterval time.Duration
	// DownTimeout is how long a node may stay silent before it is declared
	// down (and how long a new leader waits before declaring anything
	// down).
	DownTimeout time.Duration
	// NodeAdmission says whether a new data node ID registers at once
	// (AdmitOpen) or only once an administrator approved it.
	NodeAdmission Admission
	// LocalNode is the ID of the data node in this member's process, if
	// any. The member records it in the map, and a meta member's own data
	// node is admitted without approval.
	LocalNode placement.NodeID

	// Dial configures connections to data nodes (switchovers poll them).
	Dial rpc.DialConfig
	// Migration bounds replica moves and sets their defaults.
	Migration MigrationConfig

	// RaftNetwork, when set, carries the Raft traffic between members
	// instead of dragonboat's own TCP transport, so that the faults a
	// test injects between hosts reach the meta group too.
	RaftNetwork transport.Network
	// RaftTLS, when its files are set and RaftNetwork is not, secures
	// dragonboat's own Raft transport with mutual TLS: every member
	// presents CertFile and verifies its peers against CAFile.
	RaftTLS RaftTLS

	// Metrics registers the member's Prometheus metrics (none when nil).
	Metrics prometheus.Registerer

	// Logger receives the member's logs.
	Logger *slog.Logger
}

// RaftTLS names the files of the Raft transport's mutual TLS (dragonboat's
// NodeHostConfig.MutualTLS, CAFile, CertFile and KeyFile).
type RaftTLS struct {
	CAFile, CertFile, KeyFile string
}

// Server is one meta member.
type Server struct {
	cfg Config
	log *slog.Logger
	nh  *dragonboat.NodeHost

	leaderID   atomic.Uint64
	leaderTerm atomic.Uint64
	wake       chan struct{} // leadership changed
	notifyCh   chan struct{} // a change was committed: tell the nodes

	det  detector
	sw   switchovers
	auto autoSchedule
	mig  migrator
	// ledTerm is the last term this member ran leader duties in, and deaf
	// whether it last found every up data node silent; only the run
	// goroutine uses them.
	ledTerm uint64
	deaf    bool
	events  eventLog
	pending pendingNodes
	pool    *rpc.Pool

	// group runs every goroutine of the member: the run loop, the
	// notifier, the automatic rebalance and opContext's watchers.
	group run.Group
	// stop is group's quit channel, closed when Close begins.
	stop <-chan struct{}
	// cancel cancels the context the loops were started with.
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// leaderListener receives dragonboat's leader notifications; it must not
// block.
type leaderListener struct{ s atomic.Pointer[Server] }

func (l *leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	s := l.s.Load()
	if s == nil || info.ShardID != shardID {
		return
	}
	s.leaderID.Store(info.LeaderID)
	s.leaderTerm.Store(info.Term)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start opens (or creates) the member's Raft state under cfg.Dir and joins
// the group. It returns once the member runs; a leader may not be elected
// yet (see WaitLeader).
func Start(cfg Config) (*Server, error) {
	if cfg.ReplicaID == 0 {
		return nil, errors.New("meta: replica ID must be ≥ 1")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	routeDragonboatLogs(log)
	rtt := uint64(cfg.RTT / time.Millisecond)
	if rtt == 0 {
		rtt = 10
	}
	if cfg.ElectionRTT == 0 {
		cfg.ElectionRTT = 20
	}
	if cfg.HeartbeatRTT == 0 {
		cfg.HeartbeatRTT = 2
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = 10000
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.DownTimeout <= 0 {
		cfg.DownTimeout = 5 * time.Second
	}
	cfg.Migration.setDefaults()
	listener := &leaderListener{}
	nhc := config.NodeHostConfig{
		NodeHostDir:       cfg.Dir,
		WALDir:            filepath.Join(cfg.Dir, "wal"),
		RTTMillisecond:    rtt,
		RaftAddress:       cfg.RaftAddr,
		RaftEventListener: listener,
	}
	if cfg.RaftNetwork != nil {
		nhc.Expert.TransportFactory = netTransportFactory{network: cfg.RaftNetwork, log: log}
	} else if t := cfg.RaftTLS; t.CertFile != "" {
		nhc.MutualTLS, nhc.CAFile, nhc.CertFile, nhc.KeyFile = true, t.CAFile, t.CertFile, t.KeyFile
	}
	if cfg.SmallLogDB {
		nhc.Expert.LogDB = config.GetTinyMemLogDBConfig()
	} else {
		nhc.Expert.LogDB = config.GetSmallMemLogDBConfig()
	}
	// One shard gains nothing from sharded storage or engines; both are
	// persisted settings, so they are fixed here for every directory.
	nhc.Expert.LogDB.Shards = 1
	nhc.Expert.Engine = config.EngineConfig{ExecShards: 1, CommitShards: 1, ApplyShards: 1, SnapshotShards: 1, CloseShards: 1}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		return nil, fmt.Errorf("meta: open raft host at %s (%s): %w", cfg.Dir, cfg.RaftAddr, err)
	}
	s := &Server{
		cfg:      cfg,
		log:      log.With("component", "meta", "replica", cfg.ReplicaID),
		nh:       nh,
		wake:     make(chan struct{}, 1),
		notifyCh: make(chan struct{}, 1),
		pool:     rpc.NewPool(cfg.Dial),
	}
	s.stop = s.group.Done()
	s.det.init()
	s.mig.init()
	s.events.decisions = newDecisionCounter()
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.events.decisions, &metaCollector{s: s})
	}
	listener.s.Store(s)

	rc := config.Config{
		ShardID:             shardID,
		ReplicaID:           cfg.ReplicaID,
		ElectionRTT:         cfg.ElectionRTT,
		HeartbeatRTT:        cfg.HeartbeatRTT,
		CheckQuorum:         true,
		PreVote:             true,
		SnapshotEntries:     cfg.SnapshotEntries,
		CompactionOverhead:  cfg.SnapshotEntries / 10,
		OrderedConfigChange: true,
	}
	members := make(map[uint64]dragonboat.Target)
	join := cfg.Join
	if nh.HasNodeInfo(shardID, cfg.ReplicaID) {
		join = false // restart: membership comes from the log
	} else if !join {
		for id, addr := range cfg.InitialMembers {
			members[id] = addr
		}
		if _, ok := members[cfg.ReplicaID]; !ok {
			nh.Close()
			return nil, fmt.Errorf("meta: replica %d is not among the initial members %v", cfg.ReplicaID, cfg.InitialMembers)
		}
	}
	if err := nh.StartReplica(members, join, newStateMachine, rc); err != nil {
		nh.Close()
		return nil, fmt.Errorf("meta: start replica %d: %w", cfg.ReplicaID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.group.Go(func() { s.run(ctx) })
	s.group.Go(func() { s.notifier(ctx) })
	return s, nil
}

// Close stops the member: its goroutines first, then dragonboat. It is
// idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.group.Stop()
		s.cancel()
		s.group.Wait()
		s.pool.Close()
		s.nh.Close()
	})
	return nil
}

// ReplicaID returns this member's replica ID.
func (s *Server) ReplicaID() uint64 { return s.cfg.ReplicaID }

// Leader returns the current leader's replica ID (0 when none is known)
// and term.
func (s *Server) Leader() (id, term uint64) {
	id, term, valid, err := s.nh.GetLeaderID(shardID)
	if err != nil || !valid {
		return 0, term
	}
	return id, term
}

// IsLeader reports whether this member believes it is the leader.
func (s *Server) IsLeader() bool {
	id, _ := s.Leader()
	return id == s.cfg.ReplicaID
}

// Map returns the member's local copy of the map (possibly a little behind
// the leader's). It must not be modified.
func (s *Server) Map() *placement.Map {
	v, err := s.nh.StaleRead(shardID, queryMap{})
	if err != nil {
		return &placement.Map{}
	}
	return v.(*placement.Map)
}

// Members returns the meta members recorded in the map.
func (s *Server) Members() []placement.MetaMember { return s.Map().Meta }

// WaitReady waits until a leader is elected and this member's RPC address
// is recorded in the map.
func (s *Server) WaitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := s.Leader(); id != 0 && s.registered(s.Map()) {
			return nil
		}
		select {
		case <-ctx.Done():
			id, _ := s.Leader()
			return fmt.Errorf("meta: not ready (leader %d, registered %v): %w", id, s.registered(s.Map()), ctx.Err())
		case <-s.stop:
			return errClosed
		case <-t.C:
		}
	}
}

var errClosed = wire.Errorf(wire.CodeClosed, "meta member closed")

func (s *Server) registered(m *placement.Map) bool {
	for _, mm := range m.Meta {
		if mm.ID == s.cfg.ReplicaID {
			return mm.RPCAddr == s.cfg.RPCAddr && mm.RaftAddr == s.cfg.RaftAddr && mm.Node == s.cfg.LocalNode
		}
	}
	return false
}

// read returns the map by a linearizable read (which also confirms that the
// group has a working leader).
func (s *Server) read(ctx context.Context) (*placement.Map, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		v, err := s.nh.SyncRead(rctx, shardID, queryMap{})
		cancel()
		if err == nil {
			return v.(*placement.Map), nil
		}
		if err := s.retryable(ctx, err); err != nil {
			return nil, err
		}
	}
}

// propose commits cmd and returns its result code and data. Retries after
// a timeout carry the same proposal ID, so a command that did commit is not
// applied twice.
func (s *Server) propose(ctx context.Context, cmd *command) (uint64, updateResult, error) {
	cmd.ID = rand.Uint64() | 1
	b, err := wire.Marshal(cmd)
	if err != nil {
		return 0, updateResult{}, err
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		r, err := s.nh.SyncPropose(pctx, s.nh.GetNoOPSession(shardID), b)
		cancel()
		if err == nil {
			var res updateResult
			if len(r.Data) > 0 {
				if err := wire.Unmarshal(r.Data, &res); err != nil {
					return 0, res, err
				}
			}
			if r.Value == resOK {
				s.kickNotify()
			}
			return r.Value, res, nil
		}
		if err := s.retryable(ctx, err); err != nil {
			return 0, updateResult{}, err
		}
	}
}

// callTimeout bounds one dragonboat call: long enough for an election.
func (s *Server) callTimeout() time.Duration {
	rtt := s.cfg.RTT
	if rtt <= 0 {
		rtt = 10 * time.Millisecond
	}
	return max(time.Duration(s.cfg.ElectionRTT)*rtt*5, 500*time.Millisecond)
}

// retryable decides whether a dragonboat error is worth another attempt; it
// returns nil after a short pause if so, or the error to give up with.
func (s *Server) retryable(ctx context.Context, err error) error {
	select {
	case <-s.stop:
		return errClosed
	default:
	}
	if ctx.Err() != nil {
		return wire.Errorf(wire.CodeUnavailable, "meta group: %v (last: %v)", ctx.Err(), err)
	}
	if !dragonboat.IsTempError(err) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("meta: %w", err)
	}
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return wire.Errorf(wire.CodeUnavailable, "meta group has no quorum: %v", err)
	case <-s.stop:
		return errClosed
	case <-t.C:
	}
	return nil
}

// leaderAddr returns the leader's RPC address, or "".
func (s *Server) leaderAddr(m *placement.Map) string {
	id, _ := s.Leader()
	for _, mm := range m.Meta {
		if mm.ID == id {
			return mm.RPCAddr
		}
	}
	return ""
}

// run records this member's addresses in the map and performs the leader
// duties while this member leads, until the member stops. Work it does
// runs under ctx, cancelled by Close.
func (s *Server) run(ctx context.Context) {
	tick := time.NewTicker(max(s.cfg.HeartbeatInterval/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-tick.C:
		}
		if id, _ := s.Leader(); id == 0 {
			continue
		}
		if !s.registered(s.Map()) {
			s.registerSelf(ctx)
		}
		s.leaderDuties(ctx)
	}
}

func (s *Server) registerSelf(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout())
	defer cancel()
	mm := placement.MetaMember{ID: s.cfg.ReplicaID, RaftAddr: s.cfg.RaftAddr, RPCAddr: s.cfg.RPCAddr, Node: s.cfg.LocalNode}
	if _, _, err := s.propose(ctx, &command{Op: opSetMember, Member: &mm}); err != nil {
		s.log.Debug("meta: recording member address failed", "err", err)
	}
}

// opTimeout bounds one background proposal (retries included).
func (s *Server) opTimeout() time.Duration { return 3 * s.callTimeout() }

// opContext returns a context for a background proposal that must not end
// with the context of the request that caused it (releasing a partition a
// failed switchover held outlives the switchover's caller): it derives from
// the member's quit channel, so it ends when the member stops, or after
// opTimeout.
func (s *Server) opContext() (context.Context, context.CancelFunc) {
	ctx, stop := s.group.Context(context.Background())
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout())
	return ctx, func() {
		cancel()
		stop()
	}
}
