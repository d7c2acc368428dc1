package zeppelin_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// apiBenchKeys is the key space of BenchmarkDataAPI; MGet reads keys that
// exist.
const apiBenchKeys = 100_000

func apiBenchKey(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }

// randomKeys returns n random keys of the benchmark key space.
func randomKeys(r *rand.Rand, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = apiBenchKey(r.IntN(apiBenchKeys))
	}
	return keys
}

// BenchmarkDataAPI measures the multi-key, batch and counter operations
// with 64 goroutines on one remote client, against a 1-server rf=1 and a
// 3-server rf=3 cluster (64 partitions, 100-byte values). One op is one
// call: an MGet of 100 keys counts once.
func BenchmarkDataAPI(b *testing.B) {
	const goroutines = 64
	value := make([]byte, 100)
	for _, shape := range []struct{ servers, replication int }{{1, 1}, {3, 3}} {
		b.Run(fmt.Sprintf("servers=%d/rf=%d", shape.servers, shape.replication), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Options{Servers: shape.servers})
			c.CreateTable("bench", client.TableOptions{Partitions: 64, Replication: shape.replication})
			tb := c.NewClient("bench").Table("bench")
			ctx := context.Background()
			for lo := 0; lo < apiBenchKeys; lo += 1000 {
				kvs := make([]client.KV, 1000)
				for i := range kvs {
					kvs[i] = client.KV{Key: apiBenchKey(lo + i), Value: value}
				}
				if err := tb.MSet(ctx, kvs); err != nil {
					b.Fatal(err)
				}
			}
			// rngs gives each worker its own generator.
			rngs := func() []*rand.Rand {
				rs := make([]*rand.Rand, goroutines)
				for i := range rs {
					rs[i] = rand.New(rand.NewPCG(uint64(i), 42))
				}
				return rs
			}
			for _, n := range []int{10, 100} {
				b.Run(fmt.Sprintf("MGet/keys=%d", n), func(b *testing.B) {
					rs := rngs()
					runLoad(b, goroutines, func(ctx context.Context, w, _ int) error {
						_, err := tb.MGet(ctx, randomKeys(rs[w], n))
						return err
					})
				})
				b.Run(fmt.Sprintf("MSet/keys=%d", n), func(b *testing.B) {
					rs := rngs()
					runLoad(b, goroutines, func(ctx context.Context, w, _ int) error {
						keys := randomKeys(rs[w], n)
						kvs := make([]client.KV, n)
						for i, k := range keys {
							kvs[i] = client.KV{Key: k, Value: value}
						}
						return tb.MSet(ctx, kvs)
					})
				})
			}
			b.Run("Batch/ops=10", func(b *testing.B) {
				// 8 sets, an increment and a delete on one of 10,000
				// hashtags.
				rs := rngs()
				runLoad(b, goroutines, func(ctx context.Context, w, _ int) error {
					tag := fmt.Sprintf("t%d", rs[w].IntN(10_000))
					batch := tb.Batch([]byte(tag))
					for f := range 8 {
						batch.Set(fmt.Appendf(nil, "{%s}f%d", tag, f), value)
					}
					batch.IncrBy(fmt.Appendf(nil, "{%s}n", tag), 1)
					batch.Delete(fmt.Appendf(nil, "{%s}gone", tag))
					_, err := batch.Commit(ctx)
					return err
				})
			})
			b.Run("Incr/hot", func(b *testing.B) {
				runLoad(b, goroutines, func(ctx context.Context, _, _ int) error {
					_, err := tb.Incr(ctx, []byte("hot"))
					return err
				})
			})
			b.Run("Incr/random", func(b *testing.B) {
				rs := rngs()
				runLoad(b, goroutines, func(ctx context.Context, w, _ int) error {
					_, err := tb.Incr(ctx, fmt.Appendf(nil, "ctr%06d", rs[w].IntN(apiBenchKeys)))
					return err
				})
			})
		})
	}
}
