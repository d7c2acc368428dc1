// Command failover shows what a crash costs and how long it takes to heal.
//
// It runs three servers in one program, each a meta member and a data node
// as three machines would be, and keeps a write load on two tables: an
// async one (the default: a write is acknowledged once its master has it)
// and a sync one (acknowledged once every replica of the partition's
// in-sync set has it). Then it crashes, with Close, the server that
// masters the most partitions and prints a timeline relative to the
// crash: when the meta group declared the server down, when each of its
// partitions got a new master and when writes resumed on each of them.
// Last it stops the load and reads every acknowledged write back: the
// async table may miss the few writes the crashed master had acknowledged
// but not shipped to its slaves yet; the sync table misses none.
//
//	go run ./examples/failover
//	go run ./examples/failover -load 10s -after 5s -partitions 16
//
// The time of the down declaration is the meta leader's own; the times of
// the promotions are when the program saw them in the map (it polls the
// meta leader's status every 20 ms), and those of the resumed writes are
// when the first write sent after the crash was acknowledged.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/examples/internal/demo"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func main() { demo.Main("failover", run) }

// options are the command-line flags.
type options struct {
	dir        string
	load       time.Duration
	after      time.Duration
	partitions int
	verbose    bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "where to create the servers' directories (default: the system's temporary directory); they are removed at exit")
	fs.DurationVar(&o.load, "load", 3*time.Second, "how long to write before the crash")
	fs.DurationVar(&o.after, "after", 2*time.Second, "how long to keep writing once writes have resumed")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions per table")
	fs.BoolVar(&o.verbose, "v", false, "print the servers' logs on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.partitions < 1 {
		return o, fmt.Errorf("-partitions must be at least 1")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.dir, "zeppelin-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	servers, addrs, err := demo.StartCluster(ctx, dir, 3, logger)
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "3 servers ready: %s\n", strings.Join(addrs, ", "))

	// The same load on two tables, one of each replication mode.
	tables := []struct {
		name string
		opts client.TableOptions
	}{
		{"async", client.TableOptions{Replication: 3}},
		{"sync", client.TableOptions{Replication: 3, Mode: placement.ModeSync}},
	}
	// The load goes through a client of its own, as an application's
	// would: it outlives any one server.
	cl, err := client.New(client.DefaultConfig(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, t := range tables {
		opts := t.opts
		opts.Partitions = o.partitions
		if _, err := cl.CreateTable(ctx, t.name, opts); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	fmt.Fprintf(stdout, "tables async and sync: %d partitions × 3 replicas each\n", o.partitions)

	// One writer per partition of each table, so that every partition's
	// resumption shows on its own.
	var writers []*writer
	for _, t := range tables {
		for p := range o.partitions {
			writers = append(writers, &writer{table: cl.Table(t.name), part: p, tag: tagFor(p, o.partitions)})
		}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var killedAt atomic.Int64 // Unix ns once the victim is gone
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { w.run(loadCtx, &killedAt) })
	}
	defer func() {
		stopLoad()
		wg.Wait()
	}()
	fmt.Fprintf(stdout, "writing through %d writers for %v\n", len(writers), o.load)
	if err := sleep(ctx, o.load); err != nil {
		return err
	}

	// The victim: the node mastering the most partitions.
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	masters := map[placement.NodeID]int{}
	for _, n := range st.Map.Nodes {
		masters[n.ID] = 0
	}
	for _, t := range st.Map.Tables {
		for _, p := range t.Partitions {
			if p.Master != "" {
				masters[p.Master]++
			}
		}
	}
	var victim placement.NodeID
	var counts []string
	for _, n := range sortedNodes(masters) {
		counts = append(counts, fmt.Sprintf("%s %d", n, masters[n]))
		if victim == "" || masters[n] > masters[victim] {
			victim = n
		}
	}
	var affected []*writer
	for _, w := range writers {
		if st.Map.Table(w.table.Name()).Partitions[w.part].Master == victim {
			affected = append(affected, w)
		}
	}
	fmt.Fprintf(stdout, "masters per node (both tables): %s\n", strings.Join(counts, ", "))

	vi := slices.IndexFunc(servers, func(s *zeppelin.Server) bool { return s.NodeID() == string(victim) })
	if vi < 0 {
		return fmt.Errorf("no server masters a partition")
	}
	wasLeader := st.LeaderAddr == servers[vi].Addr()
	before := ackedTotal(writers)
	kill := time.Now()
	servers[vi].Close()
	closed := time.Since(kill)
	servers[vi] = nil
	killedAt.Store(time.Now().UnixNano())
	role := ""
	if wasLeader {
		role = " and meta leader"
	}
	fmt.Fprintf(stdout, "crashed %s (master of %d partitions%s) with %d writes acknowledged\n\n", victim, len(affected), role, before)

	evs, err := watch(ctx, cl, victim, wasLeader, affected, kill)
	if err != nil {
		return err
	}
	evs = append(evs, event{0, fmt.Sprintf("kill %s (Close returned after %v)", victim, closed.Round(time.Millisecond))})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	fmt.Fprintln(stdout, "timeline (relative to the kill):")
	for _, e := range evs {
		fmt.Fprintf(stdout, "  %+8.3fs  %s\n", e.at.Seconds(), e.what)
	}

	if err := sleep(ctx, o.after); err != nil {
		return err
	}
	stopLoad()
	wg.Wait()
	total := ackedTotal(writers)
	fmt.Fprintf(stdout, "\nacknowledged writes: %d before the kill, %d after\n", before, total-before)

	for _, t := range tables {
		var ws []*writer
		failed := 0
		for _, w := range writers {
			if w.table.Name() == t.name {
				ws = append(ws, w)
				failed += w.failed
			}
		}
		acked, found, err := readBack(ctx, cl.Table(t.name), ws)
		if err != nil {
			return fmt.Errorf("read back %s: %w", t.name, err)
		}
		verdict := "none lost"
		if lost := acked - found; lost > 0 {
			verdict = fmt.Sprintf("%d lost: acknowledged by %s before it shipped them", lost, victim)
		}
		fmt.Fprintf(stdout, "%-5s table: read back %d of %d acknowledged writes (%s); %d writes failed or had an unknown outcome\n",
			t.name, found, acked, verdict, failed)
	}
	return nil
}

// writer writes fresh keys to one partition of one table until its
// context ends, remembering which writes were acknowledged.
type writer struct {
	table *client.Table
	part  int
	tag   string // a hashtag that routes to part

	acked   atomic.Int64 // acknowledged writes, read while running
	resumed atomic.Int64 // Unix ns of the first acknowledgement of a write sent after the kill

	// Read once run has returned.
	ok     []int // the sequence numbers of the acknowledged writes
	failed int
}

func (w *writer) key(i int) []byte { return fmt.Appendf(nil, "{%s}:%08d", w.tag, i) }

func (w *writer) run(ctx context.Context, killedAt *atomic.Int64) {
	for i := 0; ctx.Err() == nil; i++ {
		sent := time.Now().UnixNano()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.table.Set(wctx, w.key(i), fmt.Appendf(nil, "%d", i))
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.failed++
				_ = sleep(ctx, 10*time.Millisecond)
			}
			continue
		}
		w.ok = append(w.ok, i)
		w.acked.Add(1)
		if k := killedAt.Load(); k != 0 && sent >= k {
			w.resumed.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
}

func ackedTotal(ws []*writer) int64 {
	var n int64
	for _, w := range ws {
		n += w.acked.Load()
	}
	return n
}

// tagFor returns a hashtag whose keys fall in partition part of a table
// with n partitions.
func tagFor(part, n int) string {
	for i := 0; ; i++ {
		tag := fmt.Sprintf("p%d", i)
		if int(placement.PartitionOfTag([]byte(tag), n)) == part {
			return tag
		}
	}
}

type event struct {
	at   time.Duration
	what string
}

// watch polls the meta leader's status until the victim is declared down,
// every partition it mastered has another master, and every one of those
// partitions has acknowledged a write sent after the kill; it returns
// what happened when.
func watch(ctx context.Context, cl *client.Client, victim placement.NodeID, wasLeader bool, affected []*writer, kill time.Time) ([]event, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var evs []event
	down := false
	elected := !wasLeader
	promoted := map[*writer]bool{}
	resumed := map[*writer]bool{}
	var lastResumed time.Duration
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if !down || len(promoted) < len(affected) {
			// The meta leader may be the victim: calls fail until the
			// others have elected a new one.
			sctx, scancel := context.WithTimeout(ctx, time.Second)
			st, err := cl.Status(sctx)
			scancel()
			if err == nil && st.Map != nil {
				seen := time.Since(kill)
				if !elected {
					// The first answer comes from the new leader.
					elected = true
					leader := st.LeaderAddr
					for _, n := range st.Map.Nodes {
						if n.Addr == st.LeaderAddr {
							leader = string(n.ID)
						}
					}
					evs = append(evs, event{seen, fmt.Sprintf("%s leads the meta group", leader)})
				}
				if n := st.Map.Node(victim); !down && n != nil && n.State == placement.NodeDown {
					down = true
					at := seen
					if n.Since != 0 {
						at = time.UnixMilli(n.Since).Sub(kill)
					}
					evs = append(evs, event{at, fmt.Sprintf("%s declared down", victim)})
				}
				for _, w := range affected {
					if promoted[w] {
						continue
					}
					if p := st.Map.Table(w.table.Name()).Partitions[w.part]; p.Master != "" && p.Master != victim {
						promoted[w] = true
						evs = append(evs, event{seen, fmt.Sprintf("%-5s partition %d promoted: %s is master (generation %d)", w.table.Name(), w.part, p.Master, p.Gen)})
					}
				}
			}
		}
		for _, w := range affected {
			if r := w.resumed.Load(); r != 0 && !resumed[w] {
				resumed[w] = true
				at := time.Unix(0, r).Sub(kill)
				lastResumed = max(lastResumed, at)
				evs = append(evs, event{at, fmt.Sprintf("%-5s partition %d: writes resumed", w.table.Name(), w.part)})
			}
		}
		if down && len(promoted) == len(affected) && len(resumed) == len(affected) {
			evs = append(evs, event{lastResumed, fmt.Sprintf("writes resumed on all %d partitions %s mastered", len(affected), victim)})
			return evs, nil
		}
		select {
		case <-ctx.Done():
			return evs, fmt.Errorf("failover incomplete (down %v, %d of %d promoted, %d resumed): %w",
				down, len(promoted), len(affected), len(resumed), ctx.Err())
		case <-tick.C:
		}
	}
}

// readBack reads every write the writers saw acknowledged and returns how
// many there were and how many hold their value.
func readBack(ctx context.Context, tb *client.Table, ws []*writer) (acked, found int, err error) {
	for _, w := range ws {
		for lo := 0; lo < len(w.ok); lo += 1000 {
			seqs := w.ok[lo:min(lo+1000, len(w.ok))]
			keys := make([][]byte, len(seqs))
			for i, s := range seqs {
				keys[i] = w.key(s)
			}
			res, err := tb.MGet(ctx, keys)
			if err != nil {
				return 0, 0, err
			}
			for i, r := range res {
				acked++
				if r.Found && string(r.Value) == fmt.Sprint(seqs[i]) {
					found++
				}
			}
		}
	}
	return acked, found, nil
}

func sortedNodes(m map[placement.NodeID]int) []placement.NodeID {
	out := make([]placement.NodeID, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
