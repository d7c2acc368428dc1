package partition

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLogSyncerCoversEveryUnsyncedLog(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir, nil)
	o.MemoryBudget, o.valueLogFileSize = MinMemoryBudget, 1<<20
	// No periodic sync: the test's are the only ones.
	o.Durability = DurabilityNone
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var synced []string
	s.logs.synced = func(p string) { synced = append(synced, filepath.Base(p)) }
	r := replica(t, s, 1, 0)
	if err := r.Promote(1); err != nil {
		t.Fatal(err)
	}
	// Values large enough for the value log, enough of them to fill
	// several of its 1 MiB files.
	fill := func(round int) {
		for k := range 40 {
			write(t, r, set(fmt.Sprint("k", k), fmt.Sprintf("%d/%s", round, strings.Repeat("v", 64<<10))))
		}
	}
	sync := func() []string {
		t.Helper()
		synced = nil
		if err := s.logs.sync(); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(synced)
	}
	kinds := func(files []string) (vlogs, mems []string) {
		for _, f := range files {
			if strings.HasSuffix(f, ".vlog") {
				vlogs = append(vlogs, f)
			} else if strings.HasSuffix(f, ".mem") {
				mems = append(mems, f)
			}
		}
		return vlogs, mems
	}

	fill(1)
	vlogs, mems := kinds(sync())
	if len(vlogs) < 2 {
		t.Fatalf("first sync covered value logs %v, want every one (at least two after 2.5 MiB)", vlogs)
	}
	if len(mems) == 0 {
		t.Fatal("first sync covered no memtable log")
	}
	// Nothing written: only the newest value log file may still change.
	newest := slices.Max(vlogs)
	if v, _ := kinds(sync()); !slices.Equal(v, []string{newest}) {
		t.Fatalf("idle sync covered value logs %v, want only the newest, %s", v, newest)
	}
	// The file that was newest at the last sync and every file written
	// since, nothing older.
	fill(2)
	v, _ := kinds(sync())
	if len(v) < 2 || slices.Min(v) != newest {
		t.Fatalf("sync after a rotation covered value logs %v, want %s and the newer ones", v, newest)
	}
	// What the syncs wrote is still all there.
	for k := range 40 {
		got, _, found := get(t, r, fmt.Sprint("k", k))
		if !found || !strings.HasPrefix(got, "2/") {
			t.Fatalf("k%d = %.10q (found %v) after the syncs", k, got, found)
		}
	}
}
