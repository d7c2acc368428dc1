package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1048576},
		{"50MB", 50_000_000},
		{"50mb", 50_000_000},
		{"50M", 50_000_000},
		{"1GiB", 1 << 30},
		{"1gi", 1 << 30},
		{"500k", 500_000},
		{"500K", 500_000},
		{"64KiB", 64 << 10},
		{"2TB", 2_000_000_000_000},
		{"1.5MiB", 3 << 19},
		{"0.5k", 500},
		{" 10 MB ", 10_000_000},
		{"50MB/s", 50_000_000},
		{"12B", 12},
	}
	for _, c := range cases {
		if got, err := parseByteSize(c.in); err != nil || got != c.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "garbage", "MB", "-5", "5 XB", "1.2.3k", "5ib", "1e3", "99999999999TB", "k500"} {
		if got, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", in, got)
		} else if !strings.Contains(err.Error(), "50MB, 1GiB, 500k") {
			t.Errorf("parseByteSize(%q): error %q does not show the accepted forms", in, err)
		}
	}
}

func TestHumanBytesAndDurations(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 20 << 20: "20.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{-time.Second: "0s", 400 * time.Millisecond: "0.4s", 12 * time.Second: "12s",
		200 * time.Second: "3m20s", 125 * time.Minute: "2h05m"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// batchOf builds a summary of total moves of which done are done and the
// rest copying, each with copied of size bytes.
func batchOf(total, done int, copied, size int64) client.BatchProgress {
	p := client.BatchProgress{Total: total, Done: done}
	for i := done; i < total; i++ {
		p.Running = append(p.Running, client.Migration{ID: uint64(i + 1), State: placement.MigrationCopying, CopiedBytes: copied, TotalBytes: size, LagRecords: 7, CopyRate: 1 << 20})
		p.CopiedBytes += copied
		p.TotalBytes += size
		p.CopyRate += 1 << 20
		p.LagRecords = 7
	}
	return p
}

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	pr := newProgress(&out, false, "batch 7", clk.now)
	pr.update(batchOf(2, 0, 0, 4<<20))
	clk.advance(500 * time.Millisecond)
	pr.update(batchOf(2, 0, 1<<20, 4<<20)) // copy moved on, but within a second: no line
	clk.advance(700 * time.Millisecond)
	pr.update(batchOf(2, 0, 2<<20, 4<<20)) // a second since the last line: a line
	clk.advance(2 * time.Second)
	pr.update(batchOf(2, 0, 2<<20, 4<<20)) // nothing new: no line
	clk.advance(100 * time.Millisecond)
	pr.update(batchOf(2, 1, 3<<20, 4<<20)) // a move finished: a line at once
	clk.advance(100 * time.Millisecond)
	failed := client.BatchProgress{Total: 2, Done: 1, Failed: 1}
	pr.update(failed)
	pr.end()

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		"batch 7 [0.0s] 0/2 moves done; 2 copying; copied 0 B of 8.0 MiB; lag 7 records; 2.0 MiB/s; ETA 4.0s",
		"batch 7 [1.2s] 0/2 moves done; 2 copying; copied 4.0 MiB of 8.0 MiB; lag 7 records; 2.0 MiB/s; ETA 2.0s",
		"batch 7 [3.3s] 1/2 moves done; 1 copying; copied 3.0 MiB of 4.0 MiB; lag 7 records; 1.0 MiB/s; ETA 1.0s",
		"batch 7 [3.4s] 1/2 moves done, 1 failed",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("plain progress:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("plain progress redraws lines: %q", out.String())
	}
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	pr := newProgress(&out, true, "batch 7", clk.now)
	pr.update(batchOf(4, 0, 1<<20, 4<<20))
	clk.advance(300 * time.Millisecond)
	pr.update(batchOf(4, 1, 2<<20, 4<<20))
	clk.advance(300 * time.Millisecond)
	pr.update(client.BatchProgress{Total: 4, Done: 4})
	pr.end()

	s := out.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("terminal progress should be one line redrawn, ended by one newline: %q", s)
	}
	draws := strings.Split(strings.TrimPrefix(strings.TrimSuffix(s, "\n"), "\r"), "\r")
	want := []string{
		"batch 7 [#####---------------] 0/4 moves  4.0 MiB/16.0 MiB  lag 7  4.0 MiB/s  ETA 3.0s  0.0s",
		"batch 7 [############--------] 1/4 moves  6.0 MiB/12.0 MiB  lag 7  3.0 MiB/s  ETA 2.0s  0.3s",
		"batch 7 [####################] 4/4 moves  0.6s",
	}
	if len(draws) != len(want) {
		t.Fatalf("%d draws, want %d: %q", len(draws), len(want), s)
	}
	for i, w := range want {
		if strings.TrimRight(draws[i], " ") != w {
			t.Errorf("draw %d:\n%q\nwant\n%q", i, draws[i], w)
		}
	}
	// A shorter line blanks what is left of the longer one before it.
	if len(draws[2]) != len(draws[1]) {
		t.Errorf("the last draw is %d wide, want %d (padded over the previous one)", len(draws[2]), len(draws[1]))
	}
	if bar := progressBar(batchOf(1, 0, 10, 10), 10); bar != "[#########-]" {
		t.Errorf("bar of an unfinished move that copied everything: %s, want it short of full", bar)
	}
}

func TestWriteMigrations(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := []migrationJSON{
		{ID: 12, Batch: 3, Table: "t", Partition: 1, From: "n1", To: "n4", State: "copying", Created: now.Add(-12 * time.Second),
			CopiedBytes: 1 << 20, TotalBytes: 4 << 20, LagRecords: 120, CopyRate: 3 << 20},
		{ID: 13, Table: "t", Partition: 2, To: "n4", State: "failed", Created: now.Add(-200 * time.Second), Error: "target down"},
	}
	var out bytes.Buffer
	if err := writeMigrations(&out, ms, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"ID", "BATCH", "TABLE/PART", "FROM → TO", "STATE", "COPIED", "LAG", "RATE", "AGE", "ERROR"},
		{"12", "3", "t/1", "n1 → n4", "copying", "1.0 MiB/4.0 MiB", "120", "3.0 MiB/s", "12s", "-"},
		{"13", "-", "t/2", "- → n4", "failed", "-", "-", "-", "3m20s", "target down"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %s", i, w, lines[i])
			}
		}
	}
}

// migrationsJSON returns "zeppelin migrations --all --json" through addr.
func migrationsJSON(t *testing.T, c *testCluster) []migrationJSON {
	t.Helper()
	var ms []migrationJSON
	if err := json.Unmarshal([]byte(c.admin(t, 0, "migrations", "--all", "--json")), &ms); err != nil {
		t.Fatalf("migrations --json: %v", err)
	}
	return ms
}

// nodesJSON returns "zeppelin nodes --json" by node ID.
func nodesJSON(t *testing.T, c *testCluster) map[string]nodeJSON {
	t.Helper()
	var ns []nodeJSON
	if err := json.Unmarshal([]byte(c.admin(t, 1, "nodes", "--json")), &ns); err != nil {
		t.Fatalf("nodes --json: %v", err)
	}
	out := make(map[string]nodeJSON)
	for _, n := range ns {
		out[n.ID] = n
	}
	return out
}

// replicasOf returns the nodes holding a replica of partition p, sorted.
func replicasOf(p partitionJSON) []string {
	return slices.Sorted(slices.Values(append([]string{p.Master}, p.Slaves...)))
}

// placementOf returns, for each partition of table in st, the nodes
// holding its replicas. It leaves out which of them is the master: the
// meta leader may move master roles on its own to keep them balanced.
func placementOf(st statusJSON, table string) []string {
	var out []string
	for _, tbl := range st.Tables {
		if tbl.Name == table {
			for _, p := range tbl.Partitions {
				out = append(out, fmt.Sprintf("%d:%s", p.ID, strings.Join(replicasOf(p), ",")))
			}
		}
	}
	return out
}

// wantRefused checks a command that must fail: exit code code and one
// line on stderr, starting with "zeppelin: " and containing want.
func wantRefused(t *testing.T, r cliResult, code int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code != code || len(lines) != 1 || !strings.HasPrefix(lines[0], "zeppelin: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", r.code, r.stderr, code, want)
	}
}

// TestMigrateCommands moves replicas of a table with replication 2 on a
// three-process cluster, one at a time and by rebalancing onto a fourth,
// data-only process, which it then drains and removes.
func TestMigrateCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-process cluster")
	}
	c := startCluster(t)
	c.admin(t, 0, "table", "create", "mv", "--partitions", "4", "--replication", "2")
	c.waitHealthy(t, 0, "mv", 30*time.Second)
	c.admin(t, 0, "bench", "--table", "mv", "-t", "set", "-n", "2000", "-c", "4", "-r", "500")
	c.admin(t, 0, "set", "mv", "before-the-moves", "kept")
	st := c.waitHealthy(t, 0, "mv", 30*time.Second)
	// outsider returns a node holding no replica of partition p.
	outsider := func(p partitionJSON) string {
		for _, n := range []string{"n1", "n2", "n3"} {
			if n != p.Master && !slices.Contains(p.Slaves, n) {
				return n
			}
		}
		t.Fatalf("partition %d is on every node", p.ID)
		return ""
	}
	parts := st.Tables[0].Partitions

	t.Run("bad input", func(t *testing.T) {
		p := parts[0]
		run := func(args ...string) cliResult {
			return runBin(t, 30*time.Second, append(args, "--addr", c.rpc[1])...)
		}
		wantRefused(t, run("migrate", "mv", "0", p.Master, p.Slaves[0]), 1, "already holds a replica of table mv partition 0")
		wantRefused(t, run("migrate", "mv", "0", p.Master, "n9"), 1, "unknown node n9")
		wantRefused(t, run("migrate", "mv", "4", p.Master, outsider(p)), 1, "table mv has 4 partitions, no partition 4")
		wantRefused(t, run("migrate", "mv", "0", p.Master, outsider(p), "--rate", "fast"), 2, `invalid argument "fast" for "--rate"`)
		wantRefused(t, run("migrate", "mv", "zero", p.Master, outsider(p)), 2, `PARTITION "zero"`)
		wantRefused(t, run("node", "weight", "n1", "0"), 2, "want an integer from 1 to 1000")
		wantRefused(t, run("migrate", "cancel", "7", "--batch", "7"), 2, "not both or neither")
		wantRefused(t, run("rebalance", "--dry-run", "--wait"), 2, "nothing to --wait for")
		wantRefused(t, run("node", "drain", "n9"), 1, "unknown node n9")
	})

	t.Run("migrate a slave and a master", func(t *testing.T) {
		slave := parts[0]
		r := runBin(t, 60*time.Second, "migrate", "mv", "0", slave.Slaves[0], outsider(slave), "--wait", "--rate", "50MB", "--addr", c.rpc[0])
		if r.code != 0 || !strings.Contains(r.stdout, "done after") || !strings.Contains(r.stderr, "1/1 moves done") {
			t.Fatalf("migrate --wait of a slave: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		master := parts[1]
		var mj migrationJSON
		out := c.admin(t, 2, "migrate", "mv", "1", master.Master, outsider(master), "--wait", "--json")
		if err := json.Unmarshal([]byte(out), &mj); err != nil || mj.State != "done" || mj.From != master.Master || mj.To != outsider(master) {
			t.Fatalf("migrate --wait --json of a master: %v %+v\n%s", err, mj, out)
		}
		ms := migrationsJSON(t, c)
		if len(ms) != 2 || ms[0].State != "done" || ms[0].To != outsider(slave) || ms[1].ID != mj.ID || ms[1].State != "done" ||
			ms[0].RateLimit != 50_000_000 || ms[1].Created.IsZero() || ms[1].Updated.Before(ms[1].Created) {
			t.Errorf("migrations --all --json: %+v", ms)
		}
		if out := c.admin(t, 1, "migrations"); !strings.Contains(out, "no migrations running") {
			t.Errorf("migrations with nothing running:\n%s", out)
		}
		st := c.waitHealthy(t, 0, "mv", 30*time.Second)
		if got := replicasOf(st.Tables[0].Partitions[1]); !slices.Contains(got, outsider(master)) || slices.Contains(got, master.Master) {
			t.Errorf("after moving the master of partition 1 from %s to %s: replicas on %v", master.Master, outsider(master), got)
		}
	})

	t.Run("cancel a move being waited for", func(t *testing.T) {
		st := c.waitHealthy(t, 0, "mv", 30*time.Second)
		p := st.Tables[0].Partitions[2]
		// At 1 kB/s the copy takes far longer than the test.
		w := startProc(t, "migrate --wait", "migrate", "mv", "2", p.Slaves[0], outsider(p), "--wait", "--rate", "1k", "--addr", c.rpc[0])
		var id uint64
		waitFor(t, 30*time.Second, "the move copying", func() string {
			for _, m := range migrationsJSON(t, c) {
				if m.Partition == 2 && m.State == "copying" {
					id = m.ID
					return ""
				}
			}
			return "not copying yet"
		})
		if out := c.admin(t, 1, "migrate", "cancel", fmt.Sprint(id)); !strings.Contains(out, fmt.Sprintf("cancelled migration %d", id)) {
			t.Errorf("migrate cancel printed %q", out)
		}
		if code := w.wait(t, 30*time.Second); code != 1 || !strings.Contains(w.stderr.String(), fmt.Sprintf("migration %d cancelled", id)) {
			t.Errorf("migrate --wait of a cancelled move: exit %d, stderr:\n%s", code, w.stderr.String())
		}
		wantRefused(t, runBin(t, 30*time.Second, "migrate", "cancel", fmt.Sprint(id), "--addr", c.rpc[2]), 1, "has already finished")
		c.waitHealthy(t, 0, "mv", 30*time.Second)
	})

	t.Run("rebalance, drain and remove a new node", func(t *testing.T) {
		before, _ := c.status(t, 0)
		moves := len(migrationsJSON(t, c))
		out := c.admin(t, 0, "rebalance", "--dry-run")
		if !strings.Contains(out, "dry run: nothing changed") || !strings.Contains(out, "imbalance after") {
			t.Errorf("rebalance --dry-run:\n%s", out)
		}

		ports := freePorts(t, 1)
		n4 := startProc(t, "n4", "serve", "--local", "--roles", "data", "--node-id", "n4", "--dir", filepath.Join(t.TempDir(), "n4"),
			"--rpc-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--gossip-addr", "off", "--join", strings.Join(c.rpc, ","))
		n4.waitReady(t, 60*time.Second)
		waitFor(t, 30*time.Second, "n4 up", func() string {
			if n, ok := nodesJSON(t, c)["n4"]; !ok || n.State != "up" {
				return fmt.Sprintf("n4: %+v", n)
			}
			return ""
		})

		var plan planJSON
		if err := json.Unmarshal([]byte(c.admin(t, 1, "rebalance", "--dry-run", "--json")), &plan); err != nil || plan.ReplicaMoves == 0 || len(plan.Moves) == 0 {
			t.Fatalf("rebalance --dry-run --json with an empty node: %v %+v", err, plan)
		}
		text := c.admin(t, 2, "rebalance", "--dry-run")
		if !strings.Contains(text, "0 -> ") || !strings.Contains(text, "n4") || !strings.Contains(text, "TABLE/PART") {
			t.Errorf("rebalance --dry-run with an empty node:\n%s", text)
		}
		after, _ := c.status(t, 0)
		if !slices.Equal(placementOf(before, "mv"), placementOf(after, "mv")) || len(migrationsJSON(t, c)) != moves || nodesJSON(t, c)["n4"].Replicas != 0 {
			t.Fatalf("rebalance --dry-run changed the placement: %v, then %v", placementOf(before, "mv"), placementOf(after, "mv"))
		}

		r := runBin(t, 60*time.Second, "rebalance", "--wait", "--rate", "200k", "--addr", c.rpc[1])
		if r.code != 0 || !strings.Contains(r.stdout, "finished in") {
			t.Fatalf("rebalance --wait: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		var progress []string
		for _, l := range nonEmptyLines(r.stderr) {
			if strings.HasPrefix(l, "rebalance batch ") && strings.Contains(l, "moves done") {
				progress = append(progress, l)
			}
		}
		if len(progress) < 2 || !strings.Contains(progress[len(progress)-1], fmt.Sprintf("%d/%d moves done", plan.ReplicaMoves, plan.ReplicaMoves)) || strings.Contains(r.stderr, "\r") {
			t.Errorf("rebalance --wait progress (plan: %d replica moves):\n%s", plan.ReplicaMoves, r.stderr)
		}
		onto4 := 0
		for _, mv := range plan.Moves {
			if mv.Kind == "add" && mv.To == "n4" {
				onto4++
			}
		}
		if n := nodesJSON(t, c)["n4"]; onto4 == 0 || n.Replicas != onto4 {
			t.Errorf("after the rebalance n4 holds %d replicas, want the %d the plan put there", n.Replicas, onto4)
		}

		wantRefused(t, runBin(t, 30*time.Second, "node", "remove", "n4", "--addr", c.rpc[0]), 1, "drain it first")

		var drain nodeChangeJSON
		out = c.admin(t, 2, "node", "drain", "n4", "--wait", "--json")
		if err := json.Unmarshal([]byte(out), &drain); err != nil || drain.Batch == 0 || drain.Outcome == nil || drain.Outcome.Done != onto4 || drain.Outcome.Failed != 0 {
			t.Fatalf("node drain --wait --json: %v\n%s", err, out)
		}
		if n := nodesJSON(t, c)["n4"]; n.Replicas != 0 {
			t.Fatalf("after the drain n4 holds %d replicas", n.Replicas)
		}
		if out := c.admin(t, 0, "node", "remove", "n4"); !strings.Contains(out, "removed node n4") {
			t.Errorf("node remove printed %q", out)
		}
		n4.kill()
		if _, ok := nodesJSON(t, c)["n4"]; ok {
			t.Errorf("n4 is still listed after its removal")
		}
		c.waitHealthy(t, 0, "mv", 30*time.Second)
		if out := c.admin(t, 1, "get", "mv", "before-the-moves"); out != "kept\n" {
			t.Errorf("a key written before the moves reads %q after them", out)
		}
	})
}
