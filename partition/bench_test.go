package partition

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// benchWrites runs b.N single-set groups from 64 goroutines, spread over
// replicas, and reports ops/s and the average group commit size.
func benchWrites(b *testing.B, nrep int, d Durability) {
	o := testOptions(b, b.TempDir(), nil)
	o.Durability = d
	s := openStore(b, o)
	reps := make([]*Replica, nrep)
	for i := range reps {
		reps[i] = replica(b, s, 1, uint32(i))
		if err := reps[i].Promote(1); err != nil {
			b.Fatal(err)
		}
	}
	value := bytes.Repeat([]byte("v"), 100)
	const workers = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reps[w%nrep]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				key := fmt.Appendf(nil, "key-%d-%d", w, i)
				if _, err := r.Write(context.Background(), []wire.Op{{Type: wire.OpSet, Key: key, Value: value}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func BenchmarkWriteOneReplica(b *testing.B)       { benchWrites(b, 1, DurabilityInterval) }
func BenchmarkWrite16Replicas(b *testing.B)       { benchWrites(b, 16, DurabilityInterval) }
func BenchmarkWriteOneReplicaAlways(b *testing.B) { benchWrites(b, 1, DurabilityAlways) }
func BenchmarkWrite16ReplicasAlways(b *testing.B) { benchWrites(b, 16, DurabilityAlways) }

func BenchmarkGet(b *testing.B) {
	_, r := newMaster(b, nil)
	const keys = 10_000
	value := bytes.Repeat([]byte("v"), 100)
	ops := make([]wire.Op, 0, 500)
	for i := range keys {
		ops = append(ops, wire.Op{Type: wire.OpSet, Key: fmt.Appendf(nil, "key-%d", i), Value: value})
		if len(ops) == cap(ops) {
			write(b, r, ops...)
			ops = ops[:0]
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, _, found, err := r.Get(fmt.Appendf(nil, "key-%d", i%keys)); err != nil || !found {
				b.Errorf("Get: %v %v", found, err)
				return
			}
		}
	})
}

// BenchmarkGetMany reads 16 keys a call through GetMany, the read of a
// pipelined run of GETs; the keys are in the read cache after the first
// round.
func BenchmarkGetMany(b *testing.B) {
	s, r := newMaster(b, nil)
	const keys = 10_000
	value := bytes.Repeat([]byte("v"), 100)
	ops := make([]wire.Op, 0, 500)
	all := make([][]byte, keys)
	for i := range keys {
		all[i] = fmt.Appendf(nil, "key-%d", i)
		ops = append(ops, wire.Op{Type: wire.OpSet, Key: all[i], Value: value})
		if len(ops) == cap(ops) {
			write(b, r, ops...)
			ops = ops[:0]
		}
	}
	reps := make([]*Replica, 16)
	for i := range reps {
		reps[i] = r
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i += len(reps) {
			lo := i % (keys - len(reps))
			s.GetMany(reps, all[lo:lo+len(reps)], func(_ int, v []byte, _ int64, found bool, _ uint64, err error) bool {
				if err != nil || !found || len(v) != len(value) {
					b.Errorf("GetMany: %d bytes, %v, %v", len(v), found, err)
					return false
				}
				return true
			})
		}
	})
}
