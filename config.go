package zeppelin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/meta"
	"github.com/zeppelin-kv/zeppelin/partition"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Roles is the set of roles a process plays.
type Roles uint8

// Roles a process can play. Every process can use the client.
const (
	RoleMeta Roles = 1 << iota // member of the meta Raft group
	RoleData                   // data node holding partition replicas
)

func (r Roles) String() string {
	switch r {
	case RoleMeta:
		return "meta"
	case RoleData:
		return "data"
	case RoleMeta | RoleData:
		return "meta+data"
	case 0:
		return "client"
	}
	return fmt.Sprintf("Roles(%d)", uint8(r))
}

// Durability is when a data node's writes reach the disk.
type Durability = partition.Durability

// Durability policies.
const (
	// DurabilityAlways fsyncs before a write is acknowledged.
	DurabilityAlways = partition.DurabilityAlways
	// DurabilityInterval fsyncs at least every second (the default), like
	// Redis appendfsync everysec.
	DurabilityInterval = partition.DurabilityInterval
	// DurabilityNone leaves flushing to the operating system.
	DurabilityNone = partition.DurabilityNone
)

// Retention bounds the binlog each replica keeps for slaves to catch up
// from. A slave that falls out of the retained log is resynchronised in
// full.
type Retention = partition.Retention

// Limits bound keys, values and multi-key requests.
type Limits = client.Limits

// MigrationConfig bounds replica moves; see Config.Migration.
type MigrationConfig = meta.MigrationConfig

// Config configures a Server. Start with DefaultConfig or
// DefaultLocalConfig and change what you need; Config is passed by value.
type Config struct {
	// NodeID names this process in the cluster; it must be unique and
	// stable across restarts. When empty, Start uses the ID recorded in Dir,
	// or records a new random one.
	NodeID string
	// Dir holds all persistent state (meta Raft log, data store).
	Dir string
	// Roles this process plays (default: meta and data).
	Roles Roles

	// RPCAddr is the address the RPC listener binds ("host:port"; port 0
	// picks a free port). One listener serves every role.
	RPCAddr string
	// AdvertiseAddr is the RPC address others use to reach this process
	// (default: the bound RPC address).
	AdvertiseAddr string
	// GossipAddr is where memberlist binds for discovery (port 0 picks a
	// free port; "off" disables gossip).
	GossipAddr string
	// Join lists RPC addresses of any existing members to find the cluster
	// through.
	Join []string
	// HTTPAddr, when set, serves /metrics (Prometheus), /status (JSON), a
	// read-only dashboard at /, /healthz and /readyz probes and
	// /debug/pprof.
	HTTPAddr string
	// PartitionMetrics adds the Prometheus series with a partition label
	// (every replica's position, lag and connection: about ten series
	// per replica) to Metrics. DefaultConfig and DefaultLocalConfig turn
	// it on; turn it off for nodes holding thousands of replicas. The
	// per-node and per-table figures are exported either way.
	PartitionMetrics bool

	// MetaID is this process's replica ID in the meta group (meta role).
	// Default 1 when MetaMembers is empty and MetaJoin is not set.
	MetaID uint64
	// RaftAddr is where the meta Raft transport listens. It is recorded in
	// Dir and must not change. When empty for a single-member group, a
	// free port is chosen on first start and reused afterwards.
	RaftAddr string
	// MetaMembers maps the initial meta members' IDs to their Raft
	// addresses. Empty means a single-member group of this process.
	MetaMembers map[uint64]string
	// MetaJoin starts this meta member as a new member of an existing
	// group; it must have been added with an admin call first
	// (client.AddMetaMember or ReplaceMetaMember, "zeppelin meta add")
	// under MetaID and RaftAddr, which are then required, while
	// MetaMembers must be empty: the member learns the membership from
	// the group. Once the member has joined, its directory holds the
	// membership and MetaJoin makes no difference to later starts.
	MetaJoin bool

	// Labels place a data node in the failure-domain hierarchy.
	Labels placement.Labels
	// Weight is a data node's relative capacity (default 1).
	Weight int
	// Durability is the data node's fsync policy (default interval).
	Durability Durability
	// Retention bounds every replica's binlog (defaults: 64 MiB and 24 h
	// per replica, hard cap 512 MiB, 16 MiB for the master of a partition
	// of a replication-1 table with no slave or learner; DefaultLocalConfig:
	// 16 MiB, 1 h, 64 MiB, 4 MiB). A connected slave holds the soft limits
	// back; the hard caps are enforced even then.
	Retention Retention
	// MemoryBudget is the memory the data store keeps on its own (its
	// block cache, memtables and the buffers flushes and compactions
	// build tables in); default 128 MiB (DefaultLocalConfig too), at
	// least 24 MiB (the largest group of writes a replica commits at once
	// is 15% of a memtable: 2.4 MiB at the default, 600 KiB at 24 MiB).
	// It sizes Badger (docs/storage.md) and is a target, not a hard
	// bound: the whole process's live heap measured 1.0–1.2 times it
	// under a write-heavy load of compressible values. It does not count the operating system's page
	// cache, through which tables on disk are read, nor the Go runtime's
	// headroom above live memory (a program embedding the store sets that
	// with GOGC or GOMEMLIMIT; "zeppelin serve" sets a soft memory limit
	// of the budget plus 96 MiB). See docs/performance.md.
	MemoryBudget int64
	// UncompressedTables stores the data store's tables uncompressed and
	// reads them from their mappings without a block cache, the memtables
	// taking the whole MemoryBudget. By default tables are
	// Snappy-compressed with a block cache of a quarter of the budget.
	// Uncompressed makes point reads of small values faster, but costs
	// disk, page cache (RSS) and compaction bandwidth for compressible
	// values: a write-heavy store of compressible values can fall behind
	// on compaction. It applies to tables written from then on. See
	// docs/performance.md.
	UncompressedTables bool
	// ReadCacheSize is the size of the data store's cache of point-read
	// answers (value, expiry or "not found"), which answers a hot key's
	// GET without searching Badger's memtables and levels. 0 (the
	// default) is three sixteenths of MemoryBudget, taken from the
	// caches' quarter (the block cache keeps a sixteenth); negative turns
	// it off; a positive size takes up to three sixteenths of
	// MemoryBudget from the block cache and adds the rest to
	// the memory the store keeps. Writes keep it exact: they remove the
	// keys they change before their commit, and a read fills it only when
	// no write has begun since its snapshot. See docs/storage.md.
	ReadCacheSize int64
	// Limits bound what one request may carry (defaults: key ≤ 60 KiB,
	// value ≤ 16 MiB, batch ≤ 10,000 ops, multi-key ≤ 10,000 keys).
	Limits Limits

	// HeartbeatInterval is how often data nodes heartbeat the meta leader.
	HeartbeatInterval time.Duration
	// DownTimeout is how long a data node may stay silent before the meta
	// leader declares it down and fails its partitions over.
	DownTimeout time.Duration
	// InSyncTimeout is how long a master of a sync table waits for an
	// in-sync slave's acknowledgement before it has the meta group remove
	// that slave from the partition's in-sync set (0: five heartbeat
	// intervals, at least 500 ms). Writes wait meanwhile, so it bounds how
	// long a slave that fails stalls a sync table's writes.
	InSyncTimeout time.Duration
	// MasterLease is how long a master of a fenced table keeps accepting
	// writes after its last acknowledged heartbeat was sent. It must be
	// shorter than DownTimeout by at least two heartbeat intervals.
	MasterLease time.Duration
	// RaftRTT is the meta group's Raft tick; elections take about
	// ElectionRTT ticks and leaders heartbeat every HeartbeatRTT ticks.
	RaftRTT      time.Duration
	ElectionRTT  uint64
	HeartbeatRTT uint64

	// ClientTimeout bounds client calls whose context has no deadline
	// (default client.DefaultTimeout).
	ClientTimeout time.Duration

	// Migration bounds replica moves (migrate, rebalance, drain,
	// re-replication) and sets their defaults: at most 2 moves per node and
	// 4 in the cluster at a time, no copy bandwidth limit, a move failed
	// after 5 minutes without progress, re-replication and automatic
	// rebalancing off. It is read by the meta leader.
	Migration MigrationConfig

	// Secret lists the cluster secrets this process accepts, the one it
	// uses first (one per line of "zeppelin serve --secret-file"). With a
	// secret, every RPC connection (node to node, client to node, meta to
	// node) and every meta Raft connection proves in its handshake that
	// it knows an accepted secret, in both directions, without sending
	// it; gossip is encrypted with keys derived from the secrets. Each
	// secret must be at least 16 bytes of something hard to guess. Rotate
	// by giving [new, old] to every process, then [new]. Empty (the
	// default): nothing is authenticated. See docs/security.md.
	Secret []string
	// Users are the cluster's users: clients authenticate as one of them
	// (client.Config.User, RESP AUTH) and may then do what its grants
	// allow. Passwords are kept as SCRAM-SHA-256 verifiers only. Users
	// need a Secret (the nodes authenticate one another with it). Empty:
	// anyone who can connect (and, with a Secret, knows it) may do
	// anything.
	Users []User
	// TLS turns on TLS for every listener and dialed connection of the
	// process (see TLSConfig); the zero value is plain TCP.
	TLS TLSConfig
	// HTTPAuth says which tokens open the HTTP endpoint when the cluster
	// authenticates (a Secret or Users); without any, only /metrics,
	// /healthz and /readyz are served then.
	HTTPAuth HTTPAuthConfig
	// NodeAdmission says how the meta group admits a data node ID it does
	// not know yet: "open" (the default) places any node that registers
	// (with a Secret, any that proves it); "admin-approved" refuses it
	// until an administrator approves the ID (client.ApproveNode, "zeppelin
	// node approve"), before or after the node first asks, and lists it as
	// pending meanwhile. Nodes already in the map are not affected. It is
	// read by the meta members.
	NodeAdmission string
	// RPCConns bounds the RPC listener's connections (defaults: 10,000
	// open, 1,000 per IP address, 5 s to finish the hello, 5 minutes
	// idle).
	RPCConns ConnLimits

	// Logger receives the server's logs. When nil, warnings and errors go
	// to standard error as text and the rest is dropped; give
	// slog.New(slog.DiscardHandler) to silence it.
	Logger *slog.Logger

	// Expert holds tuning and test hooks.
	Expert ExpertConfig
}

// ExpertConfig holds settings for tests and tuning. The zero value is right
// for production.
type ExpertConfig struct {
	// SmallFootprint sizes the store and the Raft log for many servers in
	// one process (tests, demos).
	SmallFootprint bool
	// Network carries RPC traffic (TCP when nil); tests pass a fault
	// injecting hub.
	Network transport.Network
	// FetchWait is how long a master holds a replication fetch with
	// nothing to send (default 2 heartbeat intervals, at least 200ms).
	FetchWait time.Duration
	// FetchBytes bounds the binlog bytes one replication fetch returns,
	// and so what is in flight per slave (default 4 MiB).
	FetchBytes int
	// SnapshotChunk bounds one full-sync chunk (default 4 MiB).
	SnapshotChunk int
	// MetaSnapshotEntries is how many meta log entries trigger a snapshot
	// of the meta state machine (default 10,000).
	MetaSnapshotEntries uint64
}

// DefaultConfig returns a production configuration storing its state in
// dir: meta and data roles, RPC on :7070, gossip on :7946, 1 s heartbeats,
// 5 s down timeout.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:               dir,
		Roles:             RoleMeta | RoleData,
		RPCAddr:           ":7070",
		GossipAddr:        ":7946",
		Weight:            1,
		Durability:        DurabilityInterval,
		MemoryBudget:      partition.DefaultMemoryBudget,
		Retention:         Retention{MaxBytes: 64 << 20, MaxAge: 24 * time.Hour, HardMaxBytes: 512 << 20, SoloMaxBytes: 16 << 20},
		Limits:            client.DefaultLimits(),
		HeartbeatInterval: time.Second,
		DownTimeout:       5 * time.Second,
		MasterLease:       3 * time.Second,
		RaftRTT:           10 * time.Millisecond,
		ElectionRTT:       20,
		HeartbeatRTT:      2,
		ClientTimeout:     client.DefaultTimeout,
		PartitionMetrics:  true,
	}
}

// DefaultLocalConfig returns a configuration for tests and demos: loopback
// addresses on free ports, fast timers (100 ms heartbeats, 1 s down
// timeout) and a small memory footprint.
func DefaultLocalConfig(dir string) Config {
	c := DefaultConfig(dir)
	c.RPCAddr = "127.0.0.1:0"
	c.GossipAddr = "127.0.0.1:0"
	c.HeartbeatInterval = 100 * time.Millisecond
	c.DownTimeout = time.Second
	c.MasterLease = 700 * time.Millisecond
	c.RaftRTT = 5 * time.Millisecond
	c.Retention = Retention{MaxBytes: 16 << 20, MaxAge: time.Hour, HardMaxBytes: 64 << 20, SoloMaxBytes: 4 << 20}
	c.Expert.SmallFootprint = true
	c.MemoryBudget = partition.SmallMemoryBudget
	return c
}

// Validate reports every problem with c at once. It does not touch the
// network or the disk.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("zeppelin: "+format, args...)) }
	if c.Dir == "" {
		add("Dir is required")
	}
	if c.Roles&^(RoleMeta|RoleData) != 0 {
		add("unknown roles %d", c.Roles)
	}
	if c.Roles == 0 {
		add("Roles must include meta or data (a client-only program uses package client)")
	}
	checkAddr := func(name, addr string, zeroPortOK bool) {
		if addr == "" {
			add("%s is required", name)
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			add("%s %q: %v", name, addr, err)
			return
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			add("%s %q: bad port", name, addr)
		} else if p == 0 && !zeroPortOK {
			add("%s %q: port 0 is not allowed here", name, addr)
		}
	}
	checkAddr("RPCAddr", c.RPCAddr, true)
	if c.AdvertiseAddr != "" {
		checkAddr("AdvertiseAddr", c.AdvertiseAddr, false)
	}
	if c.GossipAddr != "off" {
		checkAddr("GossipAddr", c.GossipAddr, true)
	}
	if c.HTTPAddr != "" {
		checkAddr("HTTPAddr", c.HTTPAddr, true)
	}
	for _, j := range c.Join {
		checkAddr("Join address", j, false)
	}
	if c.MetaJoin && c.Roles&RoleMeta == 0 {
		add("MetaJoin needs the meta role")
	}
	if c.Roles&RoleMeta != 0 {
		if c.MetaJoin {
			if c.MetaID == 0 {
				add("MetaID is required with MetaJoin")
			}
			if c.RaftAddr == "" {
				add("RaftAddr is required with MetaJoin")
			} else {
				checkAddr("RaftAddr", c.RaftAddr, false)
			}
			if len(c.MetaMembers) > 0 {
				add("MetaJoin and MetaMembers exclude each other: a joining member learns the membership from the group")
			}
		} else if len(c.MetaMembers) > 0 {
			if c.MetaID == 0 {
				add("MetaID is required when MetaMembers is set")
			} else if _, ok := c.MetaMembers[c.MetaID]; !ok {
				add("MetaID %d is not among MetaMembers", c.MetaID)
			}
			switch len(c.MetaMembers) {
			case 1, 3, 5:
			default:
				add("the meta group needs 1, 3 or 5 members, MetaMembers has %d", len(c.MetaMembers))
			}
			for id, addr := range c.MetaMembers {
				if id == 0 {
					add("meta member IDs must be ≥ 1")
				}
				checkAddr(fmt.Sprintf("MetaMembers[%d]", id), addr, false)
			}
			if c.RaftAddr != "" && c.MetaID != 0 && c.MetaMembers[c.MetaID] != "" && c.MetaMembers[c.MetaID] != c.RaftAddr {
				add("RaftAddr %q differs from MetaMembers[%d] %q", c.RaftAddr, c.MetaID, c.MetaMembers[c.MetaID])
			}
		} else if c.RaftAddr != "" {
			checkAddr("RaftAddr", c.RaftAddr, false)
		}
	} else if c.Roles&RoleData != 0 && len(c.Join) == 0 {
		add("a data-only process needs Join addresses to find the meta group")
	}
	if c.Weight < 0 {
		add("Weight must be ≥ 0, got %d", c.Weight)
	}
	switch c.Durability {
	case DurabilityAlways, DurabilityInterval, DurabilityNone:
	default:
		add("unknown Durability %d", c.Durability)
	}
	if _, err := meta.ParseAdmission(c.NodeAdmission); err != nil {
		add("%v", err)
	}
	if c.HeartbeatInterval <= 0 {
		add("HeartbeatInterval must be positive")
	}
	if c.DownTimeout <= 0 {
		add("DownTimeout must be positive")
	}
	if c.InSyncTimeout < 0 {
		add("InSyncTimeout must not be negative (0 means the default)")
	}
	if c.MasterLease <= 0 {
		add("MasterLease must be positive")
	}
	if c.HeartbeatInterval > 0 && c.DownTimeout > 0 && c.MasterLease > 0 &&
		c.MasterLease+2*c.HeartbeatInterval > c.DownTimeout {
		add("MasterLease (%v) plus two HeartbeatIntervals (%v) must not exceed DownTimeout (%v): a master could still accept writes when it is replaced",
			c.MasterLease, c.HeartbeatInterval, c.DownTimeout)
	}
	if c.RaftRTT <= 0 {
		add("RaftRTT must be positive")
	}
	if c.ElectionRTT <= 2*c.HeartbeatRTT {
		add("ElectionRTT (%d) must exceed twice HeartbeatRTT (%d)", c.ElectionRTT, c.HeartbeatRTT)
	}
	if c.HeartbeatRTT == 0 {
		add("HeartbeatRTT must be ≥ 1")
	}
	if c.ClientTimeout < 0 {
		add("ClientTimeout must not be negative")
	}
	l := c.Limits
	if l.MaxKeySize < 0 || l.MaxValueSize < 0 || l.MaxBatchOps < 0 || l.MaxMultiKeys < 0 {
		add("limits must not be negative: %+v", l)
	}
	if ld := l.WithDefaults(); ld.MaxMultiKeys > ld.MaxBatchOps {
		add("Limits.MaxMultiKeys (%d) must not exceed Limits.MaxBatchOps (%d): the keys of one partition in an MSet are written as one batch",
			ld.MaxMultiKeys, ld.MaxBatchOps)
	}
	if c.MemoryBudget != 0 && c.MemoryBudget < partition.MinMemoryBudget {
		add("MemoryBudget %d is below the smallest, %d bytes (0 for the default)", c.MemoryBudget, partition.MinMemoryBudget)
	}
	if c.Retention.MaxRecords < 0 || c.Retention.MaxBytes < 0 || c.Retention.MaxAge < 0 ||
		c.Retention.HardMaxRecords < 0 || c.Retention.HardMaxBytes < 0 || c.Retention.SoloMaxBytes < 0 {
		add("retention must not be negative: %+v", c.Retention)
	}
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}
