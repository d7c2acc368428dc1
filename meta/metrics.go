package meta

import (
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
		"Partitions whose every replica is down.", nil, nil)
	descStuck = prometheus.NewDesc("zeppelin_meta_partitions_stuck",
		"Partitions holding writes for a handover.", nil, nil)
	descMigrations = prometheus.NewDesc("zeppelin_meta_migrations",
		"Migrations in the map (running and the most recent finished ones), by state.", []string{"state"}, nil)
	descMigrationBytes = prometheus.NewDesc("zeppelin_meta_migration_copied_bytes",
		"Bytes the running migrations' targets have loaded so far (leader only).", nil, nil)
	descMigrationRate = prometheus.NewDesc("zeppelin_meta_migration_copy_rate_bytes",
		"Summed copy rate of the running migrations, bytes per second (leader only).", nil, nil)
)

func (c *metaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEpoch, descLeader, descTerm, descNodes, descTables, descNoMaster, descStuck,
		descMigrations, descMigrationBytes, descMigrationRate} {
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
	noMaster, stuck := 0, 0
	for _, t := range m.Tables {
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
}

func newDecisionCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "zeppelin", Subsystem: "meta", Name: "decisions_total",
		Help: "Decisions this member proposed and saw committed, by kind (down, up, failover, unavailable, released, switchover, migrated, migration copying, migration done, migration failed, migration cancelled, leader).",
	}, []string{"kind"})
}
