package zeppelin

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/node"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// totals returns cumulative histograms holding n requests of latency
// each of the given seconds, starting from base.
func totals(base node.RequestTotals, read, write map[float64]uint64) node.RequestTotals {
	add := func(h node.Histogram, obs map[float64]uint64) node.Histogram {
		out := node.Histogram{Count: h.Count, Buckets: make([]uint64, len(node.LatencyBuckets))}
		copy(out.Buckets, h.Buckets)
		for v, n := range obs {
			out.Count += n
			for i, b := range node.LatencyBuckets {
				if v <= b {
					out.Buckets[i] += n
				}
			}
		}
		return out
	}
	return node.RequestTotals{Read: add(base.Read, read), Write: add(base.Write, write)}
}

func TestLoadHistory(t *testing.T) {
	var h loadHistory
	start := time.Unix(1_700_000_000, 0)
	var cum node.RequestTotals
	cum = totals(cum, nil, nil)
	h.record(start, cum)
	// 100 reads/s, 99 at ~0.1 ms and 1 at ~50 ms; 10 writes/s at ~1 ms.
	for i := 1; i <= historyLen+20; i++ {
		cum = totals(cum, map[float64]uint64{100e-6: 99, 50e-3: 1}, map[float64]uint64{1e-3: 10})
		h.record(start.Add(time.Duration(i)*time.Second), cum)
	}
	series := h.series()
	if len(series) != historyLen {
		t.Fatalf("%d samples kept, want %d", len(series), historyLen)
	}
	if first, last := series[0].UnixSec, series[len(series)-1].UnixSec; last-first != historyLen-1 || last != start.Unix()+historyLen+20 {
		t.Errorf("samples from %d to %d", first, last)
	}
	read, write := h.recent(start.Add((historyLen+20)*time.Second), recentWindow)
	if math.Abs(read.OpsPerSec-100) > 0.01 || math.Abs(write.OpsPerSec-10) > 0.01 {
		t.Errorf("rates %v reads/s, %v writes/s, want 100 and 10", read.OpsPerSec, write.OpsPerSec)
	}
	// p50 falls in the 0.1 ms bucket (0.1 ms to 0.2 ms), p99 at its top;
	// write p99 in the bucket of 1 ms (0.8 ms to 1.6 ms).
	if read.P50Ms <= 0.05 || read.P50Ms > 0.2 {
		t.Errorf("read p50 %v ms", read.P50Ms)
	}
	if read.P99Ms > 0.2 {
		t.Errorf("read p99 %v ms, want ≤ 0.2 (one request in a hundred is slow)", read.P99Ms)
	}
	if write.P99Ms < 0.8 || write.P99Ms > 1.6 {
		t.Errorf("write p99 %v ms", write.P99Ms)
	}
	if (histDelta{}).quantile(0.99) != 0 {
		t.Error("the quantile of nothing is not 0")
	}
}

func TestFullSyncEvents(t *testing.T) {
	var h loadHistory
	now := time.Now()
	rs := []wire.ReplicaStatus{{Table: 1, Partition: 0, Role: wire.RoleSlave, State: wire.ReplStreaming}}
	h.noteReplicas(now, "n1", rs)
	rs[0].State = wire.ReplFullSyncing
	h.noteReplicas(now.Add(time.Second), "n1", rs)
	h.noteReplicas(now.Add(2*time.Second), "n1", rs)
	rs[0].State, rs[0].FullSyncs = wire.ReplStreaming, 1
	h.noteReplicas(now.Add(3*time.Second), "n1", rs)
	var kinds []string
	for _, e := range h.localEvents() {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ", "); got != "full sync, full sync done" {
		t.Errorf("events %q", got)
	}
}

func TestReplicaViewOfDisconnectedSlave(t *testing.T) {
	p := placement.Partition{ID: 3, Master: "a", Slaves: []placement.NodeID{"b", "c", "d"}, Gen: 2}
	master := client.ReplicaStatus{Table: 1, Partition: 3, Role: client.RoleMaster, Seq: 500, Slaves: []client.SlaveProgress{
		{Node: "b", Acked: 500}, {Node: "c", Acked: 420, LagMs: 1500}, {Node: "d", Acked: 300}}}
	reports := map[reportKey]client.ReplicaStatus{
		{1, 3, "a"}: master,
		// b streams, caught up.
		{1, 3, "b"}: {Table: 1, Partition: 3, Role: client.RoleSlave, State: client.ReplicaStreaming, Seq: 500},
		// c lost its master: its last report said it was caught up.
		{1, 3, "c"}: {Table: 1, Partition: 3, Role: client.RoleSlave, State: client.ReplicaConnecting, Seq: 420},
		// d's node is down; its stale report says streaming.
		{1, 3, "d"}: {Table: 1, Partition: 3, Role: client.RoleSlave, State: client.ReplicaStreaming, Seq: 300},
	}
	for _, tc := range []struct {
		node      placement.NodeID
		down      bool
		state     string
		connected bool
		records   uint64
		ms        int64
	}{
		{"b", false, "streaming", true, 0, 0},
		{"c", false, "connecting", false, 80, 1500},
		{"d", true, "down", false, 200, -1}, // behind, since when unknown
	} {
		v := replicaView(1, tc.node, p, reports, tc.down, master, true)
		if v.Role != "slave" || v.State != tc.state || v.Connected != tc.connected || v.LagRecords != tc.records || v.LagMs != tc.ms {
			t.Errorf("%s: %+v, want %s connected=%v lag %d rec / %d ms", tc.node, v, tc.state, tc.connected, tc.records, tc.ms)
		}
	}
	if got := fmtLag(200, -1); got != "200 rec / ?" {
		t.Errorf("fmtLag = %q", got)
	}
}

func TestEventRows(t *testing.T) {
	at := time.Now()
	part := func(i uint32) *uint32 { return &i }
	var evs []eventJSON
	evs = append(evs, eventJSON{Time: at, Kind: "down", Node: "n3", Epoch: 9, Source: "n1"})
	for i := range uint32(6) {
		evs = append(evs, eventJSON{Time: at, Kind: "failover", Table: "t", TableID: 1, Partition: part(i), Node: "n1", From: "n3", Gen: 2, Epoch: 9, Source: "n1"})
	}
	evs = append(evs, eventJSON{Time: at, Kind: "failover", Table: "s", TableID: 2, Partition: part(0), Node: "n2", From: "n2", Gen: 1, Epoch: 9, Source: "n1"})
	evs = append(evs, eventJSON{Time: at.Add(-time.Minute), Kind: "switchover", Table: "t", TableID: 1, Partition: part(0), Node: "n2", From: "n1", Gen: 2, Epoch: 7, Source: "n1"})
	rows := eventRows(evs, 10)
	if len(rows) != 4 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	if r := rows[1]; r.Kind != "failover" || r.Count != 6 || !strings.HasPrefix(r.Where, "6 partitions: t/0, t/1, t/2") || r.Node != "n1" || r.From != "n3" || r.Gens != "2" {
		t.Errorf("failovers: %+v", r)
	}
	if r := rows[2]; r.Kind != "partition changed (master kept)" {
		t.Errorf("a failover keeping its master shows as %q", r.Kind)
	}
	if r := rows[3]; r.Kind != "switchover" || r.Where != "t/0" {
		t.Errorf("switchover: %+v", r)
	}
	if rows := eventRows(evs, 2); len(rows) != 2 {
		t.Errorf("limit 2: %d rows", len(rows))
	}
}

// TestDashboardLargeTable renders a table of 1,024 partitions: every one
// is a block in the grid with its detail in its title, and the page stays
// small enough to refresh.
func TestDashboardLargeTable(t *testing.T) {
	tv := tableJSON{Name: "big", ID: 7, PartitionCount: 1024, Replication: 3, Mode: "sync", MinInSync: 2, Domain: "host"}
	for i := range 1024 {
		p := partitionJSON{ID: uint32(i), Master: "n1", Slaves: []string{"n2", "n3"}, InSync: []string{"n1", "n2"}, Gen: 4, State: "active"}
		p.Replicas = []replicaJSON{
			{Partition: uint32(i), Node: "n1", Role: "master", State: "idle", Connected: true, InSync: true, Seq: 1000},
			{Partition: uint32(i), Node: "n2", Role: "slave", State: "streaming", Connected: true, InSync: true, Seq: 1000},
			{Partition: uint32(i), Node: "n3", Role: "slave", State: "down", LagRecords: 120, LagMs: -1, Seq: 880},
		}
		tv.Partitions = append(tv.Partitions, p)
	}
	d := dashboardData{statusJSON: statusJSON{Node: "n1", Roles: "meta+data", Ready: true, Cluster: &clusterJSON{
		Epoch: 5, LeaderID: 1, Nodes: []nodeJSON{{ID: "n1", State: "up"}, {ID: "n3", State: "down", Slaves: 1024, DisconnectedSlaves: 1024, MaxLagRecords: 120, MaxLagMs: -1}},
		Tables: []tableJSON{tv},
	}}}
	var b strings.Builder
	if err := dashboardTmpl.ExecuteTemplate(&b, "page.html", d); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	blocks := regexp.MustCompile(`<b class="p[^"]*" title="big/(\d+) · gen 4`).FindAllString(page, -1)
	if len(blocks) != 1024 {
		t.Errorf("%d partition blocks, want 1024", len(blocks))
	}
	if n := strings.Count(page, `<i class="dn oos">`); n != 1024 {
		t.Errorf("%d down cells outside the in-sync set, want 1024", n)
	}
	if !strings.Contains(page, "slave n3: down, disconnected, lag 120 rec / ?") {
		t.Error("a partition's title lacks the down slave's lag")
	}
	if !strings.Contains(page, `class="node down" data-node="n3"`) || !strings.Contains(page, "120 rec / ?") {
		t.Error("the down node does not stand out")
	}
	if len(page) > 1<<20 {
		t.Errorf("page of %d bytes for 1,024 partitions", len(page))
	}
	t.Logf("%d bytes for 1,024 partitions", len(page))
}
