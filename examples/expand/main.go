// Command expand grows a cluster from three data nodes to five.
//
// It runs three servers in one program, each a meta member and a data node
// as three machines would be, fills a table with a few thousand keys, then
// starts two data-only servers that join through the first three. New
// nodes get no replicas by themselves: the program asks the meta group to
// rebalance, prints the progress of the replica moves that follow (moves
// done out of the total, bytes copied), waits until the masters are spread
// evenly again, and prints the new distribution of replicas and masters.
// Last it reads every key back through one of the new nodes.
//
//	go run ./examples/expand
//	go run ./examples/expand -keys 50000 -value-size 1024 -partitions 24
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/examples/internal/demo"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func main() { demo.Main("expand", run) }

// options are the command-line flags.
type options struct {
	dir        string
	keys       int
	valueSize  int
	partitions int
	verbose    bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("expand", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "where to create the servers' directories (default: the system's temporary directory); they are removed at exit")
	fs.IntVar(&o.keys, "keys", 5000, "keys to write before the expansion")
	fs.IntVar(&o.valueSize, "value-size", 512, "bytes per value")
	fs.IntVar(&o.partitions, "partitions", 12, "partitions of the table")
	fs.BoolVar(&o.verbose, "v", false, "print the servers' logs on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.keys < 1 || o.valueSize < 16 || o.partitions < 1 {
		return o, fmt.Errorf("need -keys ≥ 1, -value-size ≥ 16 and -partitions ≥ 1")
	}
	return o, nil
}

const table = "data"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.dir, "zeppelin-expand-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	servers, join, err := demo.StartCluster(ctx, dir, 3, logger)
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "3 servers ready (meta+data): %s\n", strings.Join(join, ", "))

	admin := servers[0].Client()
	if _, err := admin.CreateTable(ctx, table, client.TableOptions{Partitions: o.partitions, Replication: 3}); err != nil {
		return err
	}
	start := time.Now()
	if err := fill(ctx, admin.Table(table), o.keys, o.valueSize); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d keys of %d bytes into table %q (%d partitions × 3 replicas) in %v\n",
		o.keys, o.valueSize, table, o.partitions, time.Since(start).Round(time.Millisecond))

	// Two data-only servers: they find the meta group through the others.
	for i := 4; i <= 5; i++ {
		c := zeppelin.DefaultLocalConfig(filepath.Join(dir, fmt.Sprintf("n%d", i)))
		c.NodeID = fmt.Sprintf("n%d", i)
		c.Roles = zeppelin.RoleData
		c.Join = join
		c.Logger = logger // zeppelin.Start adds node=<id>
		s, err := zeppelin.Start(c)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = s.WaitReady(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "added data nodes n4 and n5")
	// A rebalance places replicas on the nodes that are up: wait until the
	// meta leader counts all five as up (on a loaded machine a new node's
	// first heartbeats can be late).
	if err := waitAllUp(ctx, admin, 5); err != nil {
		return err
	}
	if err := printDistribution(ctx, stdout, admin, servers, "before the rebalance"); err != nil {
		return err
	}

	start = time.Now()
	res, err := admin.Rebalance(ctx, client.RebalanceOptions{Table: table})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nrebalance: %d replica moves queued (batch %d)\n", res.Migrations, res.Batch)
	if res.Batch != 0 {
		// The bytes each move had copied when it was last seen copying: a
		// move that ends between two polls is counted short.
		copied := map[uint64]int64{}
		var last string
		p, err := admin.WaitBatch(ctx, res.Batch, func(p client.BatchProgress) {
			pending := 0
			for _, m := range p.Running {
				copied[m.ID] = max(copied[m.ID], m.CopiedBytes)
				if m.State == placement.MigrationPending {
					pending++
				}
			}
			line := fmt.Sprintf("moves done %d/%d, %d copying or handing over, %d waiting; %s copied",
				p.Done, p.Total, len(p.Running)-pending, pending, size(sum(copied)))
			if line != last {
				fmt.Fprintf(stdout, "  %+7.3fs  %s\n", time.Since(start).Seconds(), line)
				last = line
			}
		})
		if err != nil {
			return err
		}
		if p.Failed+p.Cancelled > 0 {
			return fmt.Errorf("rebalance: %d moves failed, %d cancelled", p.Failed, p.Cancelled)
		}
		fmt.Fprintf(stdout, "all %d moves done in %v, at least %s copied\n", p.Total, time.Since(start).Round(time.Millisecond), size(sum(copied)))
	}

	// Once the batch is over the meta leader spreads masters evenly by
	// planned switchovers; a masters-only plan with no change says it is
	// done.
	if err := waitMastersBalanced(ctx, admin); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "masters balanced %v after the rebalance started\n", time.Since(start).Round(time.Millisecond))
	if err := printDistribution(ctx, stdout, admin, servers, "after the rebalance"); err != nil {
		return err
	}

	n5 := servers[len(servers)-1]
	if err := verify(ctx, n5.Client().Table(table), o.keys, o.valueSize); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nall %d keys read back through %s\n", o.keys, n5.NodeID())
	return nil
}

func key(i int) []byte { return fmt.Appendf(nil, "key:%07d", i) }

// value returns key i's value: its number, padded to n bytes.
func value(i, n int) []byte {
	v := fmt.Appendf(make([]byte, 0, n), "value %d ", i)
	return append(v, bytes.Repeat([]byte{'.'}, n-len(v))...)
}

// fill writes keys 0 to n-1, 500 per request.
func fill(ctx context.Context, tb *client.Table, n, valueSize int) error {
	for lo := 0; lo < n; lo += 500 {
		kvs := make([]client.KV, 0, 500)
		for i := lo; i < min(lo+500, n); i++ {
			kvs = append(kvs, client.KV{Key: key(i), Value: value(i, valueSize)})
		}
		if err := tb.MSet(ctx, kvs); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// verify reads keys 0 to n-1 back, 1000 per request.
func verify(ctx context.Context, tb *client.Table, n, valueSize int) error {
	for lo := 0; lo < n; lo += 1000 {
		keys := make([][]byte, 0, 1000)
		for i := lo; i < min(lo+1000, n); i++ {
			keys = append(keys, key(i))
		}
		res, err := tb.MGet(ctx, keys)
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		for j, r := range res {
			if want := value(lo+j, valueSize); !r.Found || !bytes.Equal(r.Value, want) {
				return fmt.Errorf("key %s: found %v, %d bytes; want its %d bytes", keys[j], r.Found, len(r.Value), len(want))
			}
		}
	}
	return nil
}

// waitMastersBalanced waits until a masters-only rebalance plan has
// nothing left to do.
func waitMastersBalanced(ctx context.Context, cl *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		plan, err := cl.PlanRebalance(ctx, table, true)
		if err == nil && plan.MasterChanges == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = fmt.Errorf("%d master changes still planned", plan.MasterChanges)
			}
			return fmt.Errorf("masters not balanced: %w", err)
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// printDistribution prints how many replicas and masters of the table each
// data node holds in the meta leader's map.
func printDistribution(ctx context.Context, w io.Writer, cl *client.Client, servers []*zeppelin.Server, when string) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	t := st.Map.Table(table)
	if t == nil {
		return fmt.Errorf("table %q not in the map", table)
	}
	roles := map[placement.NodeID]zeppelin.Roles{}
	for _, s := range servers {
		roles[placement.NodeID(s.NodeID())] = s.Roles()
	}
	fmt.Fprintf(w, "\ndistribution %s (map epoch %d):\n", when, st.Map.Epoch)
	fmt.Fprintf(w, "  %-4s  %-9s  %8s  %7s\n", "node", "roles", "replicas", "masters")
	for _, n := range st.Map.Nodes {
		replicas, masters := 0, 0
		for _, p := range t.Partitions {
			if p.HasReplica(n.ID) {
				replicas++
			}
			if p.Master == n.ID {
				masters++
			}
		}
		fmt.Fprintf(w, "  %-4s  %-9s  %8d  %7d\n", n.ID, roles[n.ID], replicas, masters)
	}
	return nil
}

func sum(m map[uint64]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// size formats a byte count.
func size(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// waitAllUp waits until the map lists n data nodes, every one up.
func waitAllUp(ctx context.Context, cl *client.Client, n int) error {
	for {
		nodes, err := cl.ListNodes(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, nd := range nodes {
			if nd.State == placement.NodeUp {
				up++
			}
		}
		if up == n && len(nodes) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d data nodes up (%d of %d are): %w", n, up, len(nodes), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
