package zeppelin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
)

// startLocal starts a single meta+data server in dir without waiting for
// it to be ready, and closes it at the end of the test.
func startLocal(t *testing.T, dir string) *zeppelin.Server {
	t.Helper()
	cfg := zeppelin.DefaultLocalConfig(dir)
	cfg.GossipAddr = "off"
	srv, err := zeppelin.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestStartRefusesUnreadableRaftAddr(t *testing.T) {
	// Reading the recorded Raft address fails with EISDIR in both cases,
	// whoever runs the test. A link could be replaced by a new file: the
	// member would move to another address.
	for _, tc := range []struct {
		name string
		make func(p string) error
	}{
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }},
		{"link to a directory", func(p string) error {
			target := filepath.Join(filepath.Dir(p), "elsewhere")
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
			return os.Symlink(target, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "meta", "RAFT_ADDR")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			before, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			cfg := zeppelin.DefaultLocalConfig(dir)
			cfg.GossipAddr = "off"
			srv, err := zeppelin.Start(cfg)
			if err == nil {
				srv.Close()
				t.Fatal("Start succeeded with an unreadable RAFT_ADDR")
			}
			if !errors.Is(err, syscall.EISDIR) {
				t.Errorf("Start: got %v, want an error wrapping EISDIR", err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("Start: got %q, want the message to name %s", err, p)
			}
			if after, err := os.Lstat(p); err != nil {
				t.Errorf("RAFT_ADDR is gone: %v", err)
			} else if after.Mode() != before.Mode() {
				t.Errorf("RAFT_ADDR was replaced: got mode %v, want %v", after.Mode(), before.Mode())
			}

			// The failed start released the directory: once nothing
			// unreadable is recorded, the server starts and records its
			// address.
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			srv = startLocal(t, dir)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read RAFT_ADDR after a good start: %v", err)
			}
			if got, want := string(b), srv.RaftAddr(); got != want {
				t.Errorf("RAFT_ADDR: got %q, want %q", got, want)
			}
		})
	}
}

func TestServerClientSharedAndClosedWithServer(t *testing.T) {
	srv := startLocal(t, t.TempDir())
	cl := srv.Client()
	if cl == nil {
		t.Fatal("Client returned nil")
	}
	if again := srv.Client(); again != cl {
		t.Errorf("Client: got %p then %p, want one shared client", cl, again)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := srv.Client(); after != cl {
		t.Errorf("Client after Close: got %p, want the shared client %p", after, cl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Map(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Map through the client of a closed server: got %v, want client.ErrClosed", err)
	}
}
