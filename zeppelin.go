package zeppelin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/fsutil"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/meta"
	"github.com/zeppelin-kv/zeppelin/node"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// ErrClosed is returned by Server methods after Close.
var ErrClosed = errors.New("zeppelin: server closed")

// Server is one process's membership in a cluster.
type Server struct {
	cfg     Config
	log     *slog.Logger
	nodeID  string
	network transport.Network
	lock    *dirLock

	ln        net.Listener
	advertise string
	rpc       *rpc.Server
	pool      *rpc.Pool
	metaCall  *rpc.MetaCaller

	meta *meta.Server
	node *node.Server
	disc *discovery

	reg    *prometheus.Registry
	http   *http.Server
	httpLn net.Listener

	// sec holds the keyring, users and certificates (security.go);
	// raftAuthFailures counts Raft connections that failed to prove the
	// cluster secret.
	sec              *security
	raftAuthFailures atomic.Uint64
	httpAuthFailures atomic.Uint64

	// history is the data node's load, sampled by sampleLoad, which
	// closes sampled when it returns (nil without the data role).
	history loadHistory
	sampled chan struct{}

	cli *client.Client // set by Start, before anything is served

	// group runs the server's own goroutines (RPC accept loop, HTTP
	// server, gossip join); its quit channel closes when Close begins.
	group     run.Group
	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, opens the data directory, binds the listeners and
// starts every role, then returns. Joining the cluster (electing a meta
// leader, registering the data node, pulling the map) continues in the
// background; WaitReady waits for it.
func Start(cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		// Warnings and errors still reach someone.
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.Weight == 0 {
		cfg.Weight = 1
	}
	if cfg.ClientTimeout == 0 {
		cfg.ClientTimeout = client.DefaultTimeout
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("zeppelin: create %s: %w", cfg.Dir, err)
	}
	s := &Server{cfg: cfg, network: transport.OrTCP(cfg.Expert.Network), reg: newRegistry()}
	if s.sec, err = newSecurity(cfg); err != nil {
		return nil, err
	}
	s.network = s.secureNetwork(s.network)
	if s.lock, err = lockDir(cfg.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()
	var fresh bool
	if s.nodeID, fresh, err = identity(cfg.Dir, cfg.NodeID); err != nil {
		return nil, err
	}
	s.log = cfg.Logger.With("node", s.nodeID)

	if s.ln, err = s.network.Listen(cfg.RPCAddr); err != nil {
		return nil, fmt.Errorf("zeppelin: listen for RPC on %s: %w", cfg.RPCAddr, err)
	}
	// Only now, before any role writes to it, does the directory become
	// this node's: a start that failed to bind leaves it unclaimed.
	if fresh {
		if err := recordIdentity(cfg.Dir, s.nodeID); err != nil {
			return nil, err
		}
	}
	s.advertise = cfg.AdvertiseAddr
	if s.advertise == "" {
		s.advertise = advertiseAddr(s.ln.Addr())
	}
	s.rpc = rpc.NewServer(s.rpcServerConfig(rpc.ServerConfig{
		Hello:    s.hello,
		MaxFrame: frameLimit(cfg.Limits),
		Logger:   s.log,
	}))
	s.reg.MustRegister(securityCollector{s})
	s.rpc.Handle(wire.KindServerStats, s.handleServerStats)
	s.pool = rpc.NewPool(s.dialConfig())
	seeds := append([]string(nil), cfg.Join...)
	if cfg.Roles&RoleMeta != 0 {
		seeds = append(seeds, s.advertise)
	}
	s.metaCall = rpc.NewMetaCaller(s.pool, seeds)

	if cfg.Roles&RoleMeta != 0 {
		if err := s.startMeta(); err != nil {
			return nil, err
		}
	}
	if cfg.Roles&RoleData != 0 {
		if err := s.startData(); err != nil {
			return nil, err
		}
	}
	// The client exists before the HTTP listener, whose status page uses
	// it, and before anything is served.
	if s.cli, err = s.newClient(); err != nil {
		return nil, err
	}
	if cfg.GossipAddr != "off" {
		self := gossipMeta{NodeID: s.nodeID, RPC: s.advertise, Roles: s.wireRoles()}
		if s.meta != nil {
			self.MetaID, self.Raft = s.meta.ReplicaID(), s.raftAddr()
		}
		if s.disc, err = startDiscovery(cfg.GossipAddr, self, cfg.Expert.SmallFootprint, s.sec.keyring.GossipKeys(), s.log, s.discoveryChanged); err != nil {
			return nil, err
		}
	}
	if cfg.HTTPAddr != "" {
		if err := s.startHTTP(cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("zeppelin: listen for HTTP on %s: %w", cfg.HTTPAddr, err)
		}
	}
	s.group.Go(func() {
		if err := s.rpc.Serve(s.ln); err != nil && !errors.Is(err, rpc.ErrClosed) {
			s.log.Error("zeppelin: RPC listener stopped", "err", err)
		}
	})
	if s.disc != nil && len(cfg.Join) > 0 {
		s.group.Go(s.joinGossip)
	}
	if s.sec.certs != nil {
		s.group.Go(s.watchCertificates)
	}
	startAttrs := []any{"roles", cfg.Roles.String(), "rpc", s.advertise, "dir", cfg.Dir, "durability", cfg.Durability.String()}
	if cfg.Roles&RoleMeta != 0 {
		startAttrs = append(startAttrs, "meta_id", cfg.MetaID, "meta_members", len(cfg.MetaMembers))
	}
	if len(cfg.Join) > 0 {
		startAttrs = append(startAttrs, "join", strings.Join(cfg.Join, ","))
	}
	if cfg.HTTPAddr != "" {
		startAttrs = append(startAttrs, "http", cfg.HTTPAddr)
	}
	s.log.Info("zeppelin: started", startAttrs...)
	return s, nil
}

func (s *Server) wireRoles() wire.Roles {
	var r wire.Roles
	if s.cfg.Roles&RoleMeta != 0 {
		r |= wire.RoleMeta
	}
	if s.cfg.Roles&RoleData != 0 {
		r |= wire.RoleData
	}
	return r
}

func (s *Server) raftAddr() string {
	if s.cfg.RaftAddr != "" {
		return s.cfg.RaftAddr
	}
	if len(s.cfg.MetaMembers) > 0 {
		return s.cfg.MetaMembers[s.cfg.MetaID]
	}
	return ""
}

func (s *Server) startMeta() error {
	cfg := s.cfg
	id := cfg.MetaID
	members := cfg.MetaMembers
	raft := s.raftAddr()
	if cfg.MetaJoin {
		members = nil // the group gives a joining member its membership
	} else if len(members) == 0 {
		if id == 0 {
			id = 1
		}
		var err error
		if raft, err = singleRaftAddr(filepath.Join(cfg.Dir, "meta"), raft, s.ln.Addr()); err != nil {
			return err
		}
		members = map[uint64]string{id: raft}
	}
	admission, err := meta.ParseAdmission(cfg.NodeAdmission)
	if err != nil {
		return err
	}
	var localNode placement.NodeID
	if cfg.Roles&RoleData != 0 {
		localNode = placement.NodeID(s.nodeID)
	}
	m, err := meta.Start(meta.Config{
		ReplicaID:         id,
		RaftAddr:          raft,
		RPCAddr:           s.advertise,
		Dir:               filepath.Join(cfg.Dir, "meta"),
		InitialMembers:    members,
		Join:              cfg.MetaJoin,
		RTT:               cfg.RaftRTT,
		ElectionRTT:       cfg.ElectionRTT,
		HeartbeatRTT:      cfg.HeartbeatRTT,
		SmallLogDB:        cfg.Expert.SmallFootprint,
		SnapshotEntries:   cfg.Expert.MetaSnapshotEntries,
		HeartbeatInterval: cfg.HeartbeatInterval,
		DownTimeout:       cfg.DownTimeout,
		NodeAdmission:     admission,
		LocalNode:         localNode,
		Migration:         cfg.Migration,
		Dial:              s.dialConfig(),
		RaftNetwork:       s.raftNetwork(),
		RaftTLS:           s.raftTLS(),
		Metrics:           s.reg,
		Logger:            s.log,
	})
	if err != nil {
		return err
	}
	s.cfg.MetaID, s.cfg.RaftAddr = id, raft
	s.meta = m
	m.Register(s.rpc)
	return nil
}

// singleRaftAddr returns the Raft address of a single-member meta group:
// the configured one, else the one recorded in dir, else a free port on the
// RPC listener's host (recorded for the next start). A recorded address
// that cannot be read is an error: choosing another would move the member.
func singleRaftAddr(dir, configured string, rpcAddr net.Addr) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("zeppelin: create %s: %w", dir, err)
	}
	p := filepath.Join(dir, "RAFT_ADDR")
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if configured != "" && configured != string(b) {
			return "", fmt.Errorf("zeppelin: %s was created with Raft address %s, configured %s", dir, b, configured)
		}
		return string(b), nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("zeppelin: read the recorded Raft address %s: %w", p, err)
	}
	addr := configured
	if addr == "" {
		host := "127.0.0.1"
		if ta, ok := rpcAddr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("zeppelin: pick a Raft port: %w", err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	if err := fsutil.WriteFileSync(p, []byte(addr)); err != nil {
		return "", fmt.Errorf("zeppelin: record Raft address: %w", err)
	}
	return addr, nil
}

func (s *Server) startData() error {
	cfg := s.cfg
	store, err := partition.Open(partition.Options{
		Dir:           filepath.Join(cfg.Dir, "data"),
		Durability:    cfg.Durability,
		Small:         cfg.Expert.SmallFootprint,
		MemoryBudget:  cfg.MemoryBudget,
		Uncompressed:  cfg.UncompressedTables,
		ReadCacheSize: cfg.ReadCacheSize,
		Logger:        s.log,
	})
	if err != nil {
		return fmt.Errorf("zeppelin: open store: %w", err)
	}
	n, err := node.Start(node.Config{
		NodeID:            placement.NodeID(s.nodeID),
		Addr:              s.advertise,
		Labels:            cfg.Labels,
		Weight:            cfg.Weight,
		Store:             store,
		Meta:              node.NewMetaClient(s.metaCall, max(cfg.HeartbeatInterval, 100*time.Millisecond)),
		Dial:              s.dialConfig(),
		Limits:            wire.Limits(cfg.Limits),
		HeartbeatInterval: cfg.HeartbeatInterval,
		MasterLease:       cfg.MasterLease,
		InSyncTimeout:     cfg.InSyncTimeout,
		Retention:         cfg.Retention,
		FetchWait:         cfg.Expert.FetchWait,
		FetchBytes:        cfg.Expert.FetchBytes,
		SnapshotChunk:     cfg.Expert.SnapshotChunk,
		Metrics:           s.reg,
		PartitionMetrics:  cfg.PartitionMetrics,
		Logger:            s.log,
	})
	if err != nil {
		store.Close()
		if errors.Is(err, node.ErrWrongNode) {
			return fmt.Errorf("%w: %w", ErrWrongNode, err)
		}
		return err
	}
	s.node = n
	n.Register(s.rpc)
	s.reg.MustRegister(storeCollector{s})
	s.sampled = make(chan struct{})
	if !s.group.Go(s.sampleLoad) {
		close(s.sampled)
	}
	return nil
}

// joinGossip joins memberlist through the gossip addresses of the Join
// members, retrying until it succeeds or the server stops.
func (s *Server) joinGossip() {
	// The dials run under ctx, cancelled as soon as Close begins, so that a
	// dial in progress does not hold Close up.
	ctx, cancel := s.group.Context(context.Background())
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		var addrs []string
		for _, j := range s.cfg.Join {
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			c, err := s.pool.Get(dctx, j)
			dcancel()
			if err == nil && c.Hello().GossipAddr != "" {
				addrs = append(addrs, c.Hello().GossipAddr)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if len(addrs) > 0 {
			if err := s.disc.join(addrs); err == nil {
				return
			} else {
				s.log.Debug("zeppelin: gossip join failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (s *Server) discoveryChanged(d *discovery) {
	if mm := d.metaMembers(); len(mm) > 0 {
		s.metaCall.SetMembers(mm)
	}
}

// hello answers the Hello that opens every connection: who we are and
// where the meta group is.
func (s *Server) hello(wire.Hello) wire.HelloReply {
	r := wire.HelloReply{NodeID: s.nodeID, Roles: s.wireRoles()}
	if s.disc != nil {
		r.GossipAddr = s.disc.Addr()
	}
	r.Meta = s.metaMembers()
	switch {
	case s.meta != nil:
		r.Epoch = s.meta.Map().Epoch
	case s.node != nil:
		r.Epoch = s.node.Epoch()
	}
	return r
}

// metaMembers returns the best known list of meta members.
func (s *Server) metaMembers() []placement.MetaMember {
	if s.meta != nil {
		if mm := s.meta.Members(); len(mm) > 0 {
			return mm
		}
	}
	if s.node != nil {
		if m := s.node.Map(); m != nil && len(m.Meta) > 0 {
			return m.Meta
		}
	}
	if s.disc != nil {
		if mm := s.disc.metaMembers(); len(mm) > 0 {
			return mm
		}
	}
	var out []placement.MetaMember
	for _, a := range s.metaCall.Members() {
		out = append(out, placement.MetaMember{RPCAddr: a})
	}
	return out
}

// WaitReady waits until every role of this process is working: the meta
// group has a leader (meta role) and the data node is registered and has
// the current map (data role).
func (s *Server) WaitReady(ctx context.Context) error {
	select {
	case <-s.group.Done():
		return ErrClosed
	default:
	}
	if s.meta != nil {
		if err := s.meta.WaitReady(ctx); err != nil {
			return fmt.Errorf("zeppelin: meta role not ready: %w", err)
		}
	}
	if s.node != nil {
		select {
		case <-s.node.Ready():
		case <-ctx.Done():
			return fmt.Errorf("zeppelin: data role not ready (not registered with the meta group yet): %w", ctx.Err())
		case <-s.group.Done():
			return ErrClosed
		}
	}
	return nil
}

// Client returns a client of the cluster, shared by every caller and closed
// with the server (after Close, its calls return client.ErrClosed). Calls
// to partitions this process masters are served in-process.
func (s *Server) Client() *client.Client { return s.cli }

// newClient creates the server's client: it bootstraps from the server's
// own RPC address, then the Join members (a data node that has not met the
// meta group yet knows no member to name), and serves requests to its data
// node in-process.
func (s *Server) newClient() (*client.Client, error) {
	cfg := client.DefaultConfig(append([]string{s.advertise}, s.cfg.Join...)...)
	cfg.Timeout = s.cfg.ClientTimeout
	cfg.Limits = s.cfg.Limits
	cfg.Name = s.nodeID
	cfg.Logger = s.log
	cfg.Secret = s.cfg.Secret
	var c *client.Client
	var err error
	if s.node != nil {
		c, err = client.NewInProcess(cfg, s.network, s.advertise, localNode{s.node})
	} else {
		c, err = client.NewWithNetwork(cfg, s.network)
	}
	if err != nil {
		return nil, fmt.Errorf("zeppelin: create the client: %w", err)
	}
	return c, nil
}

// localNode serves the requests of a process's client to the process's
// own data node.
type localNode struct{ n *node.Server }

// ServeLocal implements client.Local.
func (l localNode) ServeLocal(ctx context.Context, req, resp any) (bool, error) {
	var kind wire.Kind
	switch req.(type) {
	case *wire.WriteRequest:
		kind = wire.KindWrite
	case *wire.ReadRequest:
		kind = wire.KindRead
	case *wire.ListRequest:
		kind = wire.KindList
	default:
		return false, nil
	}
	return l.n.ServeLocal(ctx, kind, req, resp)
}

// frameLimit is the largest RPC frame a process with limits l accepts (l
// with its defaults applied).
func frameLimit(l Limits) int { return wire.Limits(l).FrameLimit() }

// Addr returns the advertised RPC address: give it to clients and to other
// servers' Join.
func (s *Server) Addr() string { return s.advertise }

// NodeID returns this process's node ID.
func (s *Server) NodeID() string { return s.nodeID }

// Roles returns the roles this process plays.
func (s *Server) Roles() Roles { return s.cfg.Roles }

// GossipAddr returns the advertised gossip address, or "" when gossip is
// off.
func (s *Server) GossipAddr() string {
	if s.disc == nil {
		return ""
	}
	return s.disc.Addr()
}

// RaftAddr returns the meta Raft address, or "" without the meta role.
func (s *Server) RaftAddr() string {
	if s.meta == nil {
		return ""
	}
	return s.cfg.RaftAddr
}

// Meta gives access to the meta member of this process (nil without the
// meta role). It is meant for tests and tools and is not covered by
// compatibility.
func (s *Server) Meta() *meta.Server { return s.meta }

// Node gives access to the data node of this process (nil without the data
// role). It is meant for tests and tools and is not covered by
// compatibility.
func (s *Server) Node() *node.Server { return s.node }

// Shutdown stops the process gracefully: the meta leader first hands every
// partition this data node masters to a caught-up slave by planned
// switchovers (clients move over within milliseconds), then the node
// refuses writes to whatever it still masters and waits until its
// connected slaves hold its last records; then it closes. A planned stop
// therefore neither pauses writes for a failure-detection timeout nor
// loses an acknowledged write, even in async mode. What could not be done
// before ctx ended (partitions without a caught-up slave, slaves still
// behind) or within twice DownTimeout (an unreachable meta group) is logged
// as a warning and the server closes anyway; the error is Close's.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.group.Done():
		return s.Close()
	default:
	}
	if s.node != nil && s.mastersWithSlaves() {
		// Waiting longer than the failure detector would is pointless:
		// without a meta quorum (the whole cluster stopping, say) the
		// partitions fail over after DownTimeout anyway.
		hctx, cancel := context.WithTimeout(ctx, 2*s.cfg.DownTimeout)
		reply, err := s.handOff(hctx)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("zeppelin: could not hand off master roles: its partitions fail over after DownTimeout", "err", err)
		case len(reply.Failed) > 0:
			s.log.Warn("zeppelin: some master roles not handed off", "moved", reply.Moved, "kept", len(reply.Failed), "first", reply.Failed[0])
		default:
			s.log.Info("zeppelin: handed off master roles", "moved", reply.Moved)
		}
		if err := s.node.Drain(ctx); err != nil {
			s.log.Warn("zeppelin: closing with slaves behind", "err", err)
		}
	}
	return s.Close()
}

// handOffRounds bounds the hand-off requests of one Shutdown.
const handOffRounds = 4

// handOff asks the meta leader to move this node's master roles to caught-up
// slaves. The leader judges slaves by their last heartbeats, so a slave that
// has just caught up (or a node started a moment ago) may not count yet:
// roles it could not move are asked for again after two heartbeats, a few
// times, within ctx. The reply counts every role moved and lists those kept.
func (s *Server) handOff(ctx context.Context) (wire.HandOffReply, error) {
	var total wire.HandOffReply
	for round := 0; ; round++ {
		var reply wire.HandOffReply
		if err := s.metaCall.Call(ctx, true, wire.KindMetaHandOff, &wire.HandOffRequest{Node: placement.NodeID(s.nodeID)}, &reply); err != nil {
			if round > 0 {
				return total, nil // keep the last round's answer
			}
			return total, err
		}
		total.Moved += reply.Moved
		total.Failed = reply.Failed
		if len(reply.Failed) == 0 || round == handOffRounds-1 {
			return total, nil
		}
		t := time.NewTimer(2 * s.cfg.HeartbeatInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, nil
		case <-t.C:
		}
	}
}

// mastersWithSlaves reports whether, by the node's map, it masters a
// partition that has a slave on a node that is up: otherwise (a single
// server, replication 1, the rest of the cluster already stopped) there is
// nobody to hand a master role to, and Shutdown does not ask.
func (s *Server) mastersWithSlaves() bool {
	m := s.node.Map()
	if m == nil {
		return false
	}
	self := placement.NodeID(s.nodeID)
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.Master != self {
				continue
			}
			for _, sl := range p.Slaves {
				if n := m.Node(sl); n != nil && n.State == placement.NodeUp {
					return true
				}
			}
		}
	}
	return false
}

// Close stops every role at once and releases every port and file: for a
// data node it is what a crash looks like to the cluster (its partitions
// fail over after DownTimeout; in async mode, writes its slaves had not
// received yet are lost). Use Shutdown for a planned stop. In-flight
// requests are answered or fail; the data is left consistent on disk. It
// is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

// shutdown stops in data-flow order: stop taking requests, stop the data
// node (replication, then the store), leave gossip, stop the meta member.
func (s *Server) shutdown() error {
	s.group.Stop()
	var errs []error
	if s.http != nil {
		// Let handlers in progress finish (they read the node and the
		// meta member, closed below), but not for long.
		hctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.http.Shutdown(hctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
	}
	if s.rpc != nil {
		errs = append(errs, s.rpc.Close())
	}
	if s.sampled != nil {
		<-s.sampled // it reads the node, closed below
	}
	if s.ln != nil {
		// Serve closes it, but a Start that failed never got that far.
		_ = s.ln.Close()
	}
	if s.cli != nil {
		errs = append(errs, s.cli.Close())
	}
	if s.node != nil {
		errs = append(errs, s.node.Close())
	}
	if s.disc != nil {
		s.disc.close()
	}
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
	}
	if s.pool != nil {
		errs = append(errs, s.pool.Close())
	}
	s.group.Wait()
	s.lock.release()
	if s.log != nil {
		s.log.Info("zeppelin: stopped")
	}
	return errors.Join(errs...)
}

// advertiseAddr turns a bound address into one others can dial: an
// unspecified host becomes this machine's first non-loopback address.
func advertiseAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	host := "127.0.0.1"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range addrs {
			if ipn, ok := ia.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				host = ipn.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}
