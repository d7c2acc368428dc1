package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCluster is three "zeppelin serve" processes on one machine, each a
// meta member, a data node and a RESP listener.
type testCluster struct {
	procs []*proc
	rpc   []string
	resp  []string
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	const n = 3
	ports := freePorts(t, 4*n)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	c := &testCluster{}
	var members, join []string
	for i := range n {
		c.rpc = append(c.rpc, addr(ports[4*i]))
		c.resp = append(c.resp, addr(ports[4*i+3]))
		members = append(members, fmt.Sprintf("%d=%s", i+1, addr(ports[4*i+2])))
		join = append(join, c.rpc[i])
	}
	base := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		c.procs = append(c.procs, startProc(t, name, "serve", "--local",
			"--node-id", name, "--dir", filepath.Join(base, name),
			"--rpc-addr", c.rpc[i], "--gossip-addr", addr(ports[4*i+1]), "--resp-addr", c.resp[i], "--resp-table", "t",
			"--meta-id", fmt.Sprint(i+1), "--meta-members", strings.Join(members, ","), "--join", strings.Join(join, ",")))
	}
	for i, p := range c.procs {
		f := p.waitReady(t, 60*time.Second)
		if f["rpc"] != c.rpc[i] || f["resp"] != c.resp[i] || f["node"] != p.name || f["roles"] != "meta,data" {
			t.Fatalf("%s ready line: %v", p.name, f)
		}
	}
	return c
}

// admin runs an admin command against member i and fails the test unless
// it succeeds.
func (c *testCluster) admin(t *testing.T, i int, args ...string) string {
	t.Helper()
	r := runBin(t, 30*time.Second, append(args, "--addr", c.rpc[i])...)
	if r.code != 0 {
		t.Fatalf("zeppelin %s --addr %s: exit %d: %s", strings.Join(args, " "), c.rpc[i], r.code, r.stderr)
	}
	return r.stdout
}

// status returns "zeppelin status --json" asked through member i, or why
// it could not.
func (c *testCluster) status(t *testing.T, i int) (statusJSON, string) {
	t.Helper()
	var st statusJSON
	r := runBin(t, 30*time.Second, "status", "--json", "--timeout", "3s", "--addr", c.rpc[i])
	if r.code != 0 {
		return st, "status: " + strings.TrimSpace(r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r.stdout)
	}
	return st, ""
}

// unhealthy says why table is not fully replicated and caught up in st,
// or returns "".
func unhealthy(st statusJSON, table string) string {
	for _, n := range st.Nodes {
		if n.State != "up" {
			return fmt.Sprintf("node %s is %s", n.ID, n.State)
		}
	}
	for _, tbl := range st.Tables {
		if tbl.Name != table {
			continue
		}
		for _, p := range tbl.Partitions {
			if p.Master == "" || len(p.Slaves) != tbl.Replication-1 {
				return fmt.Sprintf("partition %d: master %q, slaves %v", p.ID, p.Master, p.Slaves)
			}
			var master *replicaJSON
			for i, r := range p.Replicas {
				if r.Node == p.Master && r.Role == "master" {
					master = &p.Replicas[i]
				}
			}
			if master == nil {
				return fmt.Sprintf("partition %d: master %s has not reported as master yet", p.ID, p.Master)
			}
			for _, r := range p.Replicas {
				if r.Node == p.Master {
					continue
				}
				if r.Role != "slave" || r.State != "streaming" || r.Incomplete || r.Seq != master.Seq || r.Gen != master.Gen {
					return fmt.Sprintf("partition %d: slave %s is %s/%s at (%d, %d), master at (%d, %d)",
						p.ID, r.Node, r.Role, r.State, r.Gen, r.Seq, master.Gen, master.Seq)
				}
			}
		}
		return ""
	}
	return "no table " + table
}

// waitHealthy waits until, seen through member i, every node is up and
// every partition of table has all its replicas with their slaves caught
// up.
func (c *testCluster) waitHealthy(t *testing.T, i int, table string, d time.Duration) statusJSON {
	t.Helper()
	var st statusJSON
	waitFor(t, d, "table "+table+" healthy", func() string {
		var why string
		if st, why = c.status(t, i); why != "" {
			return why
		}
		return unhealthy(st, table)
	})
	return st
}

// redisCLI runs redis-cli against addr with the script on stdin.
func redisCLI(t *testing.T, addr, script string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	r := runTool(t, 120*time.Second, script, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	if r.code != 0 {
		t.Fatalf("redis-cli %v: exit %d: %s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestThreeProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-process cluster")
	}
	c := startCluster(t)

	t.Run("admin", func(t *testing.T) {
		out := c.admin(t, 0, "table", "create", "t", "--partitions", "8", "--replication", "3")
		if !strings.Contains(out, "created table t") {
			t.Errorf("table create printed %q", out)
		}
		// A minimum in-sync set outside 1..replication is refused before
		// anything is sent; a sync table is created fenced.
		for _, bad := range []string{"0", "4"} {
			if r := runBin(t, 30*time.Second, "table", "create", "bad", "--mode", "sync", "--min-in-sync", bad, "--addr", c.rpc[1]); r.code != 2 || !strings.Contains(r.stderr, "outside 1..3") {
				t.Errorf("table create --min-in-sync %s: exit %d, stderr %q", bad, r.code, r.stderr)
			}
		}
		var sv tableJSON
		out = c.admin(t, 1, "table", "create", "s", "--partitions", "4", "--mode", "sync", "--min-in-sync", "2", "--json")
		if err := json.Unmarshal([]byte(out), &sv); err != nil || sv.Mode != "sync" || !sv.Fenced || sv.MinInSync != 2 {
			t.Errorf("table create --mode sync: %v %+v\n%s", err, sv, out)
		}
		if out := c.admin(t, 0, "table", "alter", "s", "--mode", "async"); !strings.Contains(out, "altered table s: 4 partitions, replication 3, async") {
			t.Errorf("table alter --mode async printed %q", out)
		}
		if r := runBin(t, 30*time.Second, "table", "alter", "s", "--min-in-sync", "2", "--addr", c.rpc[0]); r.code != 1 || !strings.Contains(r.stderr, "sync tables only") {
			t.Errorf("table alter --min-in-sync on an async table: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := runBin(t, 30*time.Second, "table", "alter", "nosuch", "--mode", "sync", "--addr", c.rpc[0]); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("table alter of a missing table: exit %d, stderr %q", r.code, r.stderr)
		}
		if out := c.admin(t, 2, "table", "alter", "s", "--mode", "sync", "--min-in-sync", "3"); !strings.Contains(out, "sync (min in-sync 3), fenced") {
			t.Errorf("table alter --mode sync printed %q", out)
		}
		c.admin(t, 0, "table", "drop", "s")
		out = c.admin(t, 1, "table", "create", "t2", "--partitions", "4", "--replication", "2", "--fenced", "--json")
		var tv tableJSON
		if err := json.Unmarshal([]byte(out), &tv); err != nil || tv.Name != "t2" || tv.Mode != "async" || !tv.Fenced || tv.PartitionCount != 4 {
			t.Errorf("table create --json: %v %+v\n%s", err, tv, out)
		}

		var tables []tableJSON
		if err := json.Unmarshal([]byte(c.admin(t, 2, "table", "list", "--json")), &tables); err != nil || len(tables) != 2 || tables[0].Name != "t" || tables[0].Replication != 3 {
			t.Errorf("table list --json through n3: %v %+v", err, tables)
		}
		if out := c.admin(t, 0, "table", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "t2") {
			t.Errorf("table list:\n%s", out)
		}
		var nodes []nodeJSON
		if err := json.Unmarshal([]byte(c.admin(t, 1, "nodes", "--json")), &nodes); err != nil || len(nodes) != 3 {
			t.Fatalf("nodes --json: %v %+v", err, nodes)
		}
		for i, n := range nodes {
			if n.ID != fmt.Sprintf("n%d", i+1) || n.State != "up" || n.Addr != c.rpc[i] || n.Replicas < 8 {
				t.Errorf("node %d: %+v", i, n)
			}
		}

		st := c.waitHealthy(t, 2, "t", 30*time.Second)
		if len(st.Members) != 3 || st.LeaderID == 0 || st.Epoch == 0 {
			t.Errorf("status: members %+v leader %d epoch %d", st.Members, st.LeaderID, st.Epoch)
		}
		for _, n := range st.Nodes {
			if n.HeartbeatAgeMs == nil || *n.HeartbeatAgeMs < 0 || *n.HeartbeatAgeMs > 5000 {
				t.Errorf("node %s heartbeat age %v", n.ID, n.HeartbeatAgeMs)
			}
		}
		human := c.admin(t, 0, "status")
		for _, want := range []string{"meta leader", "HEARTBEAT", "table t", "table t2", "(GEN, SEQ)", " 0/0ms"} {
			if !strings.Contains(human, want) {
				t.Errorf("status lacks %q:\n%s", want, human)
			}
		}
		if r := runBin(t, 30*time.Second, "table", "create", "t", "--addr", c.rpc[1]); r.code != 1 || !strings.Contains(r.stderr, "already exists") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("creating an existing table: exit %d, stderr %q", r.code, r.stderr)
		}
		c.admin(t, 0, "table", "create", "scratch", "--partitions", "2", "--replication", "1")
		if out := c.admin(t, 1, "table", "drop", "scratch"); out != "dropped table scratch\n" {
			t.Errorf("table drop printed %q", out)
		}
		if out := c.admin(t, 2, "table", "list"); strings.Contains(out, "scratch") {
			t.Errorf("dropped table still listed:\n%s", out)
		}
		if r := runBin(t, 30*time.Second, "status", "--table", "nope", "--addr", c.rpc[1]); r.code != 1 || !strings.Contains(r.stderr, "table not found") {
			t.Errorf("status of a missing table: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("set and get through different members", func(t *testing.T) {
		for i := range 12 {
			if out := c.admin(t, i%3, "set", "t", fmt.Sprintf("cli:%d", i), fmt.Sprintf("value %d", i)); out != "OK\n" {
				t.Errorf("set printed %q", out)
			}
		}
		for i := range 12 {
			if out := c.admin(t, (i+1)%3, "get", "t", fmt.Sprintf("cli:%d", i)); out != fmt.Sprintf("value %d\n", i) {
				t.Errorf("get cli:%d through n%d: %q", i, (i+1)%3+1, out)
			}
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(c.admin(t, 2, "get", "t", "cli:3", "--json")), &got); err != nil || got["value"] != "value 3" || got["found"] != true {
			t.Errorf("get --json: %v %v", err, got)
		}
		if out := c.admin(t, 1, "del", "t", "cli:0", "cli:1", "cli:none"); out != "2\n" {
			t.Errorf("del printed %q, want 2", out)
		}
		r := runBin(t, 30*time.Second, "get", "t", "cli:0", "--addr", c.rpc[2])
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `key "cli:0" not found`) {
			t.Errorf("get of a deleted key: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, 30*time.Second, "set", "t", "cli:2", "x", "--nx", "--addr", c.rpc[0])
		if r.code != 1 || !strings.Contains(r.stderr, "not written") {
			t.Errorf("set --nx of an existing key: exit %d stderr %q", r.code, r.stderr)
		}
	})

	t.Run("bench", func(t *testing.T) {
		for _, args := range [][]string{
			{"bench", "--table", "benchtab", "-t", "set,get,incr,mset", "-n", "400", "-c", "4", "--json"},
			{"bench", "--resp", c.resp[1], "-t", "set,get,incr,mset", "-n", "400", "-c", "4", "-P", "8", "--json"},
		} {
			var out struct {
				Results []benchResult `json:"results"`
			}
			if err := json.Unmarshal([]byte(c.admin(t, 0, args...)), &out); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if len(out.Results) != 4 {
				t.Fatalf("%v: %d results, want 4", args, len(out.Results))
			}
			for _, r := range out.Results {
				if r.Requests != 400 || r.Errors != 0 || r.OpsPerSec <= 0 || r.P50Ms > r.P99Ms || r.P99Ms > r.MaxMs {
					t.Errorf("%v: %+v", args, r)
				}
			}
		}
		if out := c.admin(t, 2, "bench", "-t", "get", "-n", "100", "-c", "2", "--table", "benchtab"); !strings.Contains(out, "P99.9") {
			t.Errorf("bench table output:\n%s", out)
		}
	})

	haveRedisCLI := true
	if _, err := exec.LookPath("redis-cli"); err != nil {
		haveRedisCLI = false
	}

	t.Run("redis-cli session", func(t *testing.T) {
		if !haveRedisCLI {
			t.Skip("redis-cli is not installed (apt-get install redis-tools); CI installs it")
		}
		testRedisCLISession(t, c)
	})

	t.Run("redis-cli pipe", func(t *testing.T) {
		if !haveRedisCLI {
			t.Skip("redis-cli is not installed (apt-get install redis-tools); CI installs it")
		}
		testRedisPipe(t, c)
	})

	t.Run("SIGTERM and restart", func(t *testing.T) {
		p := c.procs[2]
		start := time.Now()
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t, 15*time.Second); code != 0 {
			t.Fatalf("%s exited with %d after SIGTERM", p.name, code)
		}
		took := time.Since(start)
		t.Logf("%s stopped in %v", p.name, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("%s took %v to stop cleanly", p.name, took)
		}
		if !strings.Contains(p.stderr.String(), "stopped cleanly") {
			t.Errorf("%s did not log a clean stop", p.name)
		}
		// The cluster goes on without it.
		c.admin(t, 0, "set", "t", "while-n3-down", "yes")
		c.procs[2] = p.restart(t)
		c.procs[2].waitReady(t, 60*time.Second)
		c.waitHealthy(t, 0, "t", 30*time.Second)
		if out := c.admin(t, 2, "get", "t", "while-n3-down"); out != "yes\n" {
			t.Errorf("get through the restarted member: %q", out)
		}
		if out := c.admin(t, 2, "get", "t", "cli:5"); out != "value 5\n" {
			t.Errorf("get through the restarted member: %q", out)
		}
	})

	t.Run("kill -9 during redis-benchmark", func(t *testing.T) {
		if _, err := exec.LookPath("redis-benchmark"); err != nil || !haveRedisCLI {
			t.Skip("redis-benchmark or redis-cli is not installed (apt-get install redis-tools); CI installs them")
		}
		testKillDuringBenchmark(t, c)
	})

	t.Run("full restart keeps the data", func(t *testing.T) {
		for _, p := range c.procs {
			p.signal(t, syscall.SIGTERM)
		}
		for i, p := range c.procs {
			if code := p.wait(t, 15*time.Second); code != 0 {
				t.Fatalf("%s exited with %d after SIGTERM", p.name, code)
			}
			c.procs[i] = p.restart(t)
		}
		for _, p := range c.procs {
			p.waitReady(t, 60*time.Second)
		}
		c.waitHealthy(t, 1, "t", 30*time.Second)
		for i := 2; i < 12; i += 3 {
			if out := c.admin(t, i%3, "get", "t", fmt.Sprintf("cli:%d", i)); out != fmt.Sprintf("value %d\n", i) {
				t.Errorf("after a full restart, cli:%d = %q", i, out)
			}
		}
		if haveRedisCLI {
			checkBulk(t, c.resp[2], 0, pipeKeys, 1000)
		}
	})
}
