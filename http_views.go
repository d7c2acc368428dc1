package zeppelin

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The JSON views of /status. They follow "zeppelin status --json": snake
// case, roles, states and modes spelled as words, tables by name and ID.
// The wire types are not serialised directly: their field names and
// numeric enums are the protocol's, not a document's.

// statusJSON is the document /status serves; the dashboard shows it.
type statusJSON struct {
	Node    string    `json:"node"`
	Roles   string    `json:"roles"`
	RPCAddr string    `json:"rpc_addr"`
	Time    time.Time `json:"time"`
	// Ready and NotReady are what /readyz answers.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready_reason,omitempty"`
	// Error says why the meta leader's status could not be read; Cluster
	// is then missing.
	Error   string        `json:"error,omitempty"`
	Limits  client.Limits `json:"limits"`
	Cluster *clusterJSON  `json:"cluster,omitempty"`
	// Local is this process's data node as it sees itself.
	Local *localJSON `json:"local,omitempty"`
	// Events are the newest events of every process that answered,
	// newest first.
	Events []eventJSON `json:"events"`
}

// clusterJSON is the meta leader's view, completed by every member's and
// data node's own answers.
type clusterJSON struct {
	Epoch      uint64          `json:"epoch"`
	Term       uint64          `json:"term"`
	LeaderID   uint64          `json:"leader_id"`
	LeaderAddr string          `json:"leader_addr"`
	NodesUp    int             `json:"nodes_up"`
	NodesDown  int             `json:"nodes_down"`
	Members    []memberJSON    `json:"members"`
	Nodes      []nodeJSON      `json:"nodes"`
	Tables     []tableJSON     `json:"tables"`
	Migrations []migrationJSON `json:"migrations,omitempty"`
}

// memberJSON is one meta member: the leader's record of it and what it
// answered itself.
type memberJSON struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	Leader   bool   `json:"leader"`
	// Reachable is set when the member answered just now; Role, Term,
	// AppliedIndex and Epoch (of its copy of the map) are its answer.
	Reachable    bool   `json:"reachable"`
	Role         string `json:"role,omitempty"`
	Term         uint64 `json:"term,omitempty"`
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	Epoch        uint64 `json:"epoch,omitempty"`
	Error        string `json:"error,omitempty"`
}

// nodeJSON is one data node.
type nodeJSON struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	State  string `json:"state"`
	Zone   string `json:"zone,omitempty"`
	Rack   string `json:"rack,omitempty"`
	Host   string `json:"host,omitempty"`
	Weight int    `json:"weight"`
	// HeartbeatAgeMs is the time since the meta leader last heard from
	// the node; -1 when it has not since it became leader.
	HeartbeatAgeMs int64 `json:"heartbeat_age_ms"`
	Masters        int   `json:"masters"`
	Replicas       int   `json:"replicas"`
	// The node's slave replicas (learners included): how many are not
	// connected to their master, and the worst lag (LagMs -1: unknown).
	Slaves             int    `json:"slaves"`
	DisconnectedSlaves int    `json:"disconnected_slaves"`
	MaxLagRecords      uint64 `json:"max_lag_records"`
	MaxLagMs           int64  `json:"max_lag_ms"`
	// Lagging is set when a slave of the node is disconnected or behind
	// by lagWarnRecords or lagWarnMs.
	Lagging bool `json:"lagging"`
	// Load is the node's own answer; missing when it did not answer.
	Load *loadJSON `json:"load,omitempty"`
}

// loadJSON is a process's recent load, store and memory.
type loadJSON struct {
	ReadOpsPerSec  float64 `json:"read_ops_per_sec"`
	ReadP50Ms      float64 `json:"read_p50_ms"`
	ReadP99Ms      float64 `json:"read_p99_ms"`
	WriteOpsPerSec float64 `json:"write_ops_per_sec"`
	WriteP50Ms     float64 `json:"write_p50_ms"`
	WriteP99Ms     float64 `json:"write_p99_ms"`
	StoreBytes     int64   `json:"store_bytes"`
	StoreLSMBytes  int64   `json:"store_lsm_bytes"`
	StoreKeys      int64   `json:"store_keys_estimate"`
	MemBytes       uint64  `json:"memory_bytes"`
	Goroutines     int     `json:"goroutines"`
}

// tableJSON is one table with its partitions.
type tableJSON struct {
	Name           string `json:"name"`
	ID             uint32 `json:"id"`
	PartitionCount int    `json:"partition_count"`
	Replication    int    `json:"replication"`
	Mode           string `json:"mode"`
	Fenced         bool   `json:"fenced"`
	MinInSync      int    `json:"min_in_sync,omitempty"`
	Domain         string `json:"domain"`
	NoMaster       int    `json:"partitions_without_master"`
	// ShortInSync counts a sync table's partitions whose in-sync set is
	// below MinInSync (writes refused).
	ShortInSync int `json:"partitions_below_min_in_sync"`
	// LaggingReplicas and DisconnectedReplicas count its slaves behind
	// by the warning thresholds, and not connected to their master.
	LaggingReplicas      int             `json:"lagging_replicas"`
	DisconnectedReplicas int             `json:"disconnected_replicas"`
	Partitions           []partitionJSON `json:"partitions"`
}

// partitionJSON is one partition: its assignment in the map and its
// replicas' reports, master first.
type partitionJSON struct {
	ID       uint32        `json:"id"`
	Master   string        `json:"master"`
	Slaves   []string      `json:"slaves"`
	Learners []string      `json:"learners,omitempty"`
	InSync   []string      `json:"in_sync,omitempty"`
	Gen      uint64        `json:"gen"`
	State    string        `json:"state"`
	Replicas []replicaJSON `json:"replicas"`
}

// replicaJSON is one replica. State is its replication state as its node
// last reported it, "down" when the node is down (the report is stale)
// and "unreported" without a report. A slave's lag comes from its own
// report while it is connected to its master, and from the master's
// record of what it acknowledged when it is not; LagMs is -1 when the
// lag is not known in time (records are behind, but since when the
// master cannot tell).
type replicaJSON struct {
	Table      string `json:"table,omitempty"`
	Partition  uint32 `json:"partition"`
	Node       string `json:"node"`
	Role       string `json:"role"`
	State      string `json:"state"`
	Connected  bool   `json:"connected"`
	InSync     bool   `json:"in_sync,omitempty"`
	Gen        uint64 `json:"gen"`
	Seq        uint64 `json:"seq"`
	LagRecords uint64 `json:"lag_records"`
	LagMs      int64  `json:"lag_ms"`
	Incomplete bool   `json:"incomplete,omitempty"`
	FullSyncs  uint64 `json:"full_syncs"`
}

// localJSON is this process's data node as it sees itself.
type localJSON struct {
	Node     string        `json:"node"`
	Epoch    uint64        `json:"epoch"`
	Replicas []replicaJSON `json:"replicas"`
}

// migrationJSON is one replica move, as "zeppelin migrations --json"
// names it.
type migrationJSON struct {
	ID          uint64    `json:"id"`
	Batch       uint64    `json:"batch"`
	Table       string    `json:"table"`
	Partition   int       `json:"partition"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error,omitempty"`
	CopiedBytes int64     `json:"copied_bytes"`
	TotalBytes  int64     `json:"total_bytes"`
	LagRecords  uint64    `json:"lag_records"`
	CopyRate    int64     `json:"copy_rate_bytes_per_sec"`
}

// eventJSON is one event; Source is the process that recorded it.
type eventJSON struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Table     string    `json:"table,omitempty"`
	TableID   uint32    `json:"table_id,omitempty"`
	Partition *uint32   `json:"partition,omitempty"`
	Node      string    `json:"node,omitempty"`
	From      string    `json:"from,omitempty"`
	Gen       uint64    `json:"gen,omitempty"`
	Epoch     uint64    `json:"epoch,omitempty"`
	Source    string    `json:"source"`
}

// Replication lag at or beyond which a slave counts as lagging.
const (
	lagWarnRecords = 1000
	lagWarnMs      = 1000
)

// probeTimeout bounds each question the status asks a member or a node.
const probeTimeout = time.Second

// statusEvents is how many events the status shows (one failover of a
// node with many partitions makes hundreds).
const statusEvents = 500

// snapshot is what one status gathers: the meta leader's status, every
// member's and every process's own answer.
type snapshot struct {
	st      *client.Status
	err     error
	members map[uint64]memberAnswer
	stats   map[string]*wire.ServerStatsReply // by RPC address
	migs    []client.Migration
}

type memberAnswer struct {
	reply *wire.StatusReply
	err   error
}

// gather asks the meta leader for the cluster status, then every meta
// member and every process for their own view, at once; withSeries asks
// the processes for their load history too.
func (s *Server) gather(ctx context.Context, withSeries bool) *snapshot {
	snap := &snapshot{members: make(map[uint64]memberAnswer), stats: make(map[string]*wire.ServerStatsReply)}
	snap.st, snap.err = s.Client().Status(ctx)
	req := wire.ServerStatsRequest{Series: withSeries, Events: statusEvents}
	addrs := []string{s.advertise}
	if snap.st != nil && snap.st.Map != nil {
		for _, n := range snap.st.Map.Nodes {
			addrs = append(addrs, n.Addr)
		}
	}
	var members []client.MemberStatus
	if snap.st != nil {
		members = snap.st.Members
		for _, m := range members {
			if m.RPCAddr != "" {
				addrs = append(addrs, m.RPCAddr)
			}
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if m.RPCAddr == "" {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			var reply wire.StatusReply
			err := s.pool.Call(cctx, m.RPCAddr, wire.KindMetaStatus, &wire.StatusRequest{}, &reply)
			a := memberAnswer{err: err}
			if err == nil {
				a.reply = &reply
			}
			mu.Lock()
			snap.members[m.ID] = a
			mu.Unlock()
		})
	}
	for _, addr := range addrs {
		if addr == s.advertise {
			st := s.serverStats(req)
			mu.Lock() // the probes started above write the map too
			snap.stats[addr] = &st
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			var reply wire.ServerStatsReply
			if err := s.pool.Call(cctx, addr, wire.KindServerStats, &req, &reply); err != nil {
				return
			}
			mu.Lock()
			snap.stats[addr] = &reply
			mu.Unlock()
		})
	}
	if snap.st != nil && snap.st.Map != nil && len(snap.st.Map.Migrations) > 0 {
		if ms, err := s.Client().Migrations(ctx, 0); err == nil {
			snap.migs = ms
		}
	}
	wg.Wait()
	return snap
}

// statusView builds the /status document from a snapshot.
func (s *Server) statusView(snap *snapshot) statusJSON {
	v := statusJSON{Node: s.nodeID, Roles: s.cfg.Roles.String(), RPCAddr: s.advertise, Time: time.Now(), Limits: s.cfg.Limits}
	if err := s.readiness(); err != nil {
		v.NotReady = err.Error()
	} else {
		v.Ready = true
	}
	var m *placement.Map
	if snap.err != nil {
		v.Error = snap.err.Error()
	} else if snap.st != nil {
		v.Cluster = clusterView(snap)
		m = snap.st.Map
	}
	if s.node != nil {
		if m == nil {
			m = s.node.Map()
		}
		st := s.node.Status()
		lv := &localJSON{Node: string(st.Node), Epoch: uint64(st.Epoch), Replicas: []replicaJSON{}}
		for _, r := range st.Replicas {
			rv := ownReplicaView(string(st.Node), clientReplica(r))
			rv.Table = tableName(m, r.Table)
			lv.Replicas = append(lv.Replicas, rv)
		}
		v.Local = lv
	}
	v.Events = eventsView(snap, m)
	return v
}

// tableName names a table by its ID in m ("id:N" when m does not know it).
func tableName(m *placement.Map, id placement.TableID) string {
	if m != nil {
		if t := m.TableByID(id); t != nil {
			return t.Name
		}
	}
	return "id:" + strconv.FormatUint(uint64(id), 10)
}

// clientReplica is the local data node's report of a replica in the
// client's terms, those of the meta leader's status.
func clientReplica(r wire.ReplicaStatus) client.ReplicaStatus {
	out := client.ReplicaStatus{Table: r.Table, Partition: r.Partition, Role: client.Role(r.Role), State: client.ReplicaState(r.State),
		Gen: r.Gen, Seq: r.Seq, FirstSeq: r.FirstSeq, MapGen: r.MapGen, LagRecords: r.LagRecords, LagMs: r.LagMs,
		Incomplete: r.Incomplete, FullSyncs: r.FullSyncs, LoadedBytes: r.LoadedBytes, Bytes: r.Bytes}
	for _, sp := range r.Slaves {
		out.Slaves = append(out.Slaves, client.SlaveProgress{Node: sp.Node, Acked: sp.Acked, LagMs: sp.LagMs})
	}
	return out
}

// ownReplicaView is a replica as its own report describes it.
func ownReplicaView(node string, r client.ReplicaStatus) replicaJSON {
	v := replicaJSON{
		Partition: uint32(r.Partition), Node: node, Role: r.Role.String(), State: r.State.String(),
		Gen: r.Gen, Seq: r.Seq, Incomplete: r.Incomplete, FullSyncs: r.FullSyncs,
	}
	switch r.Role {
	case client.RoleMaster:
		v.Connected = true
	case client.RoleSlave, client.RoleLearner:
		v.Connected = r.State == client.ReplicaStreaming || r.State == client.ReplicaFullSyncing
		v.LagRecords, v.LagMs = r.LagRecords, r.LagMs
	}
	return v
}

type reportKey struct {
	table placement.TableID
	part  placement.PartitionID
	node  placement.NodeID
}

func clusterView(snap *snapshot) *clusterJSON {
	st := snap.st
	m := st.Map
	if m == nil {
		m = &placement.Map{}
	}
	c := &clusterJSON{Epoch: uint64(st.Epoch), Term: st.Term, LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr,
		Members: []memberJSON{}, Nodes: []nodeJSON{}, Tables: []tableJSON{}}
	for _, mm := range st.Members {
		mv := memberJSON{ID: mm.ID, RaftAddr: mm.RaftAddr, RPCAddr: mm.RPCAddr, Leader: mm.Leader}
		switch a, ok := snap.members[mm.ID]; {
		case mm.RPCAddr == "":
			mv.Error = "not started yet (no RPC address recorded)"
		case !ok:
			mv.Error = "not asked"
		case a.err != nil:
			mv.Error = a.err.Error()
		case a.reply.Self != mm.ID:
			mv.Error = "another member (" + strconv.FormatUint(a.reply.Self, 10) + ") answers at its address"
		default:
			mv.Reachable = true
			mv.Role, mv.Term, mv.AppliedIndex, mv.Epoch = a.reply.Role, a.reply.Term, a.reply.Applied, uint64(a.reply.Epoch)
		}
		c.Members = append(c.Members, mv)
	}

	reports := make(map[reportKey]client.ReplicaStatus)
	ages := make(map[placement.NodeID]int64)
	for _, ns := range st.Nodes {
		ages[ns.Node.ID] = ns.HeartbeatAgeMs
		for _, r := range ns.Replicas {
			reports[reportKey{r.Table, r.Partition, ns.Node.ID}] = r
		}
	}
	nodes := make(map[placement.NodeID]*nodeJSON, len(m.Nodes))
	down := make(map[placement.NodeID]bool)
	for _, n := range m.Nodes {
		age, ok := ages[n.ID]
		if !ok {
			age = -1
		}
		nv := &nodeJSON{ID: string(n.ID), Addr: n.Addr, State: n.PlacementState().String(),
			Zone: n.Labels.Zone, Rack: n.Labels.Rack, Host: n.Labels.Host, Weight: n.Weight, HeartbeatAgeMs: age}
		if ls := snap.stats[n.Addr]; ls != nil && ls.NodeID == string(n.ID) {
			nv.Load = loadView(ls)
		}
		nodes[n.ID] = nv
		if n.State == placement.NodeDown {
			down[n.ID] = true
			c.NodesDown++
		} else {
			c.NodesUp++
		}
	}

	for i := range m.Tables {
		t := &m.Tables[i]
		tv := tableJSON{Name: t.Name, ID: uint32(t.ID), PartitionCount: len(t.Partitions), Replication: t.Replication,
			Mode: t.Mode.String(), Fenced: t.Fenced, MinInSync: t.MinInSync, Domain: t.Domain.Effective().String(),
			Partitions: make([]partitionJSON, 0, len(t.Partitions))}
		sync := t.Mode == placement.ModeSync
		for _, p := range t.Partitions {
			pv := partitionJSON{ID: uint32(p.ID), Master: string(p.Master), Slaves: ids(p.Slaves), Learners: ids(p.Learners),
				Gen: p.Gen, State: p.State.String()}
			if sync {
				pv.InSync = ids(p.InSync)
				if len(p.InSync) < t.MinInSync {
					tv.ShortInSync++
				}
			}
			if p.Master == "" {
				tv.NoMaster++
			}
			mr, haveMaster := reports[reportKey{t.ID, p.ID, p.Master}]
			haveMaster = haveMaster && p.Master != "" && !down[p.Master] && mr.Role == client.RoleMaster
			for _, n := range p.Replicas() {
				rv := replicaView(t.ID, n, p, reports, down[n], mr, haveMaster)
				rv.InSync = sync && slices.Contains(p.InSync, n)
				pv.Replicas = append(pv.Replicas, rv)
				nv := nodes[n]
				if nv == nil {
					continue
				}
				nv.Replicas++
				if n == p.Master {
					nv.Masters++
					continue
				}
				nv.Slaves++
				if !rv.Connected {
					nv.DisconnectedSlaves++
					tv.DisconnectedReplicas++
				}
				nv.MaxLagRecords = max(nv.MaxLagRecords, rv.LagRecords)
				if rv.LagMs < 0 || nv.MaxLagMs < 0 {
					nv.MaxLagMs = -1
				} else {
					nv.MaxLagMs = max(nv.MaxLagMs, rv.LagMs)
				}
				if lagging(rv) {
					nv.Lagging = true
					tv.LaggingReplicas++
				}
			}
			tv.Partitions = append(tv.Partitions, pv)
		}
		c.Tables = append(c.Tables, tv)
	}
	for _, n := range m.Nodes {
		c.Nodes = append(c.Nodes, *nodes[n.ID])
	}
	slices.SortFunc(c.Nodes, func(a, b nodeJSON) int { return cmp.Compare(a.ID, b.ID) })
	for _, mg := range snap.migs {
		c.Migrations = append(c.Migrations, migrationJSON{
			ID: mg.ID, Batch: mg.Batch, Table: mg.Table, Partition: mg.Partition, From: string(mg.From), To: string(mg.To),
			State: mg.State.String(), Created: mg.Created, Updated: mg.Updated, Attempts: mg.Attempts, Error: mg.Error,
			CopiedBytes: mg.CopiedBytes, TotalBytes: mg.TotalBytes, LagRecords: mg.LagRecords, CopyRate: mg.CopyRate,
		})
	}
	return c
}

// replicaView describes node n's replica of partition p. A slave that is
// down or not connected to its master gets its lag from the master's
// report (mr, when haveMaster): the records it has not acknowledged, for
// as long as the master has waited for them.
func replicaView(table placement.TableID, n placement.NodeID, p placement.Partition, reports map[reportKey]client.ReplicaStatus,
	nodeDown bool, mr client.ReplicaStatus, haveMaster bool) replicaJSON {
	r, reported := reports[reportKey{table, p.ID, n}]
	var v replicaJSON
	if reported {
		v = ownReplicaView(string(n), r)
	} else {
		v = replicaJSON{Partition: uint32(p.ID), Node: string(n), State: "unreported"}
	}
	// The map's assignment, which the node's report may not have caught
	// up with yet.
	switch {
	case n == p.Master:
		v.Role, v.Connected, v.LagRecords, v.LagMs = client.RoleMaster.String(), reported, 0, 0
	case p.IsLearner(n):
		v.Role = client.RoleLearner.String()
	default:
		v.Role = client.RoleSlave.String()
	}
	if reported && r.Role == client.RoleMaster && n != p.Master {
		// A former master: its report says nothing about following.
		v.Connected = false
	}
	if nodeDown {
		v.State, v.Connected = "down", false
	}
	if n == p.Master || v.Connected {
		return v
	}
	// Not connected: the slave's own figures stopped moving when it lost
	// its master; the master knows how far behind it is.
	v.LagMs = -1
	if !haveMaster {
		return v
	}
	// What it holds is at least what it last reported and what the
	// master saw it acknowledge.
	acked, waited := v.Seq, int64(0)
	for _, sp := range mr.Slaves {
		if sp.Node == n {
			acked, waited = max(acked, sp.Acked), sp.LagMs
		}
	}
	if mr.Seq > acked {
		v.LagRecords = mr.Seq - acked
	} else {
		v.LagRecords = 0
	}
	switch {
	case v.LagRecords == 0:
		v.LagMs = 0
	case waited > 0:
		v.LagMs = waited
	}
	return v
}

// lagging reports whether a slave replica needs attention: disconnected,
// or behind by the warning thresholds.
func lagging(r replicaJSON) bool {
	return !r.Connected || r.LagMs < 0 || r.LagMs >= lagWarnMs || r.LagRecords >= lagWarnRecords
}

func loadView(r *wire.ServerStatsReply) *loadJSON {
	return &loadJSON{
		ReadOpsPerSec: r.Read.OpsPerSec, ReadP50Ms: r.Read.P50Ms, ReadP99Ms: r.Read.P99Ms,
		WriteOpsPerSec: r.Write.OpsPerSec, WriteP50Ms: r.Write.P50Ms, WriteP99Ms: r.Write.P99Ms,
		StoreBytes: r.StoreBytes, StoreLSMBytes: r.StoreLSMBytes, StoreKeys: r.StoreKeys,
		MemBytes: r.MemBytes, Goroutines: r.Goroutines,
	}
}

// eventsView merges the events every process reported, newest first.
func eventsView(snap *snapshot, m *placement.Map) []eventJSON {
	out := []eventJSON{}
	for _, r := range snap.stats {
		for _, e := range r.Events {
			ev := eventJSON{Time: time.UnixMilli(e.TimeMs), Kind: e.Kind, Node: string(e.Node), From: string(e.From),
				Gen: e.Gen, Epoch: uint64(e.Epoch), Source: r.NodeID}
			if e.Table != 0 {
				p := uint32(e.Partition)
				ev.Table, ev.TableID, ev.Partition = tableName(m, e.Table), uint32(e.Table), &p
			}
			out = append(out, ev)
		}
	}
	slices.SortStableFunc(out, func(a, b eventJSON) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Source, b.Source)
	})
	if len(out) > statusEvents {
		out = out[:statusEvents]
	}
	return out
}

func ids(ns []placement.NodeID) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n)
	}
	return out
}
