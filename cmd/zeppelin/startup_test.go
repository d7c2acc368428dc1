package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// singleArgs are the flags of a one-process cluster on free loopback ports.
func singleArgs(t *testing.T, dir, nodeID string) []string {
	ports := freePorts(t, 2)
	return []string{"serve", "--local", "--dir", dir, "--node-id", nodeID,
		"--rpc-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--gossip-addr", fmt.Sprintf("127.0.0.1:%d", ports[1])}
}

// wantOneLine checks a failed start: exit status 1 and exactly one line on
// stderr containing every want.
func wantOneLine(t *testing.T, r cliResult, want ...string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "zeppelin: ") {
		t.Errorf("stderr is not one line starting with \"zeppelin: \":\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q: %s", w, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// TestStartupErrors covers the start-up errors that need a running
// process: a locked directory, a directory of another node and ports in
// use.
func TestStartupErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	first := startProc(t, "first", singleArgs(t, dir, "a")...)
	first.waitReady(t, 30*time.Second)

	t.Run("locked directory", func(t *testing.T) {
		r := runBin(t, 30*time.Second, singleArgs(t, dir, "a")...)
		wantOneLine(t, r, "data directory is in use by another process", dir)
	})

	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		busy := ln.Addr().String()
		for _, flag := range []string{"--rpc-addr", "--gossip-addr", "--resp-addr", "--raft-addr"} {
			args := append(singleArgs(t, filepath.Join(t.TempDir(), "b"), "b"), flag, busy)
			r := runBin(t, 30*time.Second, args...)
			wantOneLine(t, r, busy, "address already in use")
		}
		// A start that could not bind its RPC port has not claimed the
		// directory: it can be started under another node ID.
		fresh := filepath.Join(t.TempDir(), "c")
		r := runBin(t, 30*time.Second, append(singleArgs(t, fresh, "c"), "--rpc-addr", busy)...)
		wantOneLine(t, r, busy, "address already in use")
		if _, err := os.Stat(filepath.Join(fresh, "IDENTITY")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed start recorded an identity: %v", err)
		}
	})

	// Stop the first process cleanly, then start its directory under
	// another node ID.
	first.signal(t, syscall.SIGTERM)
	if code := first.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("first process exited with %d after SIGTERM", code)
	}
	t.Run("directory of another node", func(t *testing.T) {
		r := runBin(t, 30*time.Second, singleArgs(t, dir, "b")...)
		wantOneLine(t, r, "data directory belongs to another node", `holds node "a", configured as "b"`)
	})
}
