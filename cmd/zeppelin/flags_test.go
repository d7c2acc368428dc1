package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadCommandLines runs the binary with bad flags and bad settings:
// each problem is one line on stderr, nothing else is printed, and the
// exit status is 2.
func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string // one substring per expected stderr line
	}{
		{"unknown flag", []string{"serve", "--bogus"}, []string{"unknown flag: --bogus"}},
		{"bad durability", []string{"serve", "--durability", "sometimes"}, []string{`invalid argument "sometimes" for "--durability"`}},
		{"bad duration", []string{"serve", "--heartbeat-interval", "often"}, []string{`"--heartbeat-interval"`}},
		{"bad meta members", []string{"serve", "--meta-members", "1=a:1,x=b:2"}, []string{`"x=b:2": the ID must be a positive integer`}},
		{"bad size", []string{"serve", "--max-value-size", "big"}, []string{`--max-value-size`}},
		{"bad role", []string{"serve", "--dir", dir, "--roles", "meta,cache"}, []string{`--roles: unknown role "cache"`}},
		{"bad address", []string{"serve", "--dir", dir, "--rpc-addr", "nowhere"}, []string{`--rpc-addr "nowhere"`}},
		{"data-only without join", []string{"serve", "--dir", dir, "--roles", "data"}, []string{"a data-only process needs --join addresses"}},
		{"several problems at once", []string{"serve", "--dir", dir, "--meta-members", "1=127.0.0.1:7101,2=127.0.0.1:7102", "--weight", "0", "--down-timeout", "2s"},
			[]string{"--weight must be at least 1", "--meta-id is required when --meta-members is set", "the meta group needs 1, 3 or 5 members", "must not exceed --down-timeout"}},
		{"unexpected argument", []string{"serve", "now"}, []string{`unknown command "now"`}},
		{"bad node admission", []string{"serve", "--dir", dir, "--node-admission", "anyone"}, []string{`node admission "anyone": want open or admin-approved`}},
		{"approve without node", []string{"node", "approve"}, []string{"accepts 1 arg(s), received 0"}},
		{"missing table name", []string{"table", "create"}, []string{"accepts 1 arg(s), received 0"}},
		{"bad mode", []string{"table", "create", "t", "--mode", "eventual"}, []string{`invalid argument "eventual" for "--mode"`}},
		{"get without key", []string{"get", "t"}, []string{"accepts 2 arg(s), received 1"}},
		{"bench unknown test", []string{"bench", "-t", "set,lpush"}, []string{`unknown test "lpush"`}},
		{"missing config file", []string{"serve", "--config", filepath.Join(dir, "nope.json")}, []string{"config file: open"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBin(t, 30*time.Second, c.args...)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2", r.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(c.want), r.stderr)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "zeppelin: ") {
					t.Errorf("line %q does not start with \"zeppelin: \"", l)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// dryRun runs "serve --dry-run" and decodes the effective settings.
func dryRun(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := runBin(t, 30*time.Second, append([]string{"serve", "--dry-run"}, args...)...)
	if r.code != 0 {
		t.Fatalf("serve --dry-run %v: exit %d: %s", args, r.code, r.stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("dry-run output is not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "zeppelin.json"), `{
		"node-id": "n2",
		"dir": "`+filepath.Join(dir, "n2")+`",
		"rpc-addr": "127.0.0.1:7002",
		"gossip-addr": "off",
		"roles": ["meta", "data"],
		"meta-id": 2,
		"meta-members": {"1": "127.0.0.1:7101", "2": "127.0.0.1:7102", "3": "127.0.0.1:7103"},
		"join": ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
		"zone": "z1",
		"weight": 3,
		"durability": "always",
		"binlog-max-bytes": "32MiB",
		"binlog-solo-max-bytes": "4MiB",
		"max-value-size": 1048576,
		"heartbeat-interval": "150ms",
		"local": true,
		"resp-addr": "127.0.0.1:6380",
		"log-format": "json"
	}`)

	got := dryRun(t, "--config", file)
	want := map[string]any{
		"node-id": "n2", "rpc-addr": "127.0.0.1:7002", "gossip-addr": "off", "meta-id": 2.0,
		"zone": "z1", "weight": 3.0, "durability": "always", "binlog-max-bytes": "32MiB", "binlog-solo-max-bytes": "4MiB",
		"memory-budget":  "128MiB",
		"max-value-size": "1MiB", "heartbeat-interval": "150ms", "local": true,
		"resp-addr": "127.0.0.1:6380", "log-format": "json",
		// --local gives the fast down timeout of DefaultLocalConfig.
		"down-timeout": "1s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if mm, _ := json.Marshal(got["meta-members"]); string(mm) != `{"1":"127.0.0.1:7101","2":"127.0.0.1:7102","3":"127.0.0.1:7103"}` {
		t.Errorf("meta-members = %s", mm)
	}

	t.Run("flags override the file", func(t *testing.T) {
		got := dryRun(t, "--config", file, "--weight", "5", "--durability", "none", "--join", "127.0.0.1:9999")
		if got["weight"] != 5.0 || got["durability"] != "none" {
			t.Errorf("weight %v durability %v, want the flags' 5 and none", got["weight"], got["durability"])
		}
		if j, _ := json.Marshal(got["join"]); string(j) != `["127.0.0.1:9999"]` {
			t.Errorf("join = %s, want the flag's list", j)
		}
		if got["zone"] != "z1" {
			t.Errorf("zone %v: settings not given as flags must come from the file", got["zone"])
		}
	})

	t.Run("dry-run output is a config file", func(t *testing.T) {
		b, _ := json.Marshal(got)
		again := dryRun(t, "--config", writeFile(t, filepath.Join(dir, "again.json"), string(b)))
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Errorf("settings changed through a round trip:\n%s\n%s", b, b2)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		got := dryRun(t)
		for k, v := range map[string]any{
			"rpc-addr": ":7070", "gossip-addr": ":7946", "durability": "interval", "down-timeout": "5s",
			"heartbeat-interval": "1s", "dir": "zeppelin-data",
		} {
			if got[k] != v {
				t.Errorf("default %s = %v, want %v", k, got[k], v)
			}
		}
	})

	bad := []struct {
		name, content string
		want          []string
	}{
		{"unknown setting", `{"node-id": "x", "colour": "blue", "sped": 3}`, []string{`unknown setting "colour"`, `unknown setting "sped"`}},
		{"bad value", `{"durability": "sometimes"}`, []string{`invalid value "sometimes" for "durability"`}},
		{"syntax error", "{\n  \"node-id\": \"x\",\n  \"dir\" \"y\"\n}", []string{"line 3"}},
		{"not an object", `["node-id"]`, []string{"not a JSON object"}},
		{"null", `{"dir": null}`, []string{`"dir": null is not a value`}},
		{"invalid settings", `{"meta-members": "1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103"}`, []string{"--meta-id is required"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, "bad.json"), c.content)
			r := runBin(t, 30*time.Second, "serve", "--dry-run", "--config", path)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2", r.code)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != len(c.want) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(c.want), r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestHelp checks that --help documents every flag of serve with its
// default.
func TestHelp(t *testing.T) {
	r := runBin(t, 30*time.Second, "serve", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"--node-id", "--dir", "--rpc-addr", "--raft-addr", "--gossip-addr", "--resp-addr", "--advertise-addr",
		"--roles", "--meta-id", "--meta-members", "--join", "--zone", "--rack", "--host", "--weight",
		"--durability", "--binlog-max-bytes", "--max-value-size", "--heartbeat-interval", "--down-timeout",
		"--master-lease", "--local", "--resp-table", "--log-level", "--log-format", "--config",
		`(default ":7070")`, "(default interval)", "(default 5s)", `(default "default")`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	r = runBin(t, 30*time.Second, "--help")
	for _, cmd := range []string{"serve", "table", "nodes", "status", "get", "set", "del", "bench"} {
		if !strings.Contains(r.stdout, "  "+cmd+" ") {
			t.Errorf("zeppelin --help lacks command %q:\n%s", cmd, r.stdout)
		}
	}
}

// TestReadCacheFlag checks --read-cache's three forms and a bad one.
func TestReadCacheFlag(t *testing.T) {
	for arg, want := range map[string]string{"off": "off", "auto": "auto", "64MiB": "64MiB", "OFF": "off"} {
		if got := dryRun(t, "--local", "--read-cache", arg)["read-cache"]; got != want {
			t.Errorf("--read-cache %s: dry run shows %v, want %s", arg, got, want)
		}
	}
	if got := dryRun(t, "--local")["read-cache"]; got != "auto" {
		t.Errorf("no --read-cache: dry run shows %v, want auto", got)
	}
	r := runBin(t, 30*time.Second, "serve", "--dry-run", "--read-cache", "lots")
	if r.code == 0 || !strings.Contains(r.stderr, "read-cache") {
		t.Errorf("--read-cache lots: exit %d, stderr %q; want an error naming the flag", r.code, r.stderr)
	}
}
