package resp

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// cmdInfo answers INFO [section ...]: "all", "everything" and "default"
// (the same as no argument) select every section.
func (c *conn) cmdInfo(ctx context.Context, args [][]byte) {
	want := make(map[string]bool)
	for _, a := range args[1:] {
		s := string(toLower(a))
		if s == "all" || s == "everything" || s == "default" {
			want = nil
			break
		}
		want[s] = true
	}
	if len(args) == 1 {
		want = nil
	}
	on := func(s string) bool { return want == nil || want[s] }

	var cl *clusterView
	if on("replication") || on("cluster") || on("keyspace") {
		cl = c.clusterView(ctx)
	}
	// Redis's sections first; cluster and keyspace describe the Zeppelin
	// cluster behind the front end.
	sections := [...]string{"server", "clients", "stats", "replication", "cluster", "keyspace"}
	var b strings.Builder
	for _, sec := range sections {
		if !on(sec) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", strings.ToUpper(sec[:1])+sec[1:])
		switch sec {
		case "server":
			c.infoServer(&b)
		case "clients":
			c.infoClients(&b)
		case "stats":
			c.infoStats(&b)
		case "replication":
			cl.replication(&b)
		case "cluster":
			cl.cluster(&b)
		case "keyspace":
			cl.keyspace(&b)
		}
	}
	c.out.verbatim("txt", b.String())
}

func field(b *strings.Builder, k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }

func (c *conn) infoServer(b *strings.Builder) {
	up := time.Since(c.s.started)
	port := ""
	if _, p, err := net.SplitHostPort(c.laddr); err == nil {
		port = p
	}
	field(b, "redis_version", redisVersion)
	field(b, "server_name", c.s.cfg.Name)
	field(b, "redis_mode", "standalone")
	field(b, "os", runtime.GOOS+" "+runtime.GOARCH)
	field(b, "arch_bits", 32<<(^uint(0)>>63))
	field(b, "go_version", runtime.Version())
	field(b, "process_id", os.Getpid())
	field(b, "tcp_port", port)
	field(b, "server_time_usec", time.Now().UnixMicro())
	field(b, "uptime_in_seconds", int64(up.Seconds()))
	field(b, "uptime_in_days", int64(up.Hours()/24))
	field(b, "default_table", c.s.cfg.DefaultTable)
}

func (c *conn) infoClients(b *strings.Builder) {
	field(b, "connected_clients", c.s.connections.Load())
	field(b, "blocked_clients", 0)
}

func (c *conn) infoStats(b *strings.Builder) {
	c.settle()
	st := c.s.Stats()
	field(b, "total_connections_received", st.TotalConnections)
	field(b, "total_commands_processed", st.Commands)
	field(b, "total_net_input_bytes", st.NetInputBytes)
	field(b, "total_net_output_bytes", st.NetOutputBytes)
	field(b, "total_error_replies", st.Errors)
	field(b, "protocol_errors", st.ProtocolErrors)
	field(b, "recovered_panics", st.Panics)
}

// clusterView is what INFO reports about the cluster: the meta leader's
// status when it answers, the client's map otherwise.
type clusterView struct {
	st  *client.Status
	m   *placement.Map
	err error
}

func (c *conn) clusterView(ctx context.Context) *clusterView {
	ctx, cancel := c.clusterContext(ctx)
	defer cancel()
	v := &clusterView{}
	st, err := c.s.c.Status(ctx)
	if err == nil && st.Map != nil {
		v.st, v.m = st, st.Map
		return v
	}
	v.err = err
	if v.m, err = c.s.c.Map(ctx); err != nil {
		v.err = err
	}
	return v
}

// nodeFigures are one data node's replicas and worst lag.
type nodeFigures struct {
	masters, slaves      int
	maxLagMs, maxLagRecs int64
	heartbeatAgeMs       int64
	streaming, syncing   int
	incomplete           int
}

func (v *clusterView) figures() map[placement.NodeID]*nodeFigures {
	out := make(map[placement.NodeID]*nodeFigures)
	get := func(id placement.NodeID) *nodeFigures {
		f := out[id]
		if f == nil {
			f = &nodeFigures{heartbeatAgeMs: -1}
			out[id] = f
		}
		return f
	}
	if v.m != nil {
		for _, n := range v.m.Nodes {
			get(n.ID)
		}
		for _, t := range v.m.Tables {
			for _, p := range t.Partitions {
				if p.Master != "" {
					get(p.Master).masters++
				}
				for _, s := range p.Slaves {
					get(s).slaves++
				}
			}
		}
	}
	if v.st != nil {
		for _, ns := range v.st.Nodes {
			f := get(ns.Node.ID)
			f.heartbeatAgeMs = ns.HeartbeatAgeMs
			for _, r := range ns.Replicas {
				if r.Role.String() != "slave" {
					continue
				}
				f.maxLagMs = max(f.maxLagMs, r.LagMs)
				f.maxLagRecs = max(f.maxLagRecs, int64(r.LagRecords))
				switch r.State.String() {
				case "streaming":
					f.streaming++
				case "connecting", "full-syncing":
					f.syncing++
				}
				if r.Incomplete {
					f.incomplete++
				}
			}
		}
	}
	return out
}

func (v *clusterView) replication(b *strings.Builder) {
	// The front end accepts writes for every partition: to Redis tools it
	// is a master.
	field(b, "role", "master")
	if v.err != nil {
		field(b, "cluster_status_error", strings.ReplaceAll(v.err.Error(), "\n", " "))
	}
	if v.m == nil {
		return
	}
	parts, noMaster, slaves := 0, 0, 0
	for _, t := range v.m.Tables {
		for _, p := range t.Partitions {
			parts++
			slaves += len(p.Slaves)
			if p.Master == "" {
				noMaster++
			}
		}
	}
	field(b, "partitions", parts)
	field(b, "partitions_without_master", noMaster)
	field(b, "slave_replicas", slaves)
	if v.st == nil {
		return
	}
	var streaming, syncing, incomplete int
	var lagMs, lagRecs int64
	for _, f := range v.figures() {
		streaming += f.streaming
		syncing += f.syncing
		incomplete += f.incomplete
		lagMs = max(lagMs, f.maxLagMs)
		lagRecs = max(lagRecs, f.maxLagRecs)
	}
	field(b, "slave_replicas_streaming", streaming)
	field(b, "slave_replicas_syncing", syncing)
	field(b, "slave_replicas_incomplete", incomplete)
	field(b, "max_replication_lag_ms", lagMs)
	field(b, "max_replication_lag_records", lagRecs)
}

func (v *clusterView) cluster(b *strings.Builder) {
	field(b, "cluster_enabled", 0) // not the Redis Cluster protocol
	if v.m == nil {
		if v.err != nil {
			field(b, "cluster_status_error", strings.ReplaceAll(v.err.Error(), "\n", " "))
		}
		return
	}
	field(b, "cluster_epoch", uint64(v.m.Epoch))
	if v.st != nil {
		field(b, "meta_members", len(v.st.Members))
		field(b, "meta_leader", v.st.LeaderID)
		field(b, "meta_leader_addr", v.st.LeaderAddr)
		field(b, "meta_term", v.st.Term)
	} else {
		field(b, "meta_members", len(v.m.Meta))
	}
	up, down := 0, 0
	for _, n := range v.m.Nodes {
		if n.State == placement.NodeDown {
			down++
		} else {
			up++
		}
	}
	field(b, "nodes", len(v.m.Nodes))
	field(b, "nodes_up", up)
	field(b, "nodes_down", down)
	figs := v.figures()
	for i, n := range v.m.Nodes {
		f := figs[n.ID]
		fmt.Fprintf(b, "node%d:id=%s,addr=%s,state=%s,masters=%d,slaves=%d,heartbeat_age_ms=%d,max_lag_ms=%d,max_lag_records=%d\r\n",
			i, n.ID, n.Addr, n.State, f.masters, f.slaves, f.heartbeatAgeMs, f.maxLagMs, f.maxLagRecs)
	}
}

func (v *clusterView) keyspace(b *strings.Builder) {
	if v.m == nil {
		return
	}
	for _, t := range v.m.Tables {
		masters, short := 0, 0
		for _, p := range t.Partitions {
			if p.Master != "" {
				masters++
			}
			if t.Mode == placement.ModeSync && len(p.InSync) < t.MinInSync {
				short++
			}
		}
		fenced := 0
		if t.Fenced {
			fenced = 1
		}
		fmt.Fprintf(b, "table_%s:id=%d,partitions=%d,replication=%d,mode=%s,fenced=%d,partitions_with_master=%d",
			t.Name, t.ID, len(t.Partitions), t.Replication, t.Mode, fenced, masters)
		if t.Mode == placement.ModeSync {
			fmt.Fprintf(b, ",min_in_sync=%d,partitions_below_min_in_sync=%d", t.MinInSync, short)
		}
		b.WriteString("\r\n")
	}
}
