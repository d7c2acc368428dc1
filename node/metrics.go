package node

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// metrics are the node's Prometheus metrics. Request counters and latency
// histograms are updated on the request path; replica figures are read
// from the replicas when scraped.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ops      *prometheus.CounterVec

	children sync.Map // childKey → *reqChildren
	opCounts sync.Map // opKey → prometheus.Counter
}

type opKey struct {
	op    wire.OpType
	table placement.TableID
}

type childKey struct {
	kind  string
	table placement.TableID
}

type reqChildren struct {
	latency prometheus.Observer
	ok      prometheus.Counter
}

func newMetrics(s *Server, reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zeppelin", Subsystem: "node", Name: "requests_total",
			Help: "Data requests served, by kind (get, exists, ttl, write, list), table and result (ok or the error code).",
		}, []string{"kind", "table", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "zeppelin", Subsystem: "node", Name: "request_duration_seconds",
			Help:    "Time to serve a data request, by kind and table.",
			Buckets: LatencyBuckets,
		}, []string{"kind", "table"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "zeppelin", Subsystem: "node", Name: "write_ops_total",
			Help: "Write operations applied on this node as master, by operation and table.",
		}, []string{"op", "table"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.ops, &replicaCollector{s: s})
	}
	return m
}

// tableName labels a table by name (its ID when the map does not know it).
func (s *Server) tableName(id placement.TableID) string {
	if m := s.cur.Load(); m != nil {
		if t := m.TableByID(id); t != nil {
			return t.Name
		}
	}
	return "id:" + strconv.FormatUint(uint64(id), 10)
}

// observe records one request of kind on table that started at start and
// ended with err (nil for success).
func (s *Server) observe(kind string, table placement.TableID, start time.Time, err *wire.Error) {
	s.observeTook(kind, table, time.Since(start), err)
}

// observeTook records one request of kind on table that took took and
// ended with err.
func (s *Server) observeTook(kind string, table placement.TableID, took time.Duration, err *wire.Error) {
	s.requestMetrics(kind, table).observe(s, kind, table, took, err)
}

// requestMetrics returns the latency histogram and success counter of
// requests of kind on table, created on first use.
func (s *Server) requestMetrics(kind string, table placement.TableID) *reqChildren {
	m := s.metrics
	k := childKey{kind, table}
	v, ok := m.children.Load(k)
	if !ok {
		name := s.tableName(table)
		v, _ = m.children.LoadOrStore(k, &reqChildren{
			latency: m.latency.WithLabelValues(kind, name),
			ok:      m.requests.WithLabelValues(kind, name, "ok"),
		})
	}
	return v.(*reqChildren)
}

// observe records one request of kind on table, c's, that took took and
// ended with err.
func (c *reqChildren) observe(s *Server, kind string, table placement.TableID, took time.Duration, err *wire.Error) {
	c.latency.Observe(took.Seconds())
	if err == nil {
		c.ok.Inc()
		return
	}
	s.metrics.requests.WithLabelValues(kind, s.tableName(table), err.Code.String()).Inc()
}

// countOps counts ops applied on table, through counters cached per
// operation and table (as observe caches its children).
func (s *Server) countOps(table placement.TableID, ops []wire.Op) {
	m := s.metrics
	for _, op := range ops {
		k := opKey{op.Type, table}
		v, ok := m.opCounts.Load(k)
		if !ok {
			v, _ = m.opCounts.LoadOrStore(k, m.ops.WithLabelValues(op.Type.String(), s.tableName(table)))
		}
		v.(prometheus.Counter).Inc()
	}
}

// replicaCollector reports every replica's position and lag when scraped.
type replicaCollector struct{ s *Server }

var (
	descSeq = prometheus.NewDesc("zeppelin_replica_seq",
		"Sequence of the last binlog record of a replica.", []string{"table", "partition", "role"}, nil)
	descFirst = prometheus.NewDesc("zeppelin_replica_first_seq",
		"Oldest retained binlog record of a replica.", []string{"table", "partition"}, nil)
	descGen = prometheus.NewDesc("zeppelin_replica_gen",
		"Generation of the last binlog record of a replica.", []string{"table", "partition"}, nil)
	descLagRecords = prometheus.NewDesc("zeppelin_replica_lag_records",
		"Records a slave replica is behind its master.", []string{"table", "partition"}, nil)
	descLagSeconds = prometheus.NewDesc("zeppelin_replica_lag_seconds",
		"Age of the newest record a slave has applied while it is behind its master.", []string{"table", "partition"}, nil)
	descFullSyncs = prometheus.NewDesc("zeppelin_replica_full_syncs_total",
		"Full syncs a slave replica completed since the node started.", []string{"table", "partition"}, nil)
	descIncomplete = prometheus.NewDesc("zeppelin_replica_incomplete",
		"1 while a replica holds no complete copy (a full sync is under way).", []string{"table", "partition"}, nil)
	descEpoch = prometheus.NewDesc("zeppelin_node_map_epoch",
		"Epoch of the cluster map the node serves under.", nil, nil)
	descLease = prometheus.NewDesc("zeppelin_node_master_lease_valid",
		"1 while the node's master lease from the meta leader is current.", nil, nil)
	descConnected = prometheus.NewDesc("zeppelin_replica_slave_connected",
		"1 while a slave (or learner) replica is connected to its master (streaming or loading a full sync).", []string{"table", "partition"}, nil)
	descNodeReplicas = prometheus.NewDesc("zeppelin_node_replicas",
		"Replicas the node holds, by role.", []string{"role"}, nil)
	descNodeDisconnected = prometheus.NewDesc("zeppelin_node_slaves_disconnected",
		"Slave and learner replicas of the node not connected to their master.", nil, nil)
	descNodeIncomplete = prometheus.NewDesc("zeppelin_node_replicas_incomplete",
		"Replicas of the node holding no complete copy (a full sync is under way).", nil, nil)
	descNodeLagRecords = prometheus.NewDesc("zeppelin_node_max_lag_records",
		"Records the node's most lagging slave replica is behind its master.", nil, nil)
	descNodeLagSeconds = prometheus.NewDesc("zeppelin_node_max_lag_seconds",
		"Replication lag of the node's most lagging slave replica.", nil, nil)
)

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSeq, descFirst, descGen, descLagRecords, descLagSeconds, descFullSyncs, descIncomplete, descEpoch, descLease,
		descConnected, descNodeReplicas, descNodeDisconnected, descNodeIncomplete, descNodeLagRecords, descNodeLagSeconds} {
		ch <- d
	}
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(s.Epoch()))
	lease := 0.0
	if s.leaseValid() {
		lease = 1
	}
	ch <- prometheus.MustNewConstMetric(descLease, prometheus.GaugeValue, lease)
	statuses := s.replicaStatuses()
	roles := map[wire.Role]int{wire.RoleMaster: 0, wire.RoleSlave: 0, wire.RoleLearner: 0}
	var disconnected, incomplete int
	var lagRecords uint64
	var lagMs int64
	for _, r := range statuses {
		roles[r.Role]++
		if r.Incomplete {
			incomplete++
		}
		if r.Role == wire.RoleSlave || r.Role == wire.RoleLearner {
			if !slaveConnected(r.State) {
				disconnected++
			}
			lagRecords, lagMs = max(lagRecords, r.LagRecords), max(lagMs, r.LagMs)
		}
	}
	for role, n := range roles {
		ch <- prometheus.MustNewConstMetric(descNodeReplicas, prometheus.GaugeValue, float64(n), role.String())
	}
	ch <- prometheus.MustNewConstMetric(descNodeDisconnected, prometheus.GaugeValue, float64(disconnected))
	ch <- prometheus.MustNewConstMetric(descNodeIncomplete, prometheus.GaugeValue, float64(incomplete))
	ch <- prometheus.MustNewConstMetric(descNodeLagRecords, prometheus.GaugeValue, float64(lagRecords))
	ch <- prometheus.MustNewConstMetric(descNodeLagSeconds, prometheus.GaugeValue, float64(lagMs)/1000)
	if !s.cfg.PartitionMetrics {
		return
	}
	for _, r := range statuses {
		t, p := s.tableName(r.Table), strconv.FormatUint(uint64(r.Partition), 10)
		ch <- prometheus.MustNewConstMetric(descSeq, prometheus.GaugeValue, float64(r.Seq), t, p, r.Role.String())
		ch <- prometheus.MustNewConstMetric(descFirst, prometheus.GaugeValue, float64(r.FirstSeq), t, p)
		ch <- prometheus.MustNewConstMetric(descGen, prometheus.GaugeValue, float64(r.Gen), t, p)
		incomplete := 0.0
		if r.Incomplete {
			incomplete = 1
		}
		ch <- prometheus.MustNewConstMetric(descIncomplete, prometheus.GaugeValue, incomplete, t, p)
		if r.Role == wire.RoleSlave {
			ch <- prometheus.MustNewConstMetric(descLagRecords, prometheus.GaugeValue, float64(r.LagRecords), t, p)
			ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, float64(r.LagMs)/1000, t, p)
			ch <- prometheus.MustNewConstMetric(descFullSyncs, prometheus.CounterValue, float64(r.FullSyncs), t, p)
		}
		if r.Role == wire.RoleSlave || r.Role == wire.RoleLearner {
			connected := 0.0
			if slaveConnected(r.State) {
				connected = 1
			}
			ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected, t, p)
		}
	}
}

// slaveConnected reports whether a slave in replication state st is
// connected to its master: streaming its log or loading a full sync.
func slaveConnected(st wire.ReplState) bool {
	return st == wire.ReplStreaming || st == wire.ReplFullSyncing
}

// LatencyBuckets are the upper bounds, in seconds, of the node's request
// latency histograms: 25µs to 3.3s.
var LatencyBuckets = prometheus.ExponentialBuckets(25e-6, 2, 18)

// Histogram is a cumulative latency histogram: Count requests, of which
// Buckets[i] took at most LatencyBuckets[i].
type Histogram struct {
	Count   uint64
	Buckets []uint64
}

// RequestTotals are the node's request latency histograms since it
// started, reads (get, exists, ttl, list) and writes apart, every table
// together: take two and subtract for the rate and percentiles in
// between.
type RequestTotals struct {
	Read, Write Histogram
}

// RequestTotals sums the node's latency histograms. It reads the metrics
// whether or not they are registered anywhere.
func (s *Server) RequestTotals() RequestTotals {
	t := RequestTotals{
		Read:  Histogram{Buckets: make([]uint64, len(LatencyBuckets))},
		Write: Histogram{Buckets: make([]uint64, len(LatencyBuckets))},
	}
	ch := make(chan prometheus.Metric, 16)
	go func() {
		s.metrics.latency.Collect(ch)
		close(ch)
	}()
	var m dto.Metric
	for pm := range ch {
		m.Reset()
		if err := pm.Write(&m); err != nil || m.Histogram == nil {
			continue
		}
		h := &t.Read
		for _, l := range m.Label {
			if l.GetName() == "kind" && l.GetValue() == "write" {
				h = &t.Write
			}
		}
		h.Count += m.Histogram.GetSampleCount()
		for i, b := range m.Histogram.Bucket {
			if i < len(h.Buckets) {
				h.Buckets[i] += b.GetCumulativeCount()
			}
		}
	}
	return t
}

// Health returns nil while the node is registered with the meta group and
// its last heartbeat acknowledged by the meta leader, with a current map,
// is recent (its master lease runs), and otherwise why not.
func (s *Server) Health() error {
	select {
	case <-s.readyCh:
	default:
		return errors.New("data node not registered with the meta group yet")
	}
	if left := s.leaseLeft(); left <= 0 {
		return fmt.Errorf("no heartbeat acknowledged by the meta leader with a current map for %v (meta group unreachable, or the map is behind)",
			(s.cfg.MasterLease - left).Round(time.Millisecond))
	}
	return nil
}
