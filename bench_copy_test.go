package zeppelin_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// BenchmarkFullSyncCopy times the copy of one large partition to another
// node over loopback TCP. Two servers (the first is also the only meta
// member) and a table of one partition with replication factor 1, filled
// with random 1 KiB values: 1 GiB, or ZEPPELIN_COPY_MB MiB. Once the process is
// idle again after the fill, each iteration migrates the partition from its
// master to the other node. The copy is the learner's full sync, timed from
// the Migrate call until the learner's replica is complete (MB/s, in MiB
// of values per second, and copy-s); move-s is the whole migration,
// handover included; cpu-s is the CPU time the process used during the
// copy. rss-growth-MB and anon-rss-growth-MB are the largest growth of the
// process's resident set, all of it and its anonymous part, during the copy
// (both nodes live in this process, and the learner's store compactions
// count too). The servers' stores have the production sizes
// (ZEPPELIN_COPY_STORE=small gives them the small footprint of tests);
// ZEPPELIN_COPY_CHUNK_KB sets the snapshot chunk size, and
// ZEPPELIN_COPY_CPUPROFILE names a file for a CPU profile of the copy alone.
// Run it with -benchtime 1x: with more iterations the partition moves back
// and forth while the previous holder's copy is still being collected.
func BenchmarkFullSyncCopy(b *testing.B) {
	mb := 1024
	if s := os.Getenv("ZEPPELIN_COPY_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ZEPPELIN_COPY_MB=%q: want a positive number of MiB", s)
		}
		mb = n
	}
	const valueSize = 1 << 10
	keys := mb << 10
	total := int64(keys) * valueSize

	chunk := 0
	if s := os.Getenv("ZEPPELIN_COPY_CHUNK_KB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ZEPPELIN_COPY_CHUNK_KB=%q: want a positive number of KiB", s)
		}
		chunk = n << 10
	}
	// A partition this large lives on a production-sized store; the small
	// footprint of tests (ZEPPELIN_COPY_STORE=small) compacts far more.
	small := os.Getenv("ZEPPELIN_COPY_STORE") == "small"
	configure := func(_ int, cfg *zeppelin.Config) {
		cfg.Expert.SnapshotChunk = chunk
		cfg.Expert.SmallFootprint = small
		// The copy loads both cores and the disk: a heartbeat late by a
		// second must not have the target declared down mid-copy.
		cfg.DownTimeout = 10 * time.Second
	}
	c := testcluster.New(b, testcluster.Options{Servers: 2, Configure: configure,
		Roles: []zeppelin.Roles{zeppelin.RoleMeta | zeppelin.RoleData, zeppelin.RoleData}})
	tbl := c.CreateTable("copy", client.TableOptions{Partitions: 1, Replication: 1})
	cl := c.NewClient("copy")
	tb := cl.Table("copy")
	ctx := context.Background()

	fillStart := time.Now()
	const writers, perSet = 4, 500
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Random values: the store's block compression gains nothing.
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			values := make([]byte, perSet*valueSize)
			kvs := make([]client.KV, 0, perSet)
			for {
				lo := int(next.Add(perSet)) - perSet
				if lo >= keys {
					return
				}
				for i := 0; i < len(values); i += 8 {
					binary.LittleEndian.PutUint64(values[i:], rng.Uint64())
				}
				kvs = kvs[:0]
				for i := lo; i < min(lo+perSet, keys); i++ {
					v := values[(i-lo)*valueSize : (i-lo+1)*valueSize]
					kvs = append(kvs, client.KV{Key: fmt.Appendf(nil, "k%09d", i), Value: v})
				}
				if err := tb.MSet(ctx, kvs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("fill: %v", err)
	}
	b.Logf("filled %d MiB (%d keys) in %v", mb, keys, time.Since(fillStart).Round(time.Millisecond))

	waitQuiet(b)

	var copyS, moveS, cpuS, rssMB, anonMB float64
	b.ResetTimer()
	for range b.N {
		r := copyOnce(b, c, cl, tbl.ID)
		copyS += r.copied.Seconds()
		moveS += r.moved.Seconds()
		cpuS += r.cpu.Seconds()
		rssMB = max(rssMB, float64(r.rssPeak-r.rss0)/(1<<20))
		anonMB = max(anonMB, float64(r.anonPeak-r.anon0)/(1<<20))
		b.Logf("%s → %s: copied %d MiB in %v (%.1f MB/s, %.1f CPU-s), moved in %v, RSS %d → peak %d MiB (anonymous %d → %d MiB)",
			r.from, r.to, mb, r.copied.Round(time.Millisecond), float64(total)/(1<<20)/r.copied.Seconds(),
			r.cpu.Seconds(), r.moved.Round(time.Millisecond), r.rss0>>20, r.rssPeak>>20, r.anon0>>20, r.anonPeak>>20)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(total)/(1<<20)/(copyS/n), "MB/s")
	b.ReportMetric(copyS/n, "copy-s")
	b.ReportMetric(moveS/n, "move-s")
	b.ReportMetric(cpuS/n, "cpu-s")
	b.ReportMetric(rssMB, "rss-growth-MB")
	b.ReportMetric(anonMB, "anon-rss-growth-MB")
}

type copyResult struct {
	from, to      placement.NodeID
	copied, moved time.Duration
	cpu           time.Duration // CPU time of the whole process during the copy
	// Resident set, all of it and its anonymous part, before the copy
	// and at its peak during the copy.
	rss0, rssPeak, anon0, anonPeak int64
}

// copyOnce migrates partition 0 of table from its master to the other
// node and times the learner's copy and the whole move.
func copyOnce(b *testing.B, c *testcluster.Cluster, cl *client.Client, table placement.TableID) (r copyResult) {
	b.Helper()
	m := c.Map()
	for _, t := range m.Tables {
		if t.ID == table {
			r.from = t.Partitions[0].Master
		}
	}
	for i := range c.Len() {
		if n := placement.NodeID(c.Member(i).Name); n != r.from {
			r.to = n
		}
	}
	learner := c.Index(r.to)
	base := fullSyncsOf(c, learner, table)

	// The baseline is what is live: garbage of the fill is returned first.
	debug.FreeOSMemory()
	r.rss0, r.anon0 = rss()
	var peak, peakAnon atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			t, a := rss()
			peak.Store(max(peak.Load(), t))
			peakAnon.Store(max(peakAnon.Load(), a))
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		sampler.Wait()
		r.rssPeak, r.anonPeak = peak.Load(), peakAnon.Load()
	}()

	if path := os.Getenv("ZEPPELIN_COPY_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cpu0 := cpuTime()
	start := time.Now()
	id, err := cl.Migrate(ctx, "copy", 0, r.from, r.to)
	if err != nil {
		b.Fatalf("migrate %s → %s: %v", r.from, r.to, err)
	}
	checked := start
	if err := testcluster.Poll(30*time.Minute, func() error {
		if n := fullSyncsOf(c, learner, table); n > base {
			return nil
		}
		if time.Since(checked) > time.Second {
			// A move that failed or was cancelled never completes the copy.
			checked = time.Now()
			ms, err := cl.Migrations(ctx, 0)
			if err != nil {
				return err
			}
			for _, mg := range ms {
				if mg.ID == id && mg.State.Finished() && mg.State != placement.MigrationDone {
					b.Fatalf("migration %d ended before the copy was seen complete: %+v", id, mg)
				}
			}
		}
		return fmt.Errorf("copy to %s not done", r.to)
	}); err != nil {
		b.Fatal(err)
	}
	r.copied = time.Since(start)
	r.cpu = cpuTime() - cpu0
	mg, err := cl.WaitMigration(ctx, id)
	if err != nil || mg.State != placement.MigrationDone {
		b.Fatalf("migration %d: %+v, %v", id, mg, err)
	}
	r.moved = time.Since(start)
	return r
}

// waitQuiet waits, up to a minute, until the process has been nearly
// idle (under a quarter of a core) for a second: the store's compactions
// and the binlog purge that follow the fill are over.
func waitQuiet(b *testing.B) {
	b.Helper()
	const window = 500 * time.Millisecond
	start := time.Now()
	for quiet := 0; quiet < 2; {
		if time.Since(start) > time.Minute {
			b.Logf("the process is still busy a minute after the fill; measuring anyway")
			return
		}
		c0 := cpuTime()
		time.Sleep(window)
		used := cpuTime() - c0
		if os.Getenv("ZEPPELIN_COPY_DEBUG") != "" {
			b.Logf("%v: %v", time.Since(start).Round(time.Millisecond), used)
		}
		if used < window/4 {
			quiet++
		} else {
			quiet = 0
		}
	}
	b.Logf("quiet after %v", time.Since(start).Round(time.Millisecond))
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fullSyncsOf returns how many full syncs member i's replica of partition
// 0 of table has completed (0 when it holds none, or while one runs).
func fullSyncsOf(c *testcluster.Cluster, i int, table placement.TableID) uint64 {
	s := c.Server(i)
	if s == nil || s.Node() == nil {
		return 0
	}
	for _, r := range s.Node().Status().Replicas {
		if r.Table == table && r.Partition == 0 && !r.Incomplete {
			return r.FullSyncs
		}
	}
	return 0
}

// rss returns the process's resident set size and its anonymous part
// (the heap and other private memory, without the store's memory-mapped
// files) in bytes; 0 when /proc/self/status cannot be read.
func rss() (total, anon int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	kb := func(s string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			total = kb(rest)
		} else if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			anon = kb(rest)
		}
	}
	return total, anon
}
