package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMetaCommands grows a single-process cluster by a second meta member
// started with --meta-join, lists the members, then removes the original
// member, which leads: the new one takes the group over.
func TestMetaCommands(t *testing.T) {
	ports := freePorts(t, 4)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	rpc1, raft1, rpc2, raft2 := addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	base := t.TempDir()
	n1 := startProc(t, "n1", "serve", "--local", "--node-id", "n1", "--dir", filepath.Join(base, "n1"),
		"--rpc-addr", rpc1, "--raft-addr", raft1, "--gossip-addr", "off")
	n1.waitReady(t, 60*time.Second)

	members := func(at string) ([]metaMemberJSON, string) {
		r := runBin(t, 30*time.Second, "meta", "members", "--json", "--timeout", "5s", "--addr", at)
		if r.code != 0 {
			return nil, strings.TrimSpace(r.stderr)
		}
		var ms []metaMemberJSON
		if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
			t.Fatalf("meta members --json is not JSON: %v\n%s", err, r.stdout)
		}
		return ms, ""
	}
	waitMembers := func(at string, want ...uint64) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("members %v", want), func() string {
			ms, why := members(at)
			if why != "" {
				return why
			}
			var ids []uint64
			for _, m := range ms {
				if !m.Reachable || !m.Voting || m.RPCAddr == "" {
					return fmt.Sprintf("member %+v not up yet", m)
				}
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, want) {
				return fmt.Sprintf("members %v", ids)
			}
			return ""
		})
	}
	waitMembers(rpc1, 1)

	r := runBin(t, 30*time.Second, "meta", "add", "2", raft2, "--addr", rpc1)
	if r.code != 0 || !strings.Contains(r.stdout, "added meta member 2 at "+raft2) || !strings.Contains(r.stdout, "REACHABLE") {
		t.Fatalf("meta add: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	n2 := startProc(t, "n2", "serve", "--local", "--roles", "meta", "--node-id", "n2", "--dir", filepath.Join(base, "n2"),
		"--rpc-addr", rpc2, "--gossip-addr", "off", "--meta-join", "--meta-id", "2", "--raft-addr", raft2, "--join", rpc1)
	n2.waitReady(t, 60*time.Second)
	waitMembers(rpc1, 1, 2)

	r = runBin(t, 30*time.Second, "meta", "remove", "1", "--addr", rpc1)
	if r.code != 0 || !strings.Contains(r.stdout, "removed meta member 1") {
		t.Fatalf("meta remove 1: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	waitMembers(rpc2, 2)
	if ms, _ := members(rpc2); len(ms) != 1 || !ms[0].Leader {
		t.Fatalf("after the removal: %+v, want member 2 leading alone", ms)
	}

	r = runBin(t, 30*time.Second, "meta", "remove", "2", "--addr", rpc2)
	if r.code != 1 || !strings.Contains(r.stderr, "it is the only member") {
		t.Errorf("removing the only member: exit %d, stderr %q; want exit 1 and a refusal", r.code, r.stderr)
	}
}

// TestMetaBadCommandLines checks the usage errors of the meta commands and
// of serve --meta-join: each is one line on stderr and exit status 2.
func TestMetaBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no subcommand", []string{"meta"}, []string{"missing subcommand"}},
		{"bad ID", []string{"meta", "add", "four", "127.0.0.1:7104"}, []string{`ID "four": want a positive integer`}},
		{"zero ID", []string{"meta", "remove", "0"}, []string{`ID "0": want a positive integer`}},
		{"missing address", []string{"meta", "add", "4"}, []string{"accepts 2 arg(s), received 1"}},
		{"replace with itself", []string{"meta", "replace", "2", "2", "127.0.0.1:7102"}, []string{"NEW_ID must differ from DEAD_ID"}},
		{"join without ID or address", []string{"serve", "--dir", dir, "--meta-join"},
			[]string{"--meta-id is required with --meta-join", "--raft-addr is required with --meta-join"}},
		{"join with members", []string{"serve", "--dir", dir, "--meta-join", "--meta-id", "4", "--raft-addr", "127.0.0.1:7104",
			"--meta-members", "1=127.0.0.1:7101"}, []string{"--meta-join and --meta-members exclude each other"}},
		{"join without the meta role", []string{"serve", "--dir", dir, "--roles", "data", "--join", "127.0.0.1:7001", "--meta-join",
			"--meta-id", "4", "--raft-addr", "127.0.0.1:7104"}, []string{"--meta-join needs the meta role"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBin(t, 30*time.Second, c.args...)
			if r.code != 2 || r.stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 2 and nothing", r.code, r.stdout)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(c.want), r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	got := dryRun(t, "--dir", dir, "--meta-join", "--meta-id", "4", "--raft-addr", "127.0.0.1:7104")
	if got["meta-join"] != true || got["meta-id"] != 4.0 || got["raft-addr"] != "127.0.0.1:7104" {
		t.Errorf("dry run: meta-join %v, meta-id %v, raft-addr %v", got["meta-join"], got["meta-id"], got["raft-addr"])
	}
}
