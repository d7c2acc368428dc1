package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testRedisCLISession runs a scripted redis-cli session against one
// member's RESP port and reads the results through another's.
func testRedisCLISession(t *testing.T, c *testCluster) {
	// Each step is a command and the regular expressions its reply lines
	// must match (redis-cli --no-raw formatting).
	steps := []struct {
		cmd  string
		want []string
	}{
		{"PING", []string{`PONG`}},
		{"ECHO hello", []string{`"hello"`}},
		{"WAIT 1 0", []string{`\(integer\) 0`}}, // nothing written yet
		{"SET user:1 alice", []string{`OK`}},
		{"WAIT 2 10000", []string{`\(integer\) 2`}},
		{"WAIT 3 200", []string{`\(integer\) 2`}}, // replication 3: two slaves
		{"WAIT two 0", []string{`\(error\) ERR value is not an integer or out of range`}},
		{"WAIT 1 -1", []string{`\(error\) ERR timeout is negative`}},
		{"GET user:1", []string{`"alice"`}},
		{"SET user:1 bob XX GET", []string{`"alice"`}},
		{"SET user:1 carol NX", []string{`\(nil\)`}},
		{"INCR visits", []string{`\(integer\) 1`}},
		{"INCRBY visits 41", []string{`\(integer\) 42`}},
		{"DECR visits", []string{`\(integer\) 41`}},
		{"INCR user:1", []string{`\(error\) ERR value is not an integer or out of range`}},
		{"MSET a 1 b 2 {tag}c 3", []string{`OK`}},
		{"MGET a b nope {tag}c user:1", []string{`1\) "1"`, `2\) "2"`, `3\) \(nil\)`, `4\) "3"`, `5\) "bob"`}},
		{"EXISTS a b nope", []string{`\(integer\) 2`}},
		{"DEL a nope", []string{`\(integer\) 1`}},
		{"EXPIRE user:1 100", []string{`\(integer\) 1`}},
		{"TTL user:1", []string{`\(integer\) (99|100)`}},
		{"PERSIST user:1", []string{`\(integer\) 1`}},
		{"TTL user:1", []string{`\(integer\) -1`}},
		{"TTL nope", []string{`\(integer\) -2`}},
		{"SET temp x PX 60000", []string{`OK`}},
		{"PTTL temp", []string{`\(integer\) [1-6][0-9]{4}`}},
		{"SELECT nope", []string{`\(error\) ERR table 'nope' does not exist`}},
		{"SELECT t2", []string{`OK`}},
		{"GET user:1", []string{`\(nil\)`}},
		{"SET user:1 other-table", []string{`OK`}},
		{"SELECT t", []string{`OK`}},
		{"GET user:1", []string{`"bob"`}},
	}
	var script strings.Builder
	var want []*regexp.Regexp
	var cmdOf []string
	for _, s := range steps {
		script.WriteString(s.cmd + "\n")
		for _, w := range s.want {
			want = append(want, regexp.MustCompile("^"+w+"$"))
			cmdOf = append(cmdOf, s.cmd)
		}
	}
	out := redisCLI(t, c.resp[0], script.String(), "--no-raw")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, w := range want {
		if i >= len(lines) {
			t.Fatalf("session output ends after %d lines, before the reply to %q:\n%s", len(lines), cmdOf[i], out)
		}
		if !w.MatchString(lines[i]) {
			t.Errorf("%s: got %q, want %s", cmdOf[i], lines[i], w)
		}
	}
	if len(lines) > len(want) {
		t.Errorf("session printed %d extra lines:\n%s", len(lines)-len(want), out)
	}

	// Another member's RESP port sees the same data, in both tables.
	if got := redisCLI(t, c.resp[1], "", "--no-raw", "MGET", "user:1", "visits", "temp"); got != "1) \"bob\"\n2) \"41\"\n3) \"x\"\n" {
		t.Errorf("MGET through n2: %q", got)
	}
	if got := redisCLI(t, c.resp[2], "SELECT t2\nGET user:1\n", "--no-raw"); got != "OK\n\"other-table\"\n" {
		t.Errorf("t2 through n3: %q", got)
	}
	// And so does the smart client.
	if out := c.admin(t, 2, "get", "t", "visits"); out != "41\n" {
		t.Errorf("zeppelin get visits: %q", out)
	}
}

// pipeKeys is the number of keys loaded with redis-cli --pipe.
const pipeKeys = 100_000

func bulkKey(i int) string   { return fmt.Sprintf("bulk:%06d", i) }
func bulkValue(i int) string { return fmt.Sprintf("value-%06d", i) }

// pipeStreams is the number of concurrent redis-cli --pipe processes the
// bulk load is split across: the RESP front end runs the commands of one
// connection one after the other, so a single stream is bound by the
// round trip of one write.
const pipeStreams = 8

// testRedisPipe bulk-loads keys through one member's RESP port with
// redis-cli --pipe and reads every one back through another's.
func testRedisPipe(t *testing.T, c *testCluster) {
	host, port, _ := strings.Cut(c.resp[0], ":")
	type result struct {
		out string
		err error
	}
	results := make(chan result, pipeStreams)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	for s := range pipeStreams {
		var proto bytes.Buffer
		for i := s; i < pipeKeys; i += pipeStreams {
			k, v := bulkKey(i), bulkValue(i)
			fmt.Fprintf(&proto, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		}
		go func() {
			cmd := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "--pipe")
			cmd.Stdin = &proto
			out, err := cmd.CombinedOutput()
			results <- result{string(out), err}
		}()
	}
	for range pipeStreams {
		r := <-results
		if r.err != nil || !strings.Contains(r.out, fmt.Sprintf("errors: 0, replies: %d", pipeKeys/pipeStreams)) {
			t.Fatalf("redis-cli --pipe: %v: %s", r.err, r.out)
		}
	}
	t.Logf("%d redis-cli --pipe streams loaded %d keys in %v", pipeStreams, pipeKeys, time.Since(start).Round(time.Millisecond))

	// Every key, through another member, in MGETs of 1,000 keys.
	start = time.Now()
	checkBulk(t, c.resp[1], 0, pipeKeys, 1)
	t.Logf("read %d keys back through n2 in %v", pipeKeys, time.Since(start).Round(time.Millisecond))
	// A sample through the third member and the smart client.
	for _, i := range []int{0, 1, 4242, 55_555, pipeKeys - 1} {
		if got := redisCLI(t, c.resp[2], "", "GET", bulkKey(i)); got != bulkValue(i)+"\n" {
			t.Errorf("GET %s through n3: %q", bulkKey(i), got)
		}
	}
	if out := c.admin(t, 2, "get", "t", bulkKey(77_777)); out != bulkValue(77_777)+"\n" {
		t.Errorf("zeppelin get %s: %q", bulkKey(77_777), out)
	}
}

// checkBulk reads the bulk keys [from, to) (every step-th one) through
// addr with MGET and checks every value and the count.
func checkBulk(t *testing.T, addr string, from, to, step int) {
	t.Helper()
	var script strings.Builder
	var want []string
	for lo := from; lo < to; lo += 1000 * step {
		script.WriteString("MGET")
		for i := lo; i < min(lo+1000*step, to); i += step {
			script.WriteString(" " + bulkKey(i))
			want = append(want, bulkValue(i))
		}
		script.WriteString("\n")
	}
	out := redisCLI(t, addr, script.String(), "--raw")
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("MGET through %s returned %d values, want %d", addr, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad < 5 {
				t.Errorf("value %d through %s: got %q, want %q", i, addr, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d values wrong", bad, len(want))
	}
}

// benchmark is a running redis-benchmark.
type benchmark struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startBenchmark starts redis-benchmark against addr; it is killed when
// the test ends.
func startBenchmark(t *testing.T, addr string, args ...string) *benchmark {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithCancel(context.Background())
	b := &benchmark{out: &syncBuffer{}, done: make(chan struct{})}
	b.cmd = exec.CommandContext(ctx, "redis-benchmark", append([]string{"-h", host, "-p", port}, args...)...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("redis-benchmark: %v", err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// wait waits up to d for redis-benchmark to finish and returns its output
// and exit error. redis-benchmark (7.0 and later) stops at the first error
// reply and exits with status 1.
func (b *benchmark) wait(t *testing.T, d time.Duration) (string, error) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(d):
		t.Fatalf("redis-benchmark did not finish within %v:\n%s", d, lastLines(b.out.String(), 20))
	}
	return b.out.String(), b.err
}

// csvResults returns the tests redis-benchmark --csv reported, with their
// requests per second.
func csvResults(out string) map[string]string {
	res := map[string]string{}
	for _, l := range nonEmptyLines(out) {
		f := strings.Split(l, ",")
		if len(f) > 2 && strings.HasPrefix(f[0], `"`) && f[0] != `"test"` {
			res[strings.Trim(f[0], `"`)] = strings.Trim(f[1], `"`)
		}
	}
	return res
}

// errorLines returns redis-benchmark's error reports.
func errorLines(out string) []string {
	var errs []string
	for _, l := range nonEmptyLines(out) {
		if strings.Contains(l, "Error") || strings.Contains(l, "ERR") {
			errs = append(errs, l)
		}
	}
	return errs
}

// totalSeq sums the masters' seqs of table in st: it grows with every
// write.
func totalSeq(st statusJSON, table string) uint64 {
	var n uint64
	for _, tbl := range st.Tables {
		if tbl.Name != table {
			continue
		}
		for _, p := range tbl.Partitions {
			for _, r := range p.Replicas {
				if r.Node == p.Master {
					n += r.Seq
				}
			}
		}
	}
	return n
}

// testKillDuringBenchmark kills -9 one member while redis-benchmark loads
// another's RESP port: after failover the load succeeds again, and the
// killed member, restarted with the same flags, rejoins and catches up.
func testKillDuringBenchmark(t *testing.T, c *testCluster) {
	const target = 1 // n2's RESP port takes the load
	st, why := c.status(t, target)
	if why != "" {
		t.Fatal(why)
	}
	// Kill the meta leader unless it is the target: that also tests the
	// meta group's failover.
	victim := int(st.LeaderID) - 1
	if victim == target || victim < 0 || victim > 2 {
		victim = 0
	}
	masters := 0
	for _, tbl := range st.Tables {
		for _, p := range tbl.Partitions {
			if tbl.Name == "t" && p.Master == c.procs[victim].name {
				masters++
			}
		}
	}
	t.Logf("killing %s (meta leader %d, master of %d partitions of t) under load on %s", c.procs[victim].name, st.LeaderID, masters, c.resp[target])

	base := totalSeq(st, "t")
	bench := startBenchmark(t, c.resp[target], "-t", "set,get", "-n", "40000", "-c", "20", "-r", "100000", "-d", "100", "--csv")
	waitFor(t, 30*time.Second, "the benchmark to write", func() string {
		st, why := c.status(t, target)
		if why != "" {
			return why
		}
		if n := totalSeq(st, "t"); n < base+2000 {
			return fmt.Sprintf("%d writes so far", n-base)
		}
		return ""
	})
	c.procs[victim].kill()
	killed := time.Now()

	// Failover: a surviving member reports the victim down and no
	// partition mastered by it.
	survivor := 3 - target - victim
	waitFor(t, 30*time.Second, "failover", func() string {
		st, why := c.status(t, survivor)
		if why != "" {
			return why
		}
		for _, n := range st.Nodes {
			if n.ID == c.procs[victim].name && n.State != "down" {
				return "victim still " + n.State
			}
		}
		for _, tbl := range st.Tables {
			for _, p := range tbl.Partitions {
				if p.Master == c.procs[victim].name || p.Master == "" {
					return fmt.Sprintf("%s partition %d master %q", tbl.Name, p.ID, p.Master)
				}
			}
		}
		return ""
	})
	t.Logf("failover done %v after the kill", time.Since(killed).Round(time.Millisecond))

	// The first run finishes. A request that failed in the failover window
	// stops it early (redis-benchmark exits at the first error reply), so
	// only its end is asserted.
	out, err := bench.wait(t, 120*time.Second)
	t.Logf("redis-benchmark during the kill: exit %v, results %v, errors %q", err, csvResults(out), errorLines(out))

	// After failover every request succeeds.
	out, err = startBenchmark(t, c.resp[target], "-t", "set,get", "-n", "5000", "-c", "20", "-r", "100000", "-d", "100", "--csv").wait(t, 60*time.Second)
	res := csvResults(out)
	if err != nil || res["SET"] == "" || res["GET"] == "" {
		t.Errorf("redis-benchmark after failover: exit %v, results %v:\n%s", err, res, out)
	}
	if errs := errorLines(out); len(errs) > 0 {
		t.Errorf("redis-benchmark after failover: %d errors, first: %s", len(errs), errs[0])
	}
	t.Logf("redis-benchmark after failover: %v", res)
	var script, want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&script, "SET after-kill:%d %d\n", i, i)
		want.WriteString("OK\n")
	}
	if got := redisCLI(t, c.resp[survivor], script.String(), "--raw"); got != want.String() {
		t.Errorf("SETs through %s after failover:\n%s", c.resp[survivor], got)
	}
	script.Reset()
	want.Reset()
	script.WriteString("MGET")
	for i := range 100 {
		fmt.Fprintf(&script, " after-kill:%d", i)
		fmt.Fprintf(&want, "%d\n", i)
	}
	if got := redisCLI(t, c.resp[target], script.String()+"\n", "--raw"); got != want.String() {
		t.Errorf("MGET through %s after failover:\n%s", c.resp[target], got)
	}

	// The killed member comes back with the same flags, rejoins and its
	// replicas catch up.
	c.procs[victim] = c.procs[victim].restart(t)
	c.procs[victim].waitReady(t, 60*time.Second)
	start := time.Now()
	c.waitHealthy(t, target, "t", 60*time.Second)
	t.Logf("%s rejoined and caught up %v after it was ready", c.procs[victim].name, time.Since(start).Round(time.Millisecond))
	if got := redisCLI(t, c.resp[victim], "", "--raw", "GET", "after-kill:42"); got != "42\n" {
		t.Errorf("GET through the restarted member: %q", got)
	}
}
