package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// serveOptions are the flags of "zeppelin serve".
type serveOptions struct {
	config string
	dryRun bool
	local  bool

	nodeID string
	dir    string
	roles  []string

	rpcAddr       string
	advertiseAddr string
	raftAddr      string
	gossipAddr    string
	httpAddr      string
	respAddr      string
	respTable     string

	metaID      uint64
	metaMembers metaMembersValue
	metaJoin    bool
	join        []string

	zone, rack, host string
	weight           int
	durability       *choiceValue

	binlogMaxRecords     int
	binlogMaxBytes       sizeValue
	memoryBudget         sizeValue
	uncompressedTables   bool
	readCache            cacheSizeValue
	binlogMaxAge         time.Duration
	binlogHardMaxRecords int
	binlogHardMaxBytes   sizeValue
	binlogSoloMaxBytes   sizeValue

	maxKeySize   sizeValue
	maxValueSize sizeValue
	maxBatchOps  int
	maxMultiKeys int

	heartbeatInterval time.Duration
	downTimeout       time.Duration
	masterLease       time.Duration
	raftRTT           time.Duration
	electionRTT       uint64
	heartbeatRTT      uint64
	clientTimeout     time.Duration

	logLevel  *choiceValue
	logFormat *choiceValue

	security securityOptions // security_flags.go
}

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one process of a cluster (meta member, data node, RESP listener)",
		Long: `Run one process of a Zeppelin cluster with the roles you choose.

A single process with the defaults is a complete one-node cluster:

  zeppelin serve --dir /var/lib/zeppelin

A three-process cluster on one machine (run each line in its own shell; the
meta group's Raft addresses are fixed up front, --join lets every process
find the others):

  zeppelin serve --local --node-id n1 --dir /tmp/zp/n1 --rpc-addr 127.0.0.1:7001 \
    --gossip-addr 127.0.0.1:7201 --resp-addr 127.0.0.1:6381 --meta-id 1 \
    --meta-members 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 \
    --join 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
  (n2 and n3 likewise with their own ports, directories and --meta-id)

A data-only process joins an existing cluster through any member:

  zeppelin serve --roles data --node-id n4 --dir /tmp/zp/n4 --join 127.0.0.1:7001

A new meta member is added to the group first, then started with --meta-join
(see "zeppelin meta --help"):

  zeppelin meta add 4 127.0.0.1:7104 --addr 127.0.0.1:7001
  zeppelin serve --local --roles meta --node-id n5 --dir /tmp/zp/n5 --rpc-addr 127.0.0.1:7005 \
    --meta-join --meta-id 4 --raft-addr 127.0.0.1:7104 --join 127.0.0.1:7001

Every setting can also come from a JSON file given with --config: an object
whose keys are the long flag names below, for example
  {"node-id": "n1", "dir": "/var/lib/zeppelin", "roles": ["meta", "data"],
   "meta-id": 1, "meta-members": {"1": "10.0.0.1:7100", "2": "10.0.0.2:7100", "3": "10.0.0.3:7100"},
   "join": ["10.0.0.1:7070", "10.0.0.2:7070", "10.0.0.3:7070"], "durability": "always"}
Flags given on the command line override the file. --dry-run prints the
effective settings in the same format and exits.

The process prints one line to stdout when it is ready ("zeppelin ready
node=... rpc=..."), logs to stderr, and shuts down cleanly on SIGINT or
SIGTERM (a second signal exits at once).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Flags(), stdout, stderr)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

// register defines the flags, with the library's defaults.
func (o *serveOptions) register(fs *pflag.FlagSet) {
	d := zeppelin.DefaultConfig("")
	l := zeppelin.DefaultLocalConfig("")
	fs.SortFlags = false

	fs.StringVar(&o.config, "config", "", "read settings from this JSON `file` (keys are the long flag names; command-line flags win)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "check the settings, print them as a JSON config file and exit")
	fs.BoolVar(&o.local, "local", false, fmt.Sprintf("use the timers, binlog retention and small memory footprint of DefaultLocalConfig, for tests and demos on one machine (heartbeat %v, down timeout %v, master lease %v, Raft RTT %v); flags given explicitly still win",
		l.HeartbeatInterval, l.DownTimeout, l.MasterLease, l.RaftRTT))

	fs.StringVar(&o.nodeID, "node-id", "", "this node's `ID`, unique and stable across restarts (default: the ID recorded in --dir, or a new random one)")
	fs.StringVar(&o.dir, "dir", "zeppelin-data", "data `directory` holding all persistent state; one process at a time")
	fs.StringSliceVar(&o.roles, "roles", []string{"meta", "data"}, "roles of this process: meta (member of the meta Raft group), data (holds partition replicas), or both")

	fs.StringVar(&o.rpcAddr, "rpc-addr", d.RPCAddr, "`host:port` the RPC listener binds (clients, admin commands and peers connect here; port 0 picks a free port)")
	fs.StringVar(&o.advertiseAddr, "advertise-addr", "", "RPC `host:port` others use to reach this process (default: the bound RPC address, an unspecified host replaced by this machine's first non-loopback address)")
	fs.StringVar(&o.raftAddr, "raft-addr", "", "`host:port` of the meta Raft transport, recorded in --dir and not changeable (required with --meta-join; default: this member's entry in --meta-members, or for a single-member group a free port chosen on first start)")
	fs.StringVar(&o.gossipAddr, "gossip-addr", d.GossipAddr, "`host:port` memberlist binds for discovery (port 0 picks a free port; \"off\" disables gossip)")
	fs.StringVar(&o.httpAddr, "http-addr", d.HTTPAddr, "`host:port` serving /metrics (Prometheus), /status (JSON), a dashboard at / and /debug/pprof (off unless given)")
	fs.StringVar(&o.respAddr, "resp-addr", "", "`host:port` of a Redis-protocol (RESP) listener for redis-cli and Redis clients (default: off)")
	fs.StringVar(&o.respTable, "resp-table", "default", "`table` RESP connections use until they SELECT another (SELECT 0 returns to it)")

	fs.Uint64Var(&o.metaID, "meta-id", 0, "this process's `ID` in the meta group (required with --meta-members or --meta-join; default 1 for a single-member group)")
	o.metaMembers = metaMembersValue{}
	fs.Var(&o.metaMembers, "meta-members", "initial meta group: Raft addresses of its 1, 3 or 5 members, e.g. 1=10.0.0.1:7100,2=10.0.0.2:7100,3=10.0.0.3:7100 (default: a single-member group of this process)")
	fs.BoolVar(&o.metaJoin, "meta-join", false, "start this meta member as a new member of an existing group; it must have been added first (zeppelin meta add ID RAFT_ADDR) and needs --meta-id and --raft-addr, not --meta-members; harmless on later starts")
	fs.StringSliceVar(&o.join, "join", nil, "RPC `addresses` of existing members (host:port,...) to find the cluster through; required for a data-only process")

	fs.StringVar(&o.zone, "zone", "", "zone `label` of this data node (failure domain)")
	fs.StringVar(&o.rack, "rack", "", "rack `label` of this data node (failure domain)")
	fs.StringVar(&o.host, "host", "", "host `label` of this data node (failure domain; default: the node is its own host)")
	fs.IntVar(&o.weight, "weight", d.Weight, "relative capacity of this data node, for replica placement")
	o.durability = newChoice(d.Durability.String(), "always", "interval", "none")
	fs.Var(o.durability, "durability", "when writes reach the disk: always (fsync before acknowledging), interval (fsync every second), none (leave it to the OS)")

	o.memoryBudget = sizeValue(d.MemoryBudget)
	fs.Var(&o.memoryBudget, "memory-budget", "memory the data store keeps for its block cache, memtables and the buffers flushes and compactions build tables in; the process's soft memory limit (GOMEMLIMIT, unless set in the environment) is set to it plus 96 MiB (the same with --local)")
	o.readCache = cacheSizeValue(d.ReadCacheSize)
	fs.Var(&o.readCache, "read-cache", "size of the data store's cache of point-read answers (a hot key's GET skips Badger): auto (three sixteenths of --memory-budget, taken from the block cache), off, or a size")
	fs.BoolVar(&o.uncompressedTables, "uncompressed-tables", d.UncompressedTables, "store the data store's tables uncompressed, read from their mappings with no block cache: faster point reads of small values, more disk, memory and compaction for compressible ones")
	fs.IntVar(&o.binlogMaxRecords, "binlog-max-records", d.Retention.MaxRecords, "soft limit on binlog records kept per replica (0: unlimited)")
	o.binlogMaxBytes = sizeValue(d.Retention.MaxBytes)
	fs.Var(&o.binlogMaxBytes, "binlog-max-bytes", "soft limit on binlog bytes kept per replica (0: unlimited; a connected slave holds soft limits back)")
	fs.DurationVar(&o.binlogMaxAge, "binlog-max-age", d.Retention.MaxAge, "soft limit on the age of binlog records kept (0: unlimited)")
	fs.IntVar(&o.binlogHardMaxRecords, "binlog-hard-max-records", d.Retention.HardMaxRecords, "hard cap on binlog records per replica, enforced even against a lagging slave (0: none)")
	o.binlogHardMaxBytes = sizeValue(d.Retention.HardMaxBytes)
	fs.Var(&o.binlogHardMaxBytes, "binlog-hard-max-bytes", "hard cap on binlog bytes per replica, enforced even against a lagging slave (0: none)")
	o.binlogSoloMaxBytes = sizeValue(d.Retention.SoloMaxBytes)
	fs.Var(&o.binlogSoloMaxBytes, "binlog-solo-max-bytes", "soft limit on binlog bytes kept by the master of a partition of a replication-1 table with no slave or learner, when below --binlog-max-bytes: slaves added later start with a full sync (0: --binlog-max-bytes)")

	o.maxKeySize = sizeValue(d.Limits.MaxKeySize)
	fs.Var(&o.maxKeySize, "max-key-size", "largest key accepted")
	o.maxValueSize = sizeValue(d.Limits.MaxValueSize)
	fs.Var(&o.maxValueSize, "max-value-size", "largest value accepted")
	fs.IntVar(&o.maxBatchOps, "max-batch-ops", d.Limits.MaxBatchOps, "most operations in one atomic batch (MULTI/EXEC)")
	fs.IntVar(&o.maxMultiKeys, "max-multi-keys", d.Limits.MaxMultiKeys, "most keys in one MGET/MSET/DEL")

	fs.DurationVar(&o.heartbeatInterval, "heartbeat-interval", d.HeartbeatInterval, "how often data nodes heartbeat the meta leader")
	fs.DurationVar(&o.downTimeout, "down-timeout", d.DownTimeout, "silence after which the meta leader declares a data node down and fails its partitions over")
	fs.DurationVar(&o.masterLease, "master-lease", d.MasterLease, "how long a master of a fenced table keeps accepting writes after its last acknowledged heartbeat (plus two heartbeats, at most --down-timeout)")
	fs.DurationVar(&o.raftRTT, "raft-rtt", d.RaftRTT, "meta group Raft tick")
	fs.Uint64Var(&o.electionRTT, "election-rtt", d.ElectionRTT, "meta group election timeout, in Raft ticks")
	fs.Uint64Var(&o.heartbeatRTT, "heartbeat-rtt", d.HeartbeatRTT, "meta group Raft heartbeat interval, in Raft ticks")
	fs.DurationVar(&o.clientTimeout, "client-timeout", d.ClientTimeout, "deadline of the in-process client's calls (RESP requests)")

	o.logLevel = newChoice("info", "debug", "info", "warn", "error")
	fs.Var(o.logLevel, "log-level", "log level")
	o.logFormat = newChoice("text", "text", "json")
	fs.Var(o.logFormat, "log-format", "log format on stderr")
	o.security.register(fs)
}

// applyTuning sets the Config fields of the retention, limit and timer
// flags, whose defaults depend on --local: they change the base
// configuration only when given (on the command line or in the config
// file).
func (o *serveOptions) applyTuning(fs *pflag.FlagSet, cfg *zeppelin.Config) {
	set := func(name string, apply func()) {
		if fs.Changed(name) {
			apply()
		}
	}
	set("binlog-max-records", func() { cfg.Retention.MaxRecords = o.binlogMaxRecords })
	set("binlog-max-bytes", func() { cfg.Retention.MaxBytes = int64(o.binlogMaxBytes) })
	set("memory-budget", func() { cfg.MemoryBudget = int64(o.memoryBudget) })
	set("uncompressed-tables", func() { cfg.UncompressedTables = o.uncompressedTables })
	set("read-cache", func() { cfg.ReadCacheSize = int64(o.readCache) })
	set("binlog-max-age", func() { cfg.Retention.MaxAge = o.binlogMaxAge })
	set("binlog-hard-max-records", func() { cfg.Retention.HardMaxRecords = o.binlogHardMaxRecords })
	set("binlog-hard-max-bytes", func() { cfg.Retention.HardMaxBytes = int64(o.binlogHardMaxBytes) })
	set("binlog-solo-max-bytes", func() { cfg.Retention.SoloMaxBytes = int64(o.binlogSoloMaxBytes) })
	set("max-key-size", func() { cfg.Limits.MaxKeySize = int(o.maxKeySize) })
	set("max-value-size", func() { cfg.Limits.MaxValueSize = int(o.maxValueSize) })
	set("max-batch-ops", func() { cfg.Limits.MaxBatchOps = o.maxBatchOps })
	set("max-multi-keys", func() { cfg.Limits.MaxMultiKeys = o.maxMultiKeys })
	set("heartbeat-interval", func() { cfg.HeartbeatInterval = o.heartbeatInterval })
	set("down-timeout", func() { cfg.DownTimeout = o.downTimeout })
	set("master-lease", func() { cfg.MasterLease = o.masterLease })
	set("raft-rtt", func() { cfg.RaftRTT = o.raftRTT })
	set("election-rtt", func() { cfg.ElectionRTT = o.electionRTT })
	set("heartbeat-rtt", func() { cfg.HeartbeatRTT = o.heartbeatRTT })
	set("client-timeout", func() { cfg.ClientTimeout = o.clientTimeout })
}

// buildConfig turns the flags into a validated Config. It reports every
// problem at once, one per line, naming flags rather than Config fields.
func (o *serveOptions) buildConfig(fs *pflag.FlagSet, logger *slog.Logger) (zeppelin.Config, error) {
	cfg := zeppelin.DefaultConfig(o.dir)
	if o.local {
		cfg = zeppelin.DefaultLocalConfig(o.dir)
	}
	var errs []error
	cfg.NodeID = strings.TrimSpace(o.nodeID)
	cfg.Roles = 0
	for _, r := range o.roles {
		switch strings.ToLower(strings.TrimSpace(r)) {
		case "meta":
			cfg.Roles |= zeppelin.RoleMeta
		case "data":
			cfg.Roles |= zeppelin.RoleData
		case "":
		default:
			errs = append(errs, fmt.Errorf("--roles: unknown role %q (want meta, data or meta,data)", r))
		}
	}
	cfg.RPCAddr = o.rpcAddr
	cfg.AdvertiseAddr = o.advertiseAddr
	cfg.RaftAddr = o.raftAddr
	cfg.GossipAddr = o.gossipAddr
	cfg.HTTPAddr = o.httpAddr
	cfg.MetaID = o.metaID
	if len(o.metaMembers) > 0 {
		cfg.MetaMembers = maps.Clone(map[uint64]string(o.metaMembers))
	}
	cfg.MetaJoin = o.metaJoin
	cfg.Join = nil
	for _, j := range o.join {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	cfg.Labels = placement.Labels{Zone: o.zone, Rack: o.rack, Host: o.host}
	cfg.Weight = o.weight
	if o.weight == 0 {
		errs = append(errs, errors.New("--weight must be at least 1"))
	}
	switch o.durability.value {
	case "always":
		cfg.Durability = zeppelin.DurabilityAlways
	case "interval":
		cfg.Durability = zeppelin.DurabilityInterval
	case "none":
		cfg.Durability = zeppelin.DurabilityNone
	}
	o.applyTuning(fs, &cfg)
	errs = append(errs, o.security.apply(&cfg)...)
	if o.respAddr != "" {
		if _, _, err := net.SplitHostPort(o.respAddr); err != nil {
			errs = append(errs, fmt.Errorf("--resp-addr %q: %w", o.respAddr, err))
		}
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, flagNames(err))
	}
	cfg.Logger = logger
	return cfg, errors.Join(errs...)
}

// configFieldFlag matches the Config field names Validate's messages use.
var configFieldFlag = regexp.MustCompile(`\b(Dir|Roles|RPCAddr|AdvertiseAddr|GossipAddr|HTTPAddr|Join address(?:es)?|MetaID|RaftAddr|MetaMembers|MetaJoin|Weight|Durability|HeartbeatIntervals?|DownTimeout|MasterLease|RaftRTT|ElectionRTT|HeartbeatRTT|ClientTimeout)\b`)

var fieldToFlag = map[string]string{
	"Dir": "--dir", "Roles": "--roles", "RPCAddr": "--rpc-addr", "AdvertiseAddr": "--advertise-addr",
	"GossipAddr": "--gossip-addr", "HTTPAddr": "--http-addr", "Join address": "--join address", "Join addresses": "--join addresses",
	"MetaID": "--meta-id", "RaftAddr": "--raft-addr", "MetaMembers": "--meta-members", "MetaJoin": "--meta-join", "Weight": "--weight",
	"Durability": "--durability", "HeartbeatInterval": "--heartbeat-interval", "HeartbeatIntervals": "--heartbeat-interval",
	"DownTimeout": "--down-timeout", "MasterLease": "--master-lease", "RaftRTT": "--raft-rtt",
	"ElectionRTT": "--election-rtt", "HeartbeatRTT": "--heartbeat-rtt", "ClientTimeout": "--client-timeout",
}

// flagNames rewrites the Config field names in Validate's messages as the
// flags that set them, so an operator knows what to change. The result
// keeps one problem per line.
func flagNames(err error) error {
	msg := configFieldFlag.ReplaceAllStringFunc(err.Error(), func(f string) string {
		if fl, ok := fieldToFlag[f]; ok {
			return fl
		}
		return f
	})
	msg = strings.ReplaceAll(msg, "plus two --heartbeat-interval", "plus two times --heartbeat-interval")
	return configError{msg: msg, err: err}
}

// configError is Validate's error with its text rewritten for the command
// line; it still matches the original with errors.Is.
type configError struct {
	msg string
	err error
}

func (e configError) Error() string { return e.msg }
func (e configError) Unwrap() error { return e.err }

// logger returns the process logger, slog to w at the chosen level and
// format, and the gate that holds its records back until the start has
// succeeded.
func (o *serveOptions) logger(w io.Writer) (*slog.Logger, *logGate) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel.value))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if o.logFormat.value == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	gh, gate := newGateHandler(h)
	return slog.New(gh), gate
}

// run is "zeppelin serve": start, report readiness, wait for a signal,
// shut down.
func (o *serveOptions) run(fs *pflag.FlagSet, stdout, stderr io.Writer) error {
	if o.config != "" {
		if err := applyConfigFile(fs, o.config); err != nil {
			return usageError{err: err}
		}
	}
	logger, gate := o.logger(stderr)
	// A failed start prints its error alone; --log-level debug shows the
	// logs that led to it.
	startFailed := func() { gate.release(o.logLevel.value == "debug") }
	cfg, err := o.buildConfig(fs, logger)
	if err != nil {
		return usageError{err: err}
	}
	if o.dryRun {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		out, err := o.security.withSettings(o.fileConfig(cfg))
		if err != nil {
			return err
		}
		return enc.Encode(out)
	}

	// Bind the RESP port first: a port in use is a start-up error, found
	// before anything else is started.
	var respLn net.Listener
	if o.respAddr != "" {
		if respLn, err = net.Listen("tcp", o.respAddr); err != nil {
			startFailed()
			return fmt.Errorf("listen for RESP on %s: %w", o.respAddr, err)
		}
	}
	setMemoryLimit(cfg.MemoryBudget)
	srv, err := zeppelin.Start(cfg)
	if err != nil {
		startFailed()
		if respLn != nil {
			respLn.Close()
		}
		return err
	}
	var front *respFront
	if respLn != nil {
		if front, err = o.security.startRESP(respLn, srv, o.respTable, logger, cfg.Users); err != nil {
			respLn.Close()
			err = errors.Join(err, srv.Close())
			startFailed()
			return err
		}
	}
	gate.release(true)
	defer o.security.watchSIGHUP(srv, logger)()

	// Signals are caught once the start has succeeded: until then a
	// signal ends the process at once, which leaves nothing behind that a
	// crash would not.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- srv.WaitReady(ctx) }()
	waiting := time.NewTicker(10 * time.Second)
	defer waiting.Stop()
	var (
		sig     os.Signal
		failure error
	)
	var frontDone <-chan error
	if front != nil {
		frontDone = front.done
	}
loop:
	for {
		select {
		case err := <-ready:
			ready = nil
			waiting.Stop()
			if err != nil {
				// Only cancellation (a signal) or Close gets here.
				logger.Warn("zeppelin: not ready", "err", err)
				continue
			}
			line := fmt.Sprintf("zeppelin ready node=%s roles=%s rpc=%s", srv.NodeID(), roleList(srv.Roles()), srv.Addr())
			if a := srv.RaftAddr(); a != "" {
				line += " raft=" + a
			}
			if a := srv.GossipAddr(); a != "" {
				line += " gossip=" + a
			}
			if a := srv.HTTPAddr(); a != "" {
				line += " http=" + a
			}
			if respLn != nil {
				line += " resp=" + respLn.Addr().String()
			}
			fmt.Fprintln(stdout, line)
			logger.Info("zeppelin: ready", "node", srv.NodeID(), "rpc", srv.Addr())
		case <-waiting.C:
			logger.Warn("zeppelin: still waiting for the cluster (meta leader, registration)", "rpc", srv.Addr(), "join", cfg.Join)
		case err := <-frontDone:
			failure = fmt.Errorf("RESP listener on %s failed: %w", respLn.Addr(), err)
			logger.Error("zeppelin: " + failure.Error() + "; shutting down")
			break loop
		case sig = <-sigs:
			logger.Info("zeppelin: shutting down", "signal", sig.String())
			break loop
		}
	}
	cancel()

	// A second signal does not wait for the clean shutdown.
	go func() {
		s := <-sigs
		fmt.Fprintf(stderr, "zeppelin: received %v again: exiting without a clean shutdown\n", s)
		os.Exit(1)
	}()
	var errs []error
	if front != nil {
		if err := front.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close RESP listener: %w", err))
		}
	}
	// Hand master roles off and let the slaves catch up before closing:
	// a planned stop pauses nobody's writes and loses nothing.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = srv.Shutdown(sctx)
	scancel()
	if err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	if failure != nil {
		errs = append([]error{failure}, errs...)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	logger.Info("zeppelin: stopped cleanly")
	return nil
}

// roleList spells roles the way --roles takes them.
func roleList(r zeppelin.Roles) string {
	var out []string
	if r&zeppelin.RoleMeta != 0 {
		out = append(out, "meta")
	}
	if r&zeppelin.RoleData != 0 {
		out = append(out, "data")
	}
	return strings.Join(out, ",")
}

// fileConfig is the JSON config file format: every key is a flag's long
// name. --dry-run prints the effective settings in it.
type fileConfig struct {
	NodeID        string            `json:"node-id,omitempty"`
	Dir           string            `json:"dir"`
	Roles         []string          `json:"roles"`
	RPCAddr       string            `json:"rpc-addr"`
	AdvertiseAddr string            `json:"advertise-addr,omitempty"`
	RaftAddr      string            `json:"raft-addr,omitempty"`
	GossipAddr    string            `json:"gossip-addr"`
	HTTPAddr      string            `json:"http-addr,omitempty"`
	RESPAddr      string            `json:"resp-addr,omitempty"`
	RESPTable     string            `json:"resp-table,omitempty"`
	MetaID        uint64            `json:"meta-id,omitempty"`
	MetaMembers   map[string]string `json:"meta-members,omitempty"`
	MetaJoin      bool              `json:"meta-join,omitempty"`
	Join          []string          `json:"join,omitempty"`
	Zone          string            `json:"zone,omitempty"`
	Rack          string            `json:"rack,omitempty"`
	Host          string            `json:"host,omitempty"`
	Weight        int               `json:"weight"`
	Durability    string            `json:"durability"`
	MemoryBudget  string            `json:"memory-budget"`
	Uncompressed  bool              `json:"uncompressed-tables,omitempty"`
	ReadCache     string            `json:"read-cache"`

	BinlogMaxRecords     int    `json:"binlog-max-records"`
	BinlogMaxBytes       string `json:"binlog-max-bytes"`
	BinlogMaxAge         string `json:"binlog-max-age"`
	BinlogHardMaxRecords int    `json:"binlog-hard-max-records"`
	BinlogHardMaxBytes   string `json:"binlog-hard-max-bytes"`
	BinlogSoloMaxBytes   string `json:"binlog-solo-max-bytes"`

	MaxKeySize   string `json:"max-key-size"`
	MaxValueSize string `json:"max-value-size"`
	MaxBatchOps  int    `json:"max-batch-ops"`
	MaxMultiKeys int    `json:"max-multi-keys"`

	HeartbeatInterval string `json:"heartbeat-interval"`
	DownTimeout       string `json:"down-timeout"`
	MasterLease       string `json:"master-lease"`
	RaftRTT           string `json:"raft-rtt"`
	ElectionRTT       uint64 `json:"election-rtt"`
	HeartbeatRTT      uint64 `json:"heartbeat-rtt"`
	ClientTimeout     string `json:"client-timeout"`

	Local     bool   `json:"local,omitempty"`
	LogLevel  string `json:"log-level"`
	LogFormat string `json:"log-format"`
}

// fileConfig returns the effective settings of cfg (built from o) as a
// config file.
func (o *serveOptions) fileConfig(cfg zeppelin.Config) fileConfig {
	size := func(n int64) string { v := sizeValue(n); return v.String() }
	f := fileConfig{
		NodeID: cfg.NodeID, Dir: cfg.Dir, Roles: strings.Split(roleList(cfg.Roles), ","),
		RPCAddr: cfg.RPCAddr, AdvertiseAddr: cfg.AdvertiseAddr, RaftAddr: cfg.RaftAddr, GossipAddr: cfg.GossipAddr, HTTPAddr: cfg.HTTPAddr,
		RESPAddr: o.respAddr, RESPTable: o.respTable, MetaID: cfg.MetaID, MetaJoin: cfg.MetaJoin, Join: cfg.Join,
		Zone: cfg.Labels.Zone, Rack: cfg.Labels.Rack, Host: cfg.Labels.Host, Weight: cfg.Weight,
		Durability: cfg.Durability.String(), MemoryBudget: size(cfg.MemoryBudget), Uncompressed: cfg.UncompressedTables,
		ReadCache: func() string { v := cacheSizeValue(cfg.ReadCacheSize); return v.String() }(),

		BinlogMaxRecords: cfg.Retention.MaxRecords, BinlogMaxBytes: size(cfg.Retention.MaxBytes),
		BinlogMaxAge: cfg.Retention.MaxAge.String(), BinlogHardMaxRecords: cfg.Retention.HardMaxRecords,
		BinlogHardMaxBytes: size(cfg.Retention.HardMaxBytes), BinlogSoloMaxBytes: size(cfg.Retention.SoloMaxBytes),

		MaxKeySize: size(int64(cfg.Limits.MaxKeySize)), MaxValueSize: size(int64(cfg.Limits.MaxValueSize)),
		MaxBatchOps: cfg.Limits.MaxBatchOps, MaxMultiKeys: cfg.Limits.MaxMultiKeys,

		HeartbeatInterval: cfg.HeartbeatInterval.String(), DownTimeout: cfg.DownTimeout.String(),
		MasterLease: cfg.MasterLease.String(), RaftRTT: cfg.RaftRTT.String(),
		ElectionRTT: cfg.ElectionRTT, HeartbeatRTT: cfg.HeartbeatRTT, ClientTimeout: cfg.ClientTimeout.String(),

		Local: o.local, LogLevel: o.logLevel.value, LogFormat: o.logFormat.value,
	}
	if len(cfg.MetaMembers) > 0 {
		f.MetaMembers = make(map[string]string, len(cfg.MetaMembers))
		for id, a := range cfg.MetaMembers {
			f.MetaMembers[strconv.FormatUint(id, 10)] = a
		}
	}
	return f
}

// setMemoryLimit sets the Go runtime's soft memory limit to the store's
// memory budget plus 96 MiB for the rest of the server and the collector's
// headroom, unless GOMEMLIMIT is set: Badger builds its tables in
// garbage-collected buffers, and without a limit the heap grows to twice
// its live size between collections (with a limit of twice the budget, it
// did). With only 64 MiB over the budget the collector ran so often that
// writes slowed to about 0.6 of their speed (docs/performance.md). The process is
// the server's own, so a process-wide setting is right here (an embedding
// program makes this choice itself).
func setMemoryLimit(budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" || budget <= 0 {
		return
	}
	debug.SetMemoryLimit(memoryLimit(budget))
}

// memoryLimit is the soft memory limit serve sets for a memory budget.
func memoryLimit(budget int64) int64 { return budget + 96<<20 }
