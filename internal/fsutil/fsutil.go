package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileSync replaces the file at path with b: it writes b to path.tmp,
// syncs it, renames it over path and syncs the directory, so that once it
// returns nil the new contents survive a crash, and a crash before that
// leaves the old contents (or no file, if there was none).
func WriteFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("fsutil: create %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("fsutil: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsutil: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fsutil: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fsutil: rename %s: %w", tmp, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir syncs the directory dir, making the names created, renamed or
// removed in it durable.
func SyncDir(dir string) error { return Sync(dir) }

// Sync fsyncs the file or directory at path through a descriptor of its
// own. The error wraps os.ErrNotExist when there is nothing at path.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fsutil: open %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsutil: sync %s: %w", path, err)
	}
	return nil
}
