package zeppelin_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// timedOps records when operations started and how long they took.
type timedOps struct {
	mu  sync.Mutex
	ops []timedOp
}

type timedOp struct {
	start time.Time
	took  time.Duration
}

func (o *timedOps) add(start time.Time) {
	d := time.Since(start)
	o.mu.Lock()
	o.ops = append(o.ops, timedOp{start, d})
	o.mu.Unlock()
}

// during returns the latencies of the operations that started within
// [from, to].
func (o *timedOps) during(from, to time.Time) []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []time.Duration
	for _, op := range o.ops {
		if !op.start.Before(from) && !op.start.After(to) {
			out = append(out, op.took)
		}
	}
	return out
}

// longestOverlapping returns the longest wait of an operation in flight at
// some time within [from, to].
func (o *timedOps) longestOverlapping(from, to time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var longest time.Duration
	for _, op := range o.ops {
		if op.start.Before(to) && op.start.Add(op.took).After(from) {
			longest = max(longest, op.took)
		}
	}
	return longest
}

// longestOutside returns the longest wait of an operation in flight at no
// time within any of windows.
func (o *timedOps) longestOutside(windows [][2]time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var longest time.Duration
	for _, op := range o.ops {
		end := op.start.Add(op.took)
		if !slices.ContainsFunc(windows, func(w [2]time.Time) bool { return op.start.Before(w[1]) && end.After(w[0]) }) {
			longest = max(longest, op.took)
		}
	}
	return longest
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

// BenchmarkMigrateMasterPause moves the master of one partition to another
// node 24 times while writers hammer that partition, and reports how long
// the longest write waited at each handover (the handover holds writes
// until the new master has every record): the longest write in flight at
// some time between the meta member's map first showing the partition
// held and first showing the new master (handover-*-ms), and the longest
// in flight at any time during the whole move (*-pause-ms: the copy, the
// catch-up and the old copy's deletion too), p50, p99 and max over the
// moves.
func BenchmarkMigrateMasterPause(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 5, Roles: []zeppelin.Roles{zeppelin.RoleMeta, zeppelin.RoleData, zeppelin.RoleData, zeppelin.RoleData, zeppelin.RoleData}})
	const parts = 4
	c.CreateTable("h", client.TableOptions{Partitions: parts, Replication: 3})
	cl := c.NewClient("writer")
	admin := c.NewClient("admin")
	tb := cl.Table("h")
	keys := keysIn("h", 0, parts, 200)
	var ops timedOps
	stop := startWriters(8, func(w, i int) bool {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := tb.Set(ctx, keys[(w*31+i)%len(keys)], fmt.Appendf(nil, "%d", i))
		cancel()
		if err != nil {
			b.Errorf("write: %v", err)
			return false
		}
		ops.add(start)
		return true
	})
	ctx := context.Background()
	var pauses, handovers []time.Duration
	var windows [][2]time.Time
	const moves = 24
	b.ResetTimer()
	for range moves {
		m := c.Map()
		p := m.Table("h").Partitions[0]
		var to placement.NodeID
		for _, n := range m.Nodes {
			if !p.Holds(n.ID) {
				to = n.ID
			}
		}
		start := time.Now()
		watched := make(chan [2]time.Time, 1)
		done := make(chan struct{})
		go func() { watched <- watchHandover(c.Server(0).Meta().Map, "h", 0, to, done) }()
		id, err := admin.Migrate(ctx, "h", 0, p.Master, to)
		if err != nil {
			close(done)
			b.Fatal(err)
		}
		mg, err := admin.WaitMigration(ctx, id)
		close(done)
		if err != nil || mg.State != placement.MigrationDone {
			b.Fatalf("migration %d: %+v %v", id, mg, err)
		}
		pauses = append(pauses, ops.longestOverlapping(start, time.Now()))
		end := time.Now()
		w := <-watched
		if w[1].IsZero() {
			// The master moved some other way first (a switchover):
			// this move had no handover to time.
			b.Logf("migration %d moved no master", id)
			continue
		}
		if w[1].After(end) {
			w[1] = end
		}
		handovers = append(handovers, ops.longestOverlapping(w[0], w[1]))
		windows = append(windows, w)
	}
	b.StopTimer()
	stop()
	normal := ops.during(time.Time{}, time.Now())
	elsewhere := ops.longestOutside(windows)
	b.ReportMetric(float64(percentile(handovers, 0.5).Microseconds())/1000, "handover-p50-ms")
	b.ReportMetric(float64(percentile(handovers, 0.99).Microseconds())/1000, "handover-p99-ms")
	b.ReportMetric(float64(percentile(handovers, 1).Microseconds())/1000, "handover-max-ms")
	b.ReportMetric(float64(percentile(pauses, 0.5).Microseconds())/1000, "p50-pause-ms")
	b.ReportMetric(float64(percentile(pauses, 0.99).Microseconds())/1000, "p99-pause-ms")
	b.ReportMetric(float64(percentile(pauses, 1).Microseconds())/1000, "max-pause-ms")
	b.ReportMetric(float64(percentile(normal, 0.5).Microseconds())/1000, "p50-write-ms")
	b.ReportMetric(float64(percentile(normal, 0.999).Microseconds())/1000, "p999-write-ms")
	b.ReportMetric(float64(elsewhere.Microseconds())/1000, "max-elsewhere-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d master moves under %d writes; longest write per handover: p50 %v, p99 %v, max %v; per move: p50 %v, p99 %v, max %v; all writes: p99.9 %v, longest outside the handovers %v",
		moves, len(normal), percentile(handovers, 0.5), percentile(handovers, 0.99), percentile(handovers, 1),
		percentile(pauses, 0.5), percentile(pauses, 0.99), percentile(pauses, 1),
		percentile(normal, 0.999), elsewhere)
}

// watchHandover polls the meta member's map (mapOf) until partition part
// of table is mastered by to, and returns when it first saw the partition
// held for the handover and when it first saw the new master (both that
// moment if it never saw it held), or zero times if done closes and the
// map still shows another master.
func watchHandover(mapOf func() *placement.Map, table string, part placement.PartitionID, to placement.NodeID, done <-chan struct{}) [2]time.Time {
	var held time.Time
	for {
		// Look once more after done: the map shows the new master by the
		// time the move is reported done.
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		if m := mapOf(); m != nil {
			if t := m.Table(table); t != nil {
				p := t.Partitions[part]
				now := time.Now()
				if p.State == placement.PartitionStuck && held.IsZero() {
					held = now
				}
				if p.Master == to {
					if held.IsZero() {
						held = now
					}
					return [2]time.Time{held, now}
				}
			}
		}
		if finished {
			return [2]time.Time{}
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkRebalanceForeground fills three data nodes, adds two, and
// measures the foreground load (reads and writes from 16 goroutines)
// before and during the rebalance that moves replicas onto the new
// nodes, with and without a copy bandwidth limit.
func BenchmarkRebalanceForeground(b *testing.B) {
	for _, rate := range []int64{0, 4 << 20} {
		name := "unlimited"
		if rate > 0 {
			name = fmt.Sprintf("limit-%dMBps", rate>>20)
		}
		b.Run(name, func(b *testing.B) {
			c := testcluster.New(b, testcluster.Options{Servers: 4, Roles: []zeppelin.Roles{zeppelin.RoleMeta, zeppelin.RoleData, zeppelin.RoleData, zeppelin.RoleData}})
			const parts = 8
			c.CreateTable("r", client.TableOptions{Partitions: parts, Replication: 3})
			cl := c.NewClient("load")
			admin := c.NewClient("admin")
			ctx := context.Background()
			// About 8 MB per partition.
			val := make([]byte, 1024)
			for lo := 0; lo < parts*8000; lo += 500 {
				var kvs []client.KV
				for i := lo; i < lo+500; i++ {
					kvs = append(kvs, client.KV{Key: fmt.Appendf(nil, "fill-%07d", i), Value: val})
				}
				if err := cl.Table("r").MSet(ctx, kvs); err != nil {
					b.Fatal(err)
				}
			}
			for range 2 {
				c.AddServer(zeppelin.RoleData, nil)
			}
			var ops timedOps
			tb := cl.Table("r")
			stop := startWriters(16, func(w, i int) bool {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				k := fmt.Appendf(nil, "fill-%07d", (w*7919+i*104729)%(parts*8000))
				var err error
				if i%2 == 0 {
					err = tb.Set(ctx, k, val)
				} else {
					_, err = tb.Get(ctx, k)
				}
				cancel()
				if err != nil {
					b.Errorf("foreground: %v", err)
					return false
				}
				ops.add(start)
				return true
			})
			b.ResetTimer()
			t0 := time.Now()
			time.Sleep(3 * time.Second) // the baseline, before the rebalance
			t1 := time.Now()
			res, err := admin.Rebalance(ctx, client.RebalanceOptions{CopyRate: rate})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := admin.WaitBatch(ctx, res.Batch, nil); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			b.StopTimer()
			stop()
			before, during := ops.during(t0, t1), ops.during(t1, t2)
			b.ReportMetric(float64(len(before))/t1.Sub(t0).Seconds(), "ops/s-before")
			b.ReportMetric(float64(len(during))/t2.Sub(t1).Seconds(), "ops/s-during")
			b.ReportMetric(float64(percentile(before, 0.99).Microseconds())/1000, "p99-ms-before")
			b.ReportMetric(float64(percentile(during, 0.99).Microseconds())/1000, "p99-ms-during")
			b.ReportMetric(t2.Sub(t1).Seconds(), "rebalance-s")
			b.ReportMetric(0, "ns/op")
			b.Logf("%d migrations in %v", res.Migrations, t2.Sub(t1).Round(time.Millisecond))
		})
	}
}
