package partition

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestSizeBadger(t *testing.T) {
	for _, tc := range []struct {
		budget       int64
		uncompressed bool
		readCache    int64
		want         badgerSizing
	}{
		// Below the minimum: the minimum's.
		{0, false, 0, badgerSizing{memtable: 4 << 20, memtables: 4, blockCache: MinMemoryBudget / 16, readCache: MinMemoryBudget * 3 / 16, baseTable: 256 << 10}},
		{MinMemoryBudget, false, 0, badgerSizing{memtable: 4 << 20, memtables: 4, blockCache: 3 << 19, readCache: 9 << 19, baseTable: 256 << 10}},
		{64 << 20, false, 0, badgerSizing{memtable: 4 << 20, memtables: 4, blockCache: 4 << 20, readCache: 12 << 20, baseTable: 256 << 10}},
		{DefaultMemoryBudget, false, 0, badgerSizing{memtable: 8 << 20, memtables: 4, blockCache: 8 << 20, readCache: 24 << 20, baseTable: 512 << 10}},
		{DefaultMemoryBudget, true, 0, badgerSizing{memtable: (DefaultMemoryBudget - 24<<20) / 12, memtables: 4, readCache: 24 << 20, baseTable: 512 << 10}},
		{1 << 30, false, 0, badgerSizing{memtable: 64 << 20, memtables: 4, blockCache: 64 << 20, readCache: 192 << 20, baseTable: 2 << 20}},
		// No read cache: the block cache keeps the quarter.
		{DefaultMemoryBudget, false, -1, badgerSizing{memtable: 8 << 20, memtables: 4, blockCache: 32 << 20, baseTable: 512 << 10}},
		{DefaultMemoryBudget, true, -1, badgerSizing{memtable: DefaultMemoryBudget / 12, memtables: 4, baseTable: 512 << 10}},
		// A set size: up to three sixteenths of the budget from the block cache.
		{DefaultMemoryBudget, false, 4 << 20, badgerSizing{memtable: 8 << 20, memtables: 4, blockCache: 28 << 20, readCache: 4 << 20, baseTable: 512 << 10}},
		{DefaultMemoryBudget, false, 64 << 20, badgerSizing{memtable: 8 << 20, memtables: 4, blockCache: 8 << 20, readCache: 64 << 20, baseTable: 512 << 10}},
	} {
		if got := sizeBadger(tc.budget, tc.uncompressed, tc.readCache); got != tc.want {
			t.Errorf("budget %d, uncompressed %v, read cache %d: %+v, want %+v", tc.budget, tc.uncompressed, tc.readCache, got, tc.want)
		}
	}
	// What the budget is made of: the caches, and twelve memtables' worth
	// of memtable arenas and table builders.
	for _, budget := range []int64{MinMemoryBudget, SmallMemoryBudget, DefaultMemoryBudget, 1 << 30} {
		for _, u := range []bool{false, true} {
			z := sizeBadger(budget, u, 0)
			if z.memtable < 4<<20 {
				t.Errorf("budget %d: memtables of %d bytes, below 4 MiB", budget, z.memtable)
			}
			if used := z.blockCache + z.readCache + 12*z.memtable; budget > 48<<20 && used > budget {
				t.Errorf("budget %d, uncompressed %v: block cache and memtables take %d", budget, u, used)
			}
		}
	}
}

func TestOpenWithBudgets(t *testing.T) {
	for _, o := range []Options{{MemoryBudget: MinMemoryBudget}, {MemoryBudget: 64 << 20}, {MemoryBudget: 64 << 20, Uncompressed: true}} {
		budget := o.MemoryBudget
		o.Dir, o.Small = t.TempDir(), true
		s, err := Open(o)
		if err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		r, err := s.Replica(1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Promote(1); err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 900<<10) // beyond the smallest memtable's value threshold
		if _, err := r.Write(t.Context(), []wire.Op{{Type: wire.OpSet, Key: []byte("k"), Value: big}}); err != nil {
			t.Fatalf("budget %d: write a 900 KiB value: %v", budget, err)
		}
		v, _, found, err := r.Get([]byte("k"))
		if err != nil || !found || len(v) != len(big) {
			t.Fatalf("budget %d: read back %d bytes, found %v, %v", budget, len(v), found, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
