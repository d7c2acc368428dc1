package zeppelin_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// runLoad runs n operations split over g goroutines and reports ops/s and
// latency percentiles.
func runLoad(b *testing.B, g int, op func(ctx context.Context, worker, i int) error) {
	b.Helper()
	ctx := context.Background()
	lat := make([][]time.Duration, g)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, b.N/g+1)
			for i := w; i < b.N; i += g {
				t0 := time.Now()
				if err := op(ctx, w, i); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(int(p*float64(len(all))), len(all)-1)].Microseconds())
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

func benchCluster(b *testing.B, servers, replication int) (*testcluster.Cluster, *client.Table) {
	c := testcluster.New(b, testcluster.Options{Servers: servers})
	c.CreateTable("bench", client.TableOptions{Partitions: 64, Replication: replication})
	return c, c.NewClient("bench").Table("bench")
}

func BenchmarkClient(b *testing.B) {
	value := make([]byte, 100)
	for _, shape := range []struct{ servers, replication int }{{1, 1}, {3, 3}} {
		for _, g := range []int{1, 64} {
			name := fmt.Sprintf("servers=%d/rf=%d/goroutines=%d", shape.servers, shape.replication, g)
			b.Run("Set/"+name, func(b *testing.B) {
				_, tb := benchCluster(b, shape.servers, shape.replication)
				runLoad(b, g, func(ctx context.Context, _, i int) error {
					err := tb.Set(ctx, fmt.Appendf(nil, "k%d", i%100_000), value)
					return err
				})
			})
			b.Run("Get/"+name, func(b *testing.B) {
				_, tb := benchCluster(b, shape.servers, shape.replication)
				ctx := context.Background()
				const keys = 10_000
				kvs := make([]client.KV, keys)
				for i := range kvs {
					kvs[i] = client.KV{Key: fmt.Appendf(nil, "k%d", i), Value: value}
				}
				for lo := 0; lo < keys; lo += 1000 {
					if err := tb.MSet(ctx, kvs[lo:lo+1000]); err != nil {
						b.Fatal(err)
					}
				}
				runLoad(b, g, func(ctx context.Context, _, i int) error {
					_, err := tb.Get(ctx, kvs[i%keys].Key)
					return err
				})
			})
		}
	}
}

// BenchmarkEmbedded measures the client of a server's own process
// (srv.Client()), the way a program embedding the store uses it.
func BenchmarkEmbedded(b *testing.B) {
	value := make([]byte, 100)
	for _, g := range []int{1, 64} {
		b.Run(fmt.Sprintf("Set/goroutines=%d", g), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Options{Servers: 1})
			c.CreateTable("bench", client.TableOptions{Partitions: 64, Replication: 1})
			tb := c.Client(0).Table("bench")
			runLoad(b, g, func(ctx context.Context, _, i int) error {
				err := tb.Set(ctx, fmt.Appendf(nil, "k%d", i%100_000), value)
				return err
			})
		})
		b.Run(fmt.Sprintf("Get/goroutines=%d", g), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Options{Servers: 1})
			c.CreateTable("bench", client.TableOptions{Partitions: 64, Replication: 1})
			tb := c.Client(0).Table("bench")
			ctx := context.Background()
			kvs := make([]client.KV, 10_000)
			for i := range kvs {
				kvs[i] = client.KV{Key: fmt.Appendf(nil, "k%d", i), Value: value}
			}
			for lo := 0; lo < len(kvs); lo += 1000 {
				if err := tb.MSet(ctx, kvs[lo:lo+1000]); err != nil {
					b.Fatal(err)
				}
			}
			runLoad(b, g, func(ctx context.Context, _, i int) error {
				_, err := tb.Get(ctx, kvs[i%len(kvs)].Key)
				return err
			})
		})
	}
}
