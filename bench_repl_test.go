package zeppelin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// BenchmarkReplicatedWrites compares replication factor 1, 3 async and 3
// sync on the same three-server cluster in one run: 64 goroutines setting
// 100-byte values. For rf=3 it samples the slaves' lag while the load runs.
func BenchmarkReplicatedWrites(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 3})
	c.CreateTable("rf1", client.TableOptions{Partitions: 48, Replication: 1})
	c.CreateTable("rf3", client.TableOptions{Partitions: 48, Replication: 3})
	c.CreateTable("rf3-sync", client.TableOptions{Partitions: 48, Replication: 3, Mode: placement.ModeSync})
	cl := c.NewClient("bench")
	value := make([]byte, 100)
	for _, table := range []string{"rf1", "rf3", "rf3-sync"} {
		b.Run(table, func(b *testing.B) {
			tb := cl.Table(table)
			stop := make(chan struct{})
			var maxRecs, maxMs atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					for i := range c.Len() {
						for _, r := range c.Server(i).Node().Status().Replicas {
							if r.Role == wire.RoleSlave {
								maxRecs.Store(max(maxRecs.Load(), int64(r.LagRecords)))
								maxMs.Store(max(maxMs.Load(), r.LagMs))
							}
						}
					}
				}
			}()
			runLoad(b, 64, func(ctx context.Context, _, i int) error {
				err := tb.Set(ctx, fmt.Appendf(nil, "k%d", i%200_000), value)
				return err
			})
			close(stop)
			wg.Wait()
			if table != "rf1" {
				b.ReportMetric(float64(maxRecs.Load()), "max-lag-records")
				b.ReportMetric(float64(maxMs.Load()), "max-lag-ms")
			}
		})
	}
}

// defaultTiming gives a test cluster member the heartbeat, failure
// detection, lease and Raft timing of DefaultConfig.
func defaultTiming(_ int, c *zeppelin.Config) {
	d := zeppelin.DefaultConfig(c.Dir)
	c.HeartbeatInterval, c.DownTimeout, c.MasterLease = d.HeartbeatInterval, d.DownTimeout, d.MasterLease
	c.RaftRTT = d.RaftRTT
	c.InSyncTimeout = d.InSyncTimeout
}

// BenchmarkFullSync200MB loads a 200 MB partition, wipes one slave and
// times its full sync until it has caught up.
func BenchmarkFullSync200MB(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 3})
	tbl := c.CreateTable("big", client.TableOptions{Partitions: 1, Replication: 3})
	tb := c.NewClient("load").Table("big")
	ctx := context.Background()
	const valueSize, keys = 10 << 10, 20_000 // 200 MB
	value := make([]byte, valueSize)
	for lo := 0; lo < keys; lo += 100 {
		kvs := make([]client.KV, 0, 100)
		for i := lo; i < lo+100; i++ {
			kvs = append(kvs, client.KV{Key: fmt.Appendf(nil, "k%06d", i), Value: value})
		}
		if err := tb.MSet(ctx, kvs); err != nil {
			b.Fatal(err)
		}
	}
	c.WaitConverged("big", 5*time.Minute)
	p := c.Map().Table("big").Partitions[0]
	victim := c.Index(p.Slaves[0])
	b.ResetTimer()
	for range b.N {
		c.Stop(victim)
		if err := os.RemoveAll(filepath.Join(c.Member(victim).Cfg.Dir, "data")); err != nil {
			b.Fatal(err)
		}
		c.Restart(victim, false)
		start := time.Now()
		if err := testcluster.Poll(5*time.Minute, func() error {
			s := c.Server(victim)
			if s == nil || s.Node() == nil {
				return fmt.Errorf("not started")
			}
			for _, r := range s.Node().Status().Replicas {
				if r.Table == tbl.ID && r.FullSyncs > 0 && !r.Incomplete && r.State == wire.ReplStreaming {
					return nil
				}
			}
			return fmt.Errorf("not synced")
		}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		b.ReportMetric(float64(valueSize*keys)/(1<<20)/d.Seconds(), "MB/s")
		b.ReportMetric(d.Seconds(), "seconds")
	}
}

// BenchmarkFailover kills the data node mastering the most partitions ten
// times under a fixed write load (every write goes to a new key) and
// reports the time until writes resume on the affected partitions (median
// and max over the kills) and the acknowledged writes lost per kill, for
// an async and a sync table, with the local and the default timing.
func BenchmarkFailover(b *testing.B) {
	for _, cfg := range []struct {
		name  string
		mode  placement.Mode
		tweak func(int, *zeppelin.Config)
	}{
		{"local/async", placement.ModeAsync, nil},
		{"local/sync", placement.ModeSync, nil},
		{"default/async", placement.ModeAsync, defaultTiming},
		{"default/sync", placement.ModeSync, defaultTiming},
	} {
		b.Run(cfg.name, func(b *testing.B) {
			var roles []zeppelin.Roles
			for range 3 {
				roles = append(roles, zeppelin.RoleMeta)
			}
			for range 3 {
				roles = append(roles, zeppelin.RoleData)
			}
			c := testcluster.New(b, testcluster.Options{Servers: 6, Roles: roles, Configure: cfg.tweak})
			const parts = 12
			c.CreateTable("f", client.TableOptions{Partitions: parts, Replication: 3, Mode: cfg.mode})
			tb := c.NewClient("load").Table("f")

			type write struct {
				key []byte
				at  time.Time
			}
			var mu sync.Mutex
			var acked []write
			stop := startWriters(16, func(w, i int) bool {
				k := fmt.Appendf(nil, "w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := tb.Set(ctx, k, []byte("v"))
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, write{k, time.Now()})
					mu.Unlock()
				}
				time.Sleep(time.Millisecond) // a fixed, moderate load
				return true
			})
			var resume []time.Duration
			lost := 0
			const kills = 10
			for k := range kills {
				// Steady state first: every slave streaming and nearly
				// caught up (a node restarted a moment ago may still be
				// loading).
				if err := testcluster.Poll(2*time.Minute, func() error {
					for i := 3; i < 6; i++ {
						for _, r := range c.Server(i).Node().Status().Replicas {
							if r.Role == wire.RoleSlave && (r.State != wire.ReplStreaming || r.Incomplete || r.LagRecords > 50) {
								return fmt.Errorf("%s: table %d partition %d slave %v lag %d", c.Member(i).Name, r.Table, r.Partition, r.State, r.LagRecords)
							}
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				c.WaitMetaLeader()
				counts := mastersOf(c.LeaderMap(), "f")
				var victim placement.NodeID
				for n, x := range counts {
					if victim == "" || x > counts[victim] || (x == counts[victim] && n < victim) {
						victim = n
					}
				}
				vi := c.Index(victim)
				kill := time.Now()
				c.Stop(vi)
				// Writes have resumed on every partition once each has an
				// acknowledged write after the kill.
				if err := testcluster.Poll(2*time.Minute, func() error {
					m := c.LeaderMap()
					if m == nil {
						return fmt.Errorf("no leader")
					}
					mu.Lock()
					defer mu.Unlock()
					seen := make(map[placement.PartitionID]bool)
					for _, w := range slices.Backward(acked) {
						if w.at.Before(kill) {
							break
						}
						seen[placement.PartitionOf(w.key, parts)] = true
					}
					if len(seen) < parts {
						return fmt.Errorf("%d of %d partitions resumed", len(seen), parts)
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				resume = append(resume, time.Since(kill))
				c.Restart(vi, true)
				b.Logf("kill %d: %s, writes resumed after %v", k+1, victim, resume[len(resume)-1].Round(time.Millisecond))
			}
			stop()
			c.WaitConverged("f", 2*time.Minute)
			ctx := context.Background()
			keys := make([][]byte, len(acked))
			for i, w := range acked {
				keys[i] = w.key
			}
			for lo := 0; lo < len(keys); lo += 1000 {
				res, err := tb.MGet(ctx, keys[lo:min(lo+1000, len(keys))])
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if !r.Found {
						lost++
					}
				}
			}
			slices.Sort(resume)
			b.ReportMetric(resume[len(resume)/2].Seconds(), "median-failover-s")
			b.ReportMetric(resume[len(resume)-1].Seconds(), "max-failover-s")
			b.ReportMetric(float64(lost)/kills, "lost-acked-writes/kill")
			b.ReportMetric(float64(len(acked)), "acked-writes")
		})
	}
}
