package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// benchTests are the workloads bench knows, in the order it runs them.
var benchTests = []string{"set", "get", "incr", "mset"}

// msetKeys is the number of keys per MSET, as in redis-benchmark.
const msetKeys = 10

type benchOptions struct {
	co          clientOptions
	table       string
	tests       []string
	clients     int
	requests    int
	size        int
	keyspace    int
	resp        string
	pipeline    int
	partitions  int
	replication int
	// progress is how often a running test reports on stderr (0: never).
	progress time.Duration
}

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate load and report ops/s and latency percentiles",
		Long: `Generate load against a cluster and report, for each test, the throughput
and the latency percentiles p50, p90, p99 and p99.9.

By default the load goes through the smart client (native protocol, straight
to each key's master) into --table, which is created when missing. With
--resp host:port it goes through a RESP listener instead (the table is the
listener's default unless --table is given, which is SELECTed), and -P
pipelines requests there as redis-benchmark does.

Keys are key:NNNNNNNNNNNN (counter:... for incr) drawn uniformly from
-r keys; mset writes 10 keys per request.

While a test runs, a progress line on stderr every --progress (1s) gives
the requests done and the ops/s so far; the table of results (or, with
--json, the results) goes to stdout at the end.`,
		Example: `  zeppelin bench --addr 127.0.0.1:7001 -t set,get -c 50 -n 200000 -d 100 -r 100000
  zeppelin bench --resp 127.0.0.1:6381 -t set,get,incr,mset -P 16`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return o.run(c, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.table, "table", "bench", "`table` to run against")
	fs.StringSliceVarP(&o.tests, "tests", "t", []string{"set", "get"}, "tests to run: "+strings.Join(benchTests, ","))
	fs.IntVarP(&o.clients, "clients", "c", 50, "concurrent connections (workers)")
	fs.IntVarP(&o.requests, "requests", "n", 100_000, "requests per test")
	fs.IntVarP(&o.size, "data-size", "d", 100, "value size in bytes")
	fs.IntVarP(&o.keyspace, "keyspace", "r", 100_000, "number of distinct keys")
	fs.StringVar(&o.resp, "resp", "", "RESP `host:port` to load instead of the native protocol")
	fs.IntVarP(&o.pipeline, "pipeline", "P", 1, "requests pipelined per connection (with --resp)")
	fs.IntVar(&o.partitions, "partitions", 16, "partitions of the table when bench creates it")
	fs.IntVar(&o.replication, "replication", 0, "replication of the table when bench creates it (default: min(3, data nodes))")
	fs.DurationVar(&o.progress, "progress", time.Second, "report the requests done and the ops/s so far on stderr this often (0: never)")
	o.co.register(fs)
	fs.Lookup("timeout").Usage = "deadline of each request"
	return cmd
}

// benchResult is the outcome of one test.
type benchResult struct {
	Test      string  `json:"test"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
	MaxMs     float64 `json:"max_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
}

// benchConn runs requests on one connection. run performs n (≤ pipeline)
// requests of test and returns the error of each failed one; fatal is an
// error that ends the worker.
type benchConn interface {
	run(ctx context.Context, test string, n int, rnd *rand.Rand) (failed []error, fatal error)
	Close() error
}

func (o *benchOptions) run(c *cobra.Command, stdout, stderr io.Writer) error {
	for _, t := range o.tests {
		if !slices.Contains(benchTests, t) {
			return usageError{cmd: c.CommandPath(), err: fmt.Errorf("unknown test %q (want %s)", t, strings.Join(benchTests, ", "))}
		}
	}
	switch {
	case o.clients < 1 || o.requests < 1 || o.keyspace < 1 || o.pipeline < 1 || o.size < 0:
		return usageError{cmd: c.CommandPath(), err: errors.New("-c, -n, -r and -P must be at least 1, -d at least 0")}
	case o.pipeline > 1 && o.resp == "":
		return usageError{cmd: c.CommandPath(), err: errors.New("-P needs --resp: the smart client sends one request at a time per worker")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	value := bytes.Repeat([]byte("x"), o.size)
	var (
		dial   func() (benchConn, error)
		target string
	)
	if o.resp != "" {
		selectTable := ""
		if c.Flags().Changed("table") {
			selectTable = o.table
		}
		target = "RESP " + o.resp
		if selectTable != "" {
			target += " (table " + selectTable + ")"
		}
		dial = func() (benchConn, error) { return dialRESPBench(o.resp, selectTable, o.co.timeout, value, o.keyspace) }
	} else {
		cl, _, done, err := o.co.connect(stderr)
		if err != nil {
			return err
		}
		defer done()
		if err := o.ensureTable(ctx, cl, stderr); err != nil {
			return err
		}
		target = fmt.Sprintf("smart client via %s (table %s)", strings.Join(o.co.addrs, ","), o.table)
		tbl := cl.Table(o.table)
		dial = func() (benchConn, error) { return &nativeBench{t: tbl, value: value, keyspace: o.keyspace}, nil }
	}

	conns := make([]benchConn, o.clients)
	for i := range conns {
		bc, err := dial()
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return fmt.Errorf("bench: connect: %w", err)
		}
		conns[i] = bc
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	if !o.co.json {
		fmt.Fprintf(stdout, "bench: %s; %d requests per test, %d clients, pipeline %d, %d-byte values, %d keys\n",
			target, o.requests, o.clients, o.pipeline, o.size, o.keyspace)
	}
	var results []benchResult
	failed := 0
	var firstErr string
	for _, test := range benchTests {
		if !slices.Contains(o.tests, test) || ctx.Err() != nil {
			continue
		}
		r := o.runTest(ctx, conns, test, stderr)
		results = append(results, r)
		failed += r.Errors
		if firstErr == "" {
			firstErr = r.FirstErr
		}
	}
	if o.co.json {
		if err := writeJSON(stdout, map[string]any{
			"target": target, "clients": o.clients, "pipeline": o.pipeline,
			"data_size": o.size, "keyspace": o.keyspace, "results": results,
		}); err != nil {
			return err
		}
	} else {
		tw := newTab(stdout)
		fmt.Fprintln(tw, "TEST\tREQUESTS\tERRORS\tOPS/S\tP50\tP90\tP99\tP99.9\tMAX")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.3fms\t%.3fms\t%.3fms\t%.3fms\t%.3fms\n",
				r.Test, r.Requests, r.Errors, r.OpsPerSec, r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms, r.MaxMs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return exitError{code: 130, err: errors.New("bench: interrupted")}
	}
	if failed > 0 {
		return fmt.Errorf("bench: %d requests failed; first error: %s", failed, firstErr)
	}
	return nil
}

// ensureTable creates the bench table when it does not exist.
func (o *benchOptions) ensureTable(ctx context.Context, cl *client.Client, stderr io.Writer) error {
	tctx, cancel := context.WithTimeout(ctx, o.co.timeout)
	defer cancel()
	m, err := cl.Refresh(tctx)
	if err != nil {
		return o.co.failure("bench", err)
	}
	if m.Table(o.table) != nil {
		return nil
	}
	repl := o.replication
	if repl == 0 {
		up := 0
		for _, n := range m.Nodes {
			if n.State == placement.NodeUp {
				up++
			}
		}
		repl = max(1, min(3, up))
	}
	if _, err := cl.CreateTable(tctx, o.table, client.TableOptions{Partitions: o.partitions, Replication: repl}); err != nil && !errors.Is(err, client.ErrTableExists) {
		return fmt.Errorf("bench: %w", o.co.failure("create table "+o.table, err))
	}
	fmt.Fprintf(stderr, "zeppelin: bench created table %s: %d partitions, replication %d\n", o.table, o.partitions, repl)
	return nil
}

// runTest runs requests of one test on every connection and measures
// them, reporting its progress on stderr every o.progress. A pipelined
// round's latency is the round's duration, counted for each of its
// requests, as redis-benchmark does.
func (o *benchOptions) runTest(ctx context.Context, conns []benchConn, test string, stderr io.Writer) benchResult {
	var (
		claimed  atomic.Int64
		finished atomic.Int64 // requests done, failed ones included
		errCount atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	total := int64(o.requests)
	lats := make([][]time.Duration, len(conns))
	start := time.Now()
	stopProgress := func() {}
	if o.progress > 0 {
		stop := make(chan struct{})
		var reporter sync.WaitGroup
		reporter.Go(func() {
			pr := benchProgress{w: stderr, tty: isTerminal(stderr), test: test, total: total, start: start}
			pr.run(o.progress, stop, func() (int64, int64) { return finished.Load(), errCount.Load() })
		})
		stopProgress = func() { close(stop); reporter.Wait() }
	}
	for i, bc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			own := make([]time.Duration, 0, int(total)/len(conns)+o.pipeline)
			defer func() { lats[i] = own }()
			for ctx.Err() == nil {
				end := claimed.Add(int64(o.pipeline))
				first := end - int64(o.pipeline)
				if first >= total {
					return
				}
				n := int(min(end, total) - first)
				t0 := time.Now()
				failed, fatal := bc.run(ctx, test, n, rnd)
				d := time.Since(t0)
				for range n {
					own = append(own, d)
				}
				finished.Add(int64(n))
				if len(failed) > 0 {
					errCount.Add(int64(len(failed)))
					firstErr.CompareAndSwap(nil, failed[0].Error())
				}
				if fatal != nil {
					// The rest of this worker's share is lost: count it.
					errCount.Add(int64(n - len(failed)))
					firstErr.CompareAndSwap(nil, fatal.Error())
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := benchResult{Test: test, Requests: len(all), Errors: int(errCount.Load()), Seconds: elapsed.Seconds()}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstErr = s
	}
	if len(all) > 0 {
		r.OpsPerSec = float64(len(all)) / elapsed.Seconds()
		pct := func(p float64) float64 {
			i := min(len(all)-1, int(p*float64(len(all))))
			return float64(all[i]) / float64(time.Millisecond)
		}
		r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
		r.MaxMs = float64(all[len(all)-1]) / float64(time.Millisecond)
	}
	return r
}

// benchProgress reports how a running test advances: on a terminal it
// redraws one line, elsewhere it prints a line each time.
type benchProgress struct {
	w     io.Writer
	tty   bool
	test  string
	total int64
	start time.Time
	width int // of the line drawn on the terminal
}

// run reports every interval until stop is closed, from the counts of
// requests done and failed that counts returns, then ends the line drawn
// on a terminal.
func (p *benchProgress) run(interval time.Duration, stop <-chan struct{}, counts func() (done, failed int64)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			if p.width > 0 {
				fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
			}
			return
		case now := <-t.C:
			done, failed := counts()
			p.line(now.Sub(p.start), done, failed)
		}
	}
}

// line reports done requests (failed of them) after elapsed.
func (p *benchProgress) line(elapsed time.Duration, done, failed int64) {
	s := fmt.Sprintf("bench %s: %d/%d requests, %.0f ops/s so far", p.test, done, p.total, float64(done)/elapsed.Seconds())
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	s += fmt.Sprintf(" (%s)", shortDuration(elapsed))
	if !p.tty {
		fmt.Fprintln(p.w, s)
		return
	}
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", max(p.width-len(s), 0)))
	p.width = len(s)
}

func benchKey(prefix string, rnd *rand.Rand, keyspace int) []byte {
	return fmt.Appendf(nil, "%s:%012d", prefix, rnd.IntN(keyspace))
}

// nativeBench runs requests through the smart client.
type nativeBench struct {
	t        *client.Table
	value    []byte
	keyspace int
}

func (b *nativeBench) run(ctx context.Context, test string, n int, rnd *rand.Rand) ([]error, error) {
	var failed []error
	for range n {
		var err error
		switch test {
		case "set":
			err = b.t.Set(ctx, benchKey("key", rnd, b.keyspace), b.value)
		case "get":
			_, err = b.t.Get(ctx, benchKey("key", rnd, b.keyspace))
			if errors.Is(err, client.ErrNotFound) {
				err = nil
			}
		case "incr":
			_, err = b.t.Incr(ctx, benchKey("counter", rnd, b.keyspace))
		case "mset":
			kvs := make([]client.KV, msetKeys)
			for i := range kvs {
				kvs[i] = client.KV{Key: benchKey("key", rnd, b.keyspace), Value: b.value}
			}
			err = b.t.MSet(ctx, kvs)
		}
		if err != nil {
			if ctx.Err() != nil {
				return failed, ctx.Err()
			}
			failed = append(failed, err)
		}
	}
	return failed, nil
}

func (b *nativeBench) Close() error { return nil }
