package meta

import (
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// metaCollector reports the member's view of the group when scraped.
type metaCollector struct{ s *Server }

var (
	descEpoch = prometheus.NewDesc("zeppelin_meta_epoch",
		"Epoch of this member's copy of the cluster map.", nil, nil)
	descLeader = prometheus.NewDesc("zeppelin_meta_leader",
		"1 while this member leads the meta group.", nil, nil)
	descTerm = prometheus.NewDesc("zeppelin_meta_raft_term",
		"Raft term this member knows.", nil, nil)
	descNodes = prometheus.NewDesc("zeppelin_meta_nodes",
		"Data nodes in the map, by state.", []string{"state"}, nil)
	descTables = prometheus.NewDesc("zeppelin_meta_tables",
		"Tables in the map.", nil, nil)
	descNoMaster = prometheus.NewDesc("zeppelin_meta_partitions_without_master",
		"Partitions with no master in the map (no replica that may be promoted is up).", nil, nil)
	descStuck = prometheus.NewDesc("zeppelin_meta_partitions_stuck",
		"Partitions holding writes for a handover.", nil, nil)
	descInSync = prometheus.NewDesc("zeppelin_meta_in_sync_replicas",
		"Replicas in the in-sync sets of the sync tables' partitions, summed per table.", []string{"table"}, nil)
	descShortInSync = prometheus.NewDesc("zeppelin_meta_partitions_below_min_in_sync",
		"Partitions of sync tables whose in-sync set is below the table's minimum (writes refused), per table.", []string{"table"}, nil)
	descMigrations = prometheus.NewDesc("zeppelin_meta_migrations",
		"Migrations in the map (running and the most recent finished ones), by state.", []string{"state"}, nil)
	descMigrationBytes = prometheus.NewDesc("zeppelin_meta_migration_copied_bytes",
		"Bytes the running migrations' targets have loaded so far (leader only).", nil, nil)
	descMigrationRate = prometheus.NewDesc("zeppelin_meta_migration_copy_rate_bytes",
		"Summed copy rate of the running migrations, bytes per second (leader only).", nil, nil)
	descApplied = prometheus.NewDesc("zeppelin_meta_raft_applied_index",
		"Index of the last Raft entry this member's state machine applied.", nil, nil)
	descNodeState = prometheus.NewDesc("zeppelin_meta_node_state",
		"1 for the state each data node has in this member's copy of the map, 0 for the others.", []string{"node", "state"}, nil)
	descNodeMasters = prometheus.NewDesc("zeppelin_meta_node_masters",
		"Partitions each data node masters, in this member's copy of the map.", []string{"node"}, nil)
	descNodeReplicas = prometheus.NewDesc("zeppelin_meta_node_replicas",
		"Replicas (master, slaves and learners) each data node holds, in this member's copy of the map.", []string{"node"}, nil)
	descPending = prometheus.NewDesc("zeppelin_meta_nodes_pending_approval",
		"Data nodes the leader refused for want of an administrator's approval (leader only; admin-approved admission).", nil, nil)
	descNodeHeartbeat = prometheus.NewDesc("zeppelin_meta_node_heartbeat_age_seconds",
		"Time since the leader last heard from each data node (leader only).", []string{"node"}, nil)
)

func (c *metaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEpoch, descLeader, descTerm, descNodes, descTables, descNoMaster, descStuck,
		descInSync, descShortInSync, descMigrations, descMigrationBytes, descMigrationRate,
		descApplied, descNodeState, descNodeMasters, descNodeReplicas, descNodeHeartbeat, descPending} {
		ch <- d
	}
}

func (c *metaCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.Map()
	id, term := c.s.Leader()
	leader := 0.0
	if id == c.s.cfg.ReplicaID {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(m.Epoch))
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(term))
	states := map[placement.NodeState]int{placement.NodeUp: 0, placement.NodeDown: 0, placement.NodeDraining: 0}
	for _, n := range m.Nodes {
		states[n.PlacementState()]++
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n), st.String())
	}
	ch <- prometheus.MustNewConstMetric(descTables, prometheus.GaugeValue, float64(len(m.Tables)))
	if leader == 1 && c.s.cfg.NodeAdmission == AdmitApproved {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(len(c.s.pending.list(m, time.Now()))))
	}
	noMaster, stuck := 0, 0
	for _, t := range m.Tables {
		if t.Mode == placement.ModeSync {
			in, short := 0, 0
			for _, p := range t.Partitions {
				in += len(p.InSync)
				if len(p.InSync) < t.MinInSync {
					short++
				}
			}
			ch <- prometheus.MustNewConstMetric(descInSync, prometheus.GaugeValue, float64(in), t.Name)
			ch <- prometheus.MustNewConstMetric(descShortInSync, prometheus.GaugeValue, float64(short), t.Name)
		}
		for _, p := range t.Partitions {
			if p.Master == "" {
				noMaster++
			}
			if p.State == placement.PartitionStuck {
				stuck++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descNoMaster, prometheus.GaugeValue, float64(noMaster))
	ch <- prometheus.MustNewConstMetric(descStuck, prometheus.GaugeValue, float64(stuck))
	migs := map[placement.MigrationState]int{}
	for st := placement.MigrationPending; st <= placement.MigrationFailed; st++ {
		migs[st] = 0
	}
	var copied, rate int64
	v := c.s.det.view()
	for _, mg := range m.Migrations {
		migs[mg.State]++
		if id == c.s.cfg.ReplicaID && !mg.State.Finished() {
			st := c.s.migrationStatus(m, v, mg)
			copied += st.CopiedBytes
			rate += st.RateBytes
		}
	}
	for st, n := range migs {
		ch <- prometheus.MustNewConstMetric(descMigrations, prometheus.GaugeValue, float64(n), st.String())
	}
	ch <- prometheus.MustNewConstMetric(descMigrationBytes, prometheus.GaugeValue, float64(copied))
	ch <- prometheus.MustNewConstMetric(descMigrationRate, prometheus.GaugeValue, float64(rate))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(c.s.AppliedIndex()))
	c.collectNodes(ch, m, id == c.s.cfg.ReplicaID, term, v)
}

// collectNodes reports one series per data node, from the member's copy
// of the map: every member exports them, so they survive the leader's
// loss. Heartbeat ages only the leader knows.
func (c *metaCollector) collectNodes(ch chan<- prometheus.Metric, m *placement.Map, leading bool, term uint64, v view) {
	masters := make(map[placement.NodeID]int, len(m.Nodes))
	replicas := make(map[placement.NodeID]int, len(m.Nodes))
	for _, t := range m.Tables {
		for _, p := range t.Partitions {
			if p.Master != "" {
				masters[p.Master]++
			}
			for _, n := range p.Replicas() {
				replicas[n]++
			}
		}
	}
	now := time.Now()
	for _, n := range m.Nodes {
		id := string(n.ID)
		cur := n.PlacementState()
		for _, st := range []placement.NodeState{placement.NodeUp, placement.NodeDown, placement.NodeDraining} {
			on := 0.0
			if st == cur {
				on = 1
			}
			ch <- prometheus.MustNewConstMetric(descNodeState, prometheus.GaugeValue, on, id, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descNodeMasters, prometheus.GaugeValue, float64(masters[n.ID]), id)
		ch <- prometheus.MustNewConstMetric(descNodeReplicas, prometheus.GaugeValue, float64(replicas[n.ID]), id)
		if r := v.nodes[n.ID]; leading && r != nil && v.term == term {
			ch <- prometheus.MustNewConstMetric(descNodeHeartbeat, prometheus.GaugeValue, now.Sub(r.last).Seconds(), id)
		}
	}
}

// AppliedIndex returns the index of the last Raft entry this member's
// state machine applied (after a restart, until the next entry is
// applied, the index of the snapshot it recovered from).
func (s *Server) AppliedIndex() uint64 {
	var applied uint64
	if v, err := s.nh.StaleRead(shardID, queryApplied{}); err == nil {
		applied, _ = v.(uint64)
	}
	if lr, err := s.nh.GetLogReader(shardID); err == nil {
		applied = max(applied, lr.Snapshot().Index)
	}
	return applied
}

// raftRole names this member's Raft role, given the leader it knows.
func (s *Server) raftRole(leader uint64) string {
	if leader != 0 && leader == s.cfg.ReplicaID {
		return "leader"
	}
	if info := s.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}); info != nil {
		for _, si := range info.ShardInfoList {
			switch {
			case si.ShardID != shardID:
			case si.IsWitness:
				return "witness"
			case si.IsNonVoting:
				return "non-voting"
			}
		}
	}
	if leader == 0 {
		return "candidate"
	}
	return "follower"
}

func newDecisionCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "zeppelin", Subsystem: "meta", Name: "decisions_total",
		Help: "Decisions this member proposed and saw committed, by kind (down, up, failover, unavailable, released, switchover, migrated, migration copying, migration done, migration failed, migration cancelled, leader).",
	}, []string{"kind"})
}
