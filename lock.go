package zeppelin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/zeppelin-kv/zeppelin/internal/fsutil"
)

// ErrDirLocked is returned by Start when another process or Server holds
// the data directory.
var ErrDirLocked = errors.New("zeppelin: data directory is in use by another process")

// ErrWrongNode is returned by Start when the data directory belongs to
// another node ID.
var ErrWrongNode = errors.New("zeppelin: data directory belongs to another node")

// dirLock is an exclusive flock on Dir/LOCK. flock locks belong to the open
// file, so a second Server in the same process is refused too.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("zeppelin: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDirLocked, dir)
		}
		return nil, fmt.Errorf("zeppelin: lock %s: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// identity returns the node ID recorded in dir, or want (a new random ID
// when want is empty) with fresh set when dir records none yet; the caller
// records a fresh ID with recordIdentity once start-up has got far enough
// that the directory is really this node's.
func identity(dir, want string) (id string, fresh bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "IDENTITY"))
	switch {
	case err == nil:
		have := string(b)
		if want != "" && want != have {
			return "", false, fmt.Errorf("%w: %s holds node %q, configured as %q", ErrWrongNode, dir, have, want)
		}
		return have, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", false, fmt.Errorf("zeppelin: read identity: %w", err)
	}
	if want == "" {
		var r [4]byte
		_, _ = rand.Read(r[:])
		want = fmt.Sprintf("n-%x", r)
	}
	return want, true, nil
}

// recordIdentity binds dir to node id for good.
func recordIdentity(dir, id string) error {
	if err := fsutil.WriteFileSync(filepath.Join(dir, "IDENTITY"), []byte(id)); err != nil {
		return fmt.Errorf("zeppelin: record identity: %w", err)
	}
	return nil
}
