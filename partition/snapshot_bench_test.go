package partition

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// snapBenchMB is the size of the partition the snapshot benchmarks copy.
const snapBenchMB = 64

// fillForSnapshot writes snapBenchMB MiB of random 1 KiB values to m in
// groups of 256 keys and returns the bytes of keys and values written.
func fillForSnapshot(b *testing.B, m *Replica) int64 {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	keys := snapBenchMB << 10
	for lo := 0; lo < keys; lo += 256 {
		ops := make([]wire.Op, 0, 256)
		for i := lo; i < lo+256; i++ {
			v := make([]byte, 1<<10)
			for j := 0; j < len(v); j += 8 {
				binary.LittleEndian.PutUint64(v[j:], rng.Uint64())
			}
			k := fmt.Appendf(nil, "k%08d", i)
			ops = append(ops, wire.Op{Type: wire.OpSet, Key: k, Value: v})
			total += int64(len(k) + len(v))
		}
		write(b, m, ops...)
	}
	return total
}

// BenchmarkSnapshotNext reads a whole snapshot in 4 MiB chunks.
func BenchmarkSnapshotNext(b *testing.B) {
	_, m := newMaster(b, nil)
	total := fillForSnapshot(b, m)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		sn, err := m.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, done, err := sn.Next(4 << 20)
			if err != nil {
				b.Fatal(err)
			}
			if done {
				break
			}
		}
		sn.Close()
	}
}

// BenchmarkLoadChunk loads a snapshot's 4 MiB chunks into an empty replica.
func BenchmarkLoadChunk(b *testing.B) {
	_, m := newMaster(b, nil)
	total := fillForSnapshot(b, m)
	sn, err := m.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var chunks [][]wire.SnapEntry
	for done := false; !done; {
		var entries []wire.SnapEntry
		if entries, done, err = sn.Next(4 << 20); err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, entries)
	}
	sn.Close()
	st := openStore(b, testOptions(b, b.TempDir(), nil))
	b.SetBytes(total)
	b.ReportAllocs()
	part := uint32(0)
	for b.Loop() {
		// A new replica each time: no old copy for the collector to delete.
		s := replica(b, st, 2, part)
		part++
		if err := s.BeginLoad(); err != nil {
			b.Fatal(err)
		}
		for _, ch := range chunks {
			if err := s.LoadChunk(ch); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.FinishLoad(sn.Gen, sn.Seq, sn.History); err != nil {
			b.Fatal(err)
		}
	}
}
