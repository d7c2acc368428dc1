package partition

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// vlogBytes returns the size of the value log files in dir.
func vlogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".vlog") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

// TestValueThreshold checks where values go: below valueLogMin in the LSM
// tree, from it on in the value log, and less than that with memtables too
// small for a write of such a value to fit one batch.
func TestValueThreshold(t *testing.T) {
	if got := valueThreshold(16 << 20); got != valueLogMin {
		t.Errorf("threshold with 16 MiB memtables: %d, want %d", got, valueLogMin)
	}
	if got := valueThreshold(4 << 20); got != valueLogMin {
		t.Errorf("threshold with 4 MiB memtables: %d, want %d", got, valueLogMin)
	}
	if got := valueThreshold(16 << 10); got >= 16<<10*15/200 {
		t.Errorf("threshold with 16 KiB memtables: %d, not below a batch's half", got)
	}
}

// TestValueLogCollected overwrites values kept in the value log many times
// and purges their binlog records, then checks that the value log
// collector rewrites files and gives back their space, and that every key
// still reads its last value afterwards, also once the store reopens.
func TestValueLogCollected(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir, nil)
	o.MemoryBudget, o.valueLogFileSize = MinMemoryBudget, 1<<20
	const keys, rounds = 200, 12
	value := func(k, round int) string {
		return fmt.Sprintf("%04d/%02d/%s", k, round, strings.Repeat("v", 2*valueLogMin))
	}
	// Each round overwrites every key and purges the records, then closes
	// the store, which flushes its memtable into a level-0 table: past
	// eight of them, compactions merge them and drop the overwritten
	// versions, which tells Badger how much of each value log file is
	// garbage.
	for round := range rounds {
		s, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		r := replica(t, s, 1, 0)
		if err := r.Promote(uint64(round + 1)); err != nil {
			t.Fatal(err)
		}
		ops := make([]wire.Op, 0, 20)
		for k := range keys {
			ops = append(ops, set(fmt.Sprint("k", k), value(k, round)))
			if len(ops) == cap(ops) {
				write(t, r, ops...)
				ops = ops[:0]
			}
		}
		if _, err := r.Purge(Retention{MaxRecords: 1}, math.MaxUint64); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, o)
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	before := vlogBytes(t, dir)
	total := 0
	for {
		n, err := s.collectValueLog()
		if err != nil {
			t.Fatalf("collectValueLog: %v", err)
		}
		total += n
		if n < valueLogMaxRewrites {
			break
		}
	}
	after := vlogBytes(t, dir)
	t.Logf("value log: %d files rewritten, %d -> %d bytes", total, before, after)
	if total == 0 || s.ValueLogRewrites() != uint64(total) {
		t.Fatalf("%d files rewritten (counted %d): want some", total, s.ValueLogRewrites())
	}
	live := int64(keys * len(value(0, 0)))
	if after >= before || after > 4*live+4<<20 {
		t.Errorf("value log %d -> %d bytes, live values %d: the garbage was not reclaimed", before, after, live)
	}
	check := func(s *Store) {
		t.Helper()
		r := replica(t, s, 1, 0)
		for k := range keys {
			wantValue(t, r, fmt.Sprint("k", k), value(k, rounds-1))
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openStore(t, o))
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
}
