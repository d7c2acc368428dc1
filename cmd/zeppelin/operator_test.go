package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVersion checks that "zeppelin --version" and "zeppelin version"
// print the build of the binary.
func TestVersion(t *testing.T) {
	flag := runBin(t, 30*time.Second, "--version")
	cmd := runBin(t, 30*time.Second, "version")
	if flag.code != 0 || cmd.code != 0 || flag.stderr != "" || cmd.stderr != "" {
		t.Fatalf("--version: exit %d, stderr %q; version: exit %d, stderr %q", flag.code, flag.stderr, cmd.code, cmd.stderr)
	}
	if flag.stdout != cmd.stdout || strings.Count(flag.stdout, "\n") != 1 {
		t.Errorf("--version printed %q, version %q: want the same line", flag.stdout, cmd.stdout)
	}
	var v versionJSON
	r := runBin(t, 30*time.Second, "version", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("version --json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if v.Module != "github.com/zeppelin-kv/zeppelin" || v.Version == "" || v.Version == "unknown" || v.Go != runtime.Version() {
		t.Errorf("version --json: %+v", v)
	}
	for _, want := range []string{"zeppelin " + v.Version + " ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(cmd.stdout, want) {
			t.Errorf("version printed %q, which lacks %q", cmd.stdout, want)
		}
	}
	if v.Revision != "" && !strings.Contains(cmd.stdout, "revision "+v.Revision[:12]) {
		t.Errorf("version printed %q, which lacks the revision of %+v", cmd.stdout, v)
	}
}

// startServer starts one "zeppelin serve" process, a complete one-node
// cluster with RESP and HTTP listeners, and returns it with its RPC, RESP
// and HTTP addresses.
func startServer(t *testing.T) (p *proc, rpcAddr, respAddr, httpAddr string) {
	t.Helper()
	ports := freePorts(t, 3)
	rpcAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	respAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	httpAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	p = startProc(t, "n1", "serve", "--local", "--node-id", "n1", "--dir", filepath.Join(t.TempDir(), "n1"),
		"--rpc-addr", rpcAddr, "--gossip-addr", "off", "--resp-addr", respAddr, "--http-addr", httpAddr)
	p.waitReady(t, 60*time.Second)
	return p, rpcAddr, respAddr, httpAddr
}

// wantLines checks that r exited with code and printed nothing on stdout
// and exactly the lines want on stderr.
func wantLines(t *testing.T, what string, r cliResult, code int, want ...string) {
	t.Helper()
	if got := strings.TrimRight(r.stderr, "\n"); r.code != code || r.stdout != "" || got != strings.Join(want, "\n") {
		t.Errorf("%s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and stderr:\n%s", what, r.code, r.stdout, r.stderr, code, strings.Join(want, "\n"))
	}
}

// TestOperatorCommands runs the commands an operator types against a
// one-process cluster: wrong addresses, node states, table names, errors
// said once, the key-value commands with --json, and bench's progress.
func TestOperatorCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a zeppelin process")
	}
	_, rpcAddr, respAddr, httpAddr := startServer(t)
	dead := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	run := func(args ...string) cliResult {
		t.Helper()
		return runBin(t, 60*time.Second, append(args, "--addr", rpcAddr)...)
	}

	t.Run("wrong addresses", func(t *testing.T) {
		resp := respAddr + " answered like a Redis server (RESP), not a Zeppelin RPC port; use redis-cli there or give the RPC address (zeppelin serve --rpc-addr)"
		http := httpAddr + " answered like an HTTP server, not a Zeppelin RPC port; give the RPC address (zeppelin serve --rpc-addr)"
		refused := "cannot connect to " + dead + ": connection refused"
		// A listener that hangs up on every connection at once.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				nc.Close()
			}
		}()
		hangUp := ln.Addr().String() + " closed the connection without answering the Zeppelin hello (not a Zeppelin RPC port?)"
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"table", "list", "--addr", dead}, []string{refused}},
			{[]string{"get", "t", "k", "--addr", dead}, []string{refused}},
			{[]string{"set", "t", "k", "v", "--addr", dead}, []string{refused}},
			{[]string{"get", "t", "k", "--addr", respAddr}, []string{resp}},
			{[]string{"status", "--addr", httpAddr}, []string{http}},
			{[]string{"bench", "-n", "10", "--addr", httpAddr}, []string{http}},
			{[]string{"nodes", "--addr", dead + "," + respAddr}, []string{refused, resp}},
			{[]string{"migrations", "--addr", ln.Addr().String()}, []string{hangUp}},
		} {
			start := time.Now()
			// A --timeout far longer than the wait: a wrong address must not
			// cost it.
			r := runBin(t, 60*time.Second, append(c.args, "--timeout", "30s")...)
			took := time.Since(start)
			want := make([]string, len(c.want))
			for i, w := range c.want {
				want[i] = "zeppelin: " + w
			}
			wantLines(t, strings.Join(c.args, " "), r, 1, want...)
			if took > 3*time.Second {
				t.Errorf("%s took %v", strings.Join(c.args, " "), took)
			}
		}
		// With --json the error is JSON too, with the same exit status.
		r := runBin(t, 60*time.Second, "table", "list", "--json", "--addr", dead)
		var e map[string]string
		if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || r.code != 1 || e["error"] != refused || r.stdout != "" {
			t.Errorf("table list --json of a dead address: exit %d, stdout %q, stderr %q (%v)", r.code, r.stdout, r.stderr, err)
		}
	})

	t.Run("a draining node", func(t *testing.T) {
		if out := run("node", "drain", "n1"); out.code != 0 || !strings.Contains(out.stdout, "n1 is draining and holds no replica") {
			t.Fatalf("node drain: exit %d\n%s%s", out.code, out.stdout, out.stderr)
		}
		var nodes []nodeJSON
		if err := json.Unmarshal([]byte(run("nodes", "--json").stdout), &nodes); err != nil || len(nodes) != 1 || nodes[0].State != "draining" {
			t.Errorf("nodes --json of a draining node: %v %+v", err, nodes)
		}
		if out := run("nodes").stdout; !strings.Contains(out, " draining ") {
			t.Errorf("nodes of a draining node:\n%s", out)
		}
		if out := run("status").stdout; !strings.Contains(out, " draining ") {
			t.Errorf("status of a draining node:\n%s", out)
		}
		run("node", "undrain", "n1")
		if err := json.Unmarshal([]byte(run("nodes", "--json").stdout), &nodes); err != nil || len(nodes) != 1 || nodes[0].State != "up" {
			t.Errorf("nodes --json after undrain: %v %+v", err, nodes)
		}
	})

	t.Run("table names", func(t *testing.T) {
		for _, name := range []string{"users", "1", "orders-2024.v2", "_x"} {
			if r := run("table", "create", name, "--partitions", "2", "--replication", "1"); r.code != 0 {
				t.Errorf("table create %s: exit %d: %s", name, r.code, r.stderr)
			}
		}
		for _, c := range []struct{ name, why string }{
			{"my table", `' ' is not allowed (use letters, digits, '_', '-' and '.')`},
			{"a/b", `'/' is not allowed`},
			{"-x", `starts with '-' (start with a letter, a digit or '_')`},
			{strings.Repeat("t", 65), "longer than 64 characters"},
		} {
			r := runBin(t, 60*time.Second, "table", "create", "--partitions", "2", "--replication", "1", "--addr", rpcAddr, "--", c.name)
			want := fmt.Sprintf("zeppelin: create table %s: invalid argument: invalid table name %q: %s", c.name, c.name, c.why)
			if r.code != 1 || !strings.HasPrefix(strings.TrimSpace(r.stderr), want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("table create %q: exit %d, stderr %q; want exit 1 and %q", c.name, r.code, r.stderr, want)
			}
		}
		if r := run("table", "create", "--help"); !strings.Contains(r.stdout, "1 to 64 ASCII letters, digits, '_', '-' and '.'") {
			t.Errorf("table create --help does not give the rule for names:\n%s", r.stdout)
		}
	})

	t.Run("errors said once", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"table", "create", "users"}, `create table users: table "users" already exists`},
			{[]string{"table", "drop", "nosuch"}, `drop table nosuch: table "nosuch" does not exist`},
			{[]string{"table", "create", "big", "--partitions", "100000"}, "create table big: invalid argument: partitions must be within 1..65536, got 100000"},
			{[]string{"table", "alter", "users", "--min-in-sync", "1"}, "alter table users: invalid argument: min in-sync applies to sync tables only"},
			{[]string{"migrate", "users", "0", "n1", "n9"}, "migrate table users partition 0 from n1 to n9: unknown node n9"},
			{[]string{"migrate", "cancel", "99"}, "cancel migration 99: no migration 99"},
			{[]string{"node", "drain", "n9"}, "drain node n9: unknown node n9"},
		} {
			wantLines(t, strings.Join(c.args, " "), run(c.args...), 1, "zeppelin: "+c.want)
		}
	})

	t.Run("key-value commands", func(t *testing.T) {
		ok := func(want string, args ...string) {
			t.Helper()
			if r := run(args...); r.code != 0 || r.stdout != want || r.stderr != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), r.code, r.stdout, r.stderr, want)
			}
		}
		ok("OK\n", "set", "users", "alice", "42")
		ok("none\n", "ttl", "users", "alice")
		ok("OK\n", "expire", "users", "alice", "90")
		if r := run("ttl", "users", "alice"); r.code != 0 || !strings.HasPrefix(r.stdout, "1m") {
			t.Errorf("ttl after expire 90: exit %d, stdout %q", r.code, r.stdout)
		}
		var kv map[string]any
		if err := json.Unmarshal([]byte(run("ttl", "users", "alice", "--json").stdout), &kv); err != nil ||
			kv["expires"] != true || kv["ttl_ms"].(float64) < 80_000 || kv["ttl_ms"].(float64) > 90_000 {
			t.Errorf("ttl --json: %v %v", err, kv)
		}
		ok("OK\n", "expire", "users", "alice", "--persist")
		ok("none\n", "ttl", "users", "alice")
		ok("OK (the key had no expiry)\n", "expire", "users", "alice", "--persist")
		ok("42\n", "get", "users", "alice")
		wantLines(t, "expire 0", run("expire", "users", "alice", "0"), 2,
			`zeppelin: DURATION "0" must be positive ("zeppelin del" deletes a key, --persist removes its expiry) (see 'zeppelin expire --help')`)
		wantLines(t, "expire of a missing key", run("expire", "users", "nobody", "1h"), 1, `zeppelin: key "nobody" not found in table users`)
		wantLines(t, "ttl of a missing key", run("ttl", "users", "nobody"), 1, `zeppelin: key "nobody" not found in table users`)

		ok("43\n", "incr", "users", "alice")
		ok("53\n", "incr", "users", "alice", "--by", "10")
		ok("-1\n", "incr", "users", "fresh", "--by", "-1")
		kv = nil
		if err := json.Unmarshal([]byte(run("incr", "users", "alice", "--json").stdout), &kv); err != nil || kv["value"] != 54.0 || kv["key"] != "alice" {
			t.Errorf("incr --json: %v %v", err, kv)
		}
		ok("OK\n", "set", "users", "word", "hello")
		wantLines(t, "incr of a word", run("incr", "users", "word"), 1, `zeppelin: incr users "word": value is not an integer`)

		ok("OK\n", "mset", "users", "a", "1", "b", "two words", "bin", "\xff\xfe")
		wantLines(t, "mset with a key alone", run("mset", "users", "a", "1", "b"), 2,
			"zeppelin: want TABLE and KEY VALUE pairs, got 4 argument(s) (see 'zeppelin mset --help')")
		ok("KEY      VALUE\na        1\nb        two words\nbin      \"\\xff\\xfe\"\nmissing  (nil)\n", "mget", "users", "a", "b", "bin", "missing")
		var mg mgetJSON
		if err := json.Unmarshal([]byte(run("mget", "users", "a", "bin", "missing", "--json").stdout), &mg); err != nil || len(mg.Results) != 3 {
			t.Fatalf("mget --json: %v %+v", err, mg)
		}
		a, bin, missing := mg.Results[0], mg.Results[1], mg.Results[2]
		if *a.Key != "a" || !*a.Found || *a.Value != "1" || a.ValueBase64 != nil ||
			*bin.Key != "bin" || bin.Value != nil || *bin.ValueBase64 != "//4=" ||
			*missing.Key != "missing" || *missing.Found || missing.Value != nil || missing.ValueBase64 != nil {
			t.Errorf("mget --json: %s", run("mget", "users", "a", "bin", "missing", "--json").stdout)
		}
		kv = nil // Unmarshal would merge into the map of ttl --json
		if err := json.Unmarshal([]byte(run("get", "users", "bin", "--json").stdout), &kv); err != nil || kv["value_base64"] != "//4=" || kv["found"] != true {
			t.Errorf("get --json of a binary value: %v %v", err, kv)
		}
		if _, ok := kv["value"]; ok {
			t.Errorf("get --json of a binary value has a value field: %v", kv)
		}
		if r := run("get", "users", "bin"); r.stdout != "\xff\xfe\n" {
			t.Errorf("get of a binary value printed %q", r.stdout)
		}

		countOf := func() int {
			t.Helper()
			r := run("count", "users")
			n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
			if r.code != 0 || err != nil || n <= 0 {
				t.Fatalf("count users: %+v", r)
			}
			return n
		}
		before := countOf()
		ok("OK\n", "set", "users", "count-probe", "x")
		if n := countOf(); n != before+1 {
			t.Errorf("count after one more key: %d, want %d", n, before+1)
		}
		var cj struct {
			Table string `json:"table"`
			Keys  int    `json:"keys"`
		}
		if err := json.Unmarshal([]byte(run("count", "users", "--json").stdout), &cj); err != nil || cj.Table != "users" || cj.Keys != before+1 {
			t.Errorf("count --json: %v %+v", err, cj)
		}

		// --json errors: JSON on stderr, the same exit status.
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"get", "users", "nobody", "--json"}, 1, `key "nobody" not found in table users`},
			{[]string{"incr", "users", "word", "--json"}, 1, `incr users "word": value is not an integer`},
			{[]string{"expire", "users", "alice", "0s", "--json"}, 2, `DURATION "0s" must be positive ("zeppelin del" deletes a key, --persist removes its expiry) (see 'zeppelin expire --help')`},
			{[]string{"get", "nosuch", "k", "--json"}, 1, `get nosuch "k": table not found: nosuch`},
		} {
			r := run(c.args...)
			var e map[string]string
			if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || r.code != c.code || e["error"] != c.want || len(e) != 1 {
				t.Errorf("%s: exit %d, stderr %q (%v); want exit %d and {\"error\": %q}", strings.Join(c.args, " "), r.code, r.stderr, err, c.code, c.want)
			}
		}
	})

	t.Run("bench progress", func(t *testing.T) {
		r := run("bench", "--table", "users", "-t", "set", "-n", "10000", "-c", "2", "--progress", "50ms")
		if r.code != 0 || !strings.Contains(r.stdout, "P99.9") || strings.Contains(r.stdout, "so far") {
			t.Fatalf("bench: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		var lines []string
		for _, l := range nonEmptyLines(r.stderr) {
			if strings.HasPrefix(l, "bench set: ") && strings.Contains(l, "/10000 requests, ") && strings.Contains(l, " ops/s so far") {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 || strings.Contains(r.stderr, "\r") {
			t.Errorf("bench --progress 50ms printed no progress lines:\n%s", r.stderr)
		}
		t.Logf("%d progress lines, the first: %s", len(lines), lines[0])
	})
}

// TestServeRESPMetrics checks that the RESP front end's figures are on
// "zeppelin serve"'s /metrics.
func TestServeRESPMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a zeppelin process")
	}
	_, rpcAddr, respAddr, httpAddr := startServer(t)
	runBin(t, 60*time.Second, "table", "create", "default", "--partitions", "2", "--replication", "1", "--addr", rpcAddr)
	nc, err := net.Dial("tcp", respAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("PING\r\nNOSUCH\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	got := ""
	for !strings.Contains(got, "unknown command") {
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("read the replies: %v (got %q)", err, got)
		}
		got += string(buf[:n])
	}
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`zeppelin_resp_commands_total{command="ping"} 1`, `zeppelin_resp_commands_total{command="unknown"} 1`,
		"zeppelin_resp_connections 1", "zeppelin_resp_pipeline_runs_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
