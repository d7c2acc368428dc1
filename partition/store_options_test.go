package partition

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestMemtableSizing(t *testing.T) {
	for _, tc := range []struct {
		budget, size int64
	}{
		{0, 4 << 20},               // below the minimum: the minimum's
		{MinMemoryBudget, 4 << 20}, // 24 MiB: three of 4 MiB
		{DefaultMemoryBudget, DefaultMemoryBudget * 10 / 59},
		{1 << 30, (1 << 30) * 10 / 59},
	} {
		size, n := memtableSizing(tc.budget)
		if n != 3 || size < tc.size-1<<20 || size > tc.size+1<<20 {
			t.Errorf("budget %d: %d memtables of %d bytes, want 3 of about %d", tc.budget, n, size, tc.size)
		}
		// What the budget covers: the memtables' arenas and a flush buffer.
		if used := int64(n)*size*13/10 + 2*size; tc.budget >= MinMemoryBudget && used > tc.budget {
			t.Errorf("budget %d: memtables and flush use %d", tc.budget, used)
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
