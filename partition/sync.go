package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/zeppelin-kv/zeppelin/internal/fsutil"
)

// logSyncer makes what the store has committed durable, as Badger's
// DB.Sync does, without stalling writers. DB.Sync holds the DB's lock for
// the whole msync of the active memtable's write-ahead log, and every
// write batch takes that lock to check for room: under a write load each
// periodic sync held every write of the node for as long as the disk took
// (30–60 ms here, once a second). The syncer fsyncs Badger's log files
// through descriptors of its own instead — on Linux an fsync writes back
// a file's pages dirtied through any shared mapping of it — and it covers
// two gaps DB.Sync leaves: the logs of memtables that are full but not
// flushed yet, and value log files rotated since the last sync, whose
// tails Badger does not sync when it stops writing them.
type logSyncer struct {
	mu       sync.Mutex // one sync at a time: each builds on the last
	dirs     []string   // Badger's directory, and its value directory if apart
	vlogFrom uint64     // value log files from this ID on may be unsynced
	known    map[string]bool
	synced   func(path string) // test hook: called for each file synced
}

func newLogSyncer(dir, valueDir string) *logSyncer {
	dirs := []string{dir}
	if valueDir != "" && filepath.Clean(valueDir) != filepath.Clean(dir) {
		dirs = append(dirs, valueDir)
	}
	return &logSyncer{dirs: dirs, known: make(map[string]bool)}
}

// sync fsyncs every value log file written to since the previous sync,
// then every memtable log (a memtable's entries point into the value log,
// so the values go first), and the directories when they hold files the
// previous sync did not see. Files Badger deletes meanwhile (a flushed
// memtable's log) are skipped: what they held is in a synced table.
func (l *logSyncer) sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var vlogs, mems []string
	var newest uint64
	seen := make(map[string]bool, len(l.known))
	fresh := false
	for _, dir := range l.dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("partition: sync: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			p := filepath.Join(dir, name)
			switch {
			case strings.HasSuffix(name, ".vlog"):
				id, err := strconv.ParseUint(strings.TrimSuffix(name, ".vlog"), 10, 32)
				if err != nil {
					continue
				}
				newest = max(newest, id)
				if id < l.vlogFrom {
					continue
				}
				vlogs = append(vlogs, p)
			case strings.HasSuffix(name, ".mem"):
				mems = append(mems, p)
			default:
				continue
			}
			seen[p] = true
			fresh = fresh || !l.known[p]
		}
	}
	for _, p := range append(vlogs, mems...) {
		if err := syncFile(p); err != nil {
			return err
		}
		if l.synced != nil {
			l.synced(p)
		}
	}
	if fresh {
		for _, dir := range l.dirs {
			if err := fsutil.SyncDir(dir); err != nil {
				return fmt.Errorf("partition: sync: %w", err)
			}
		}
	}
	// The newest file may take more writes; every older one was done
	// before this sync listed them, so this sync has covered it.
	l.vlogFrom = newest
	l.known = seen
	return nil
}

// syncFile fsyncs the file at p; a file gone meanwhile is not an error.
func syncFile(p string) error {
	if err := fsutil.Sync(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("partition: sync: %w", err)
	}
	return nil
}
