package resp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestPipelinedMillionCommandsMemory pipelines 1,000,000 GETs of a 1 KiB
// value (about 1 GiB of replies) on one connection without reading any
// reply: the server stops reading from the client once its replies back
// up, so its heap grows by a few MiB, not by the replies; other clients
// are served meanwhile; and once the client reads, every reply arrives, in
// order.
func TestPipelinedMillionCommandsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million commands")
	}
	const n = 1_000_000
	c := newCluster(t, 1)
	c.CreateTable("pl", client.TableOptions{Partitions: 4, Replication: 1})
	_, addr := startServer(t, c, Config{DefaultTable: "pl"})
	ctx := ctxFor(t, 3*time.Minute)
	rdb := newRedis(t, addr, 2, 0)
	value := bytes.Repeat([]byte("v"), 1024)
	if err := rdb.Set(ctx, "k", value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	base := heapInUse()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	wrote := make(chan error, 1)
	go func() {
		req := bytes.Repeat([]byte("GET k\r\n"), n)
		_, err := nc.Write(req)
		wrote <- err
	}()
	// Watch the heap while the server works through what it can.
	var peak uint64
	for range 15 {
		time.Sleep(200 * time.Millisecond)
		h := heapInUse() // once: a second reading may be larger and underflow h-base
		peak = max(peak, h-min(base, h))
	}
	t.Logf("heap in use grew by %d MiB at most (base %d MiB) with %d pipelined GETs unread (%d MiB of replies)",
		peak>>20, base>>20, n, n*(len(value)+11)>>20)
	const bound = 64 << 20
	if peak > bound {
		t.Fatalf("heap grew by %d MiB, more than %d MiB", peak>>20, bound>>20)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("another client while one is stalled: %v", err)
	}
	nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReaderSize(nc, 1<<20)
	want := fmt.Sprintf("$%d\r\n%s\r\n", len(value), value)
	got := make([]byte, len(want))
	for i := range n {
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("reply %d: %q", i, got[:min(len(got), 40)])
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the pipeline: %v", err)
	}
}

// TestMGetReplyBudget asks one MGET for the same large value many times
// over: the data node stops reading at what one reply may carry and
// answers with a clear error instead of holding every copy, and serves on.
func TestMGetReplyBudget(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(_ int, cfg *zeppelin.Config) {
		// A reply may carry FrameLimit: 4 values + 100 keys + 64 MiB,
		// about 70 MiB.
		cfg.Limits = zeppelin.Limits{MaxValueSize: 1 << 20, MaxMultiKeys: 100}
	}})
	c.CreateTable("mg", client.TableOptions{Partitions: 2, Replication: 1})
	_, addr := startServer(t, c, Config{DefaultTable: "mg"})
	ctx := ctxFor(t, time.Minute)
	rdb := newRedis(t, addr, 2, 0)
	if err := rdb.Set(ctx, "big", bytes.Repeat([]byte("b"), 1<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "big"
	}
	_, err := rdb.MGet(ctx, keys...).Result()
	if err == nil || !strings.Contains(err.Error(), "ask for fewer keys") {
		t.Fatalf("MGET of 100 MiB: %v, want the reply budget's error", err)
	}
	vs, err := rdb.MGet(ctx, keys[:50]...).Result()
	if err != nil || len(vs) != 50 {
		t.Fatalf("MGET of 50 MiB: %d values, %v", len(vs), err)
	}
	for i, v := range vs {
		if s, ok := v.(string); !ok || len(s) != 1<<20 {
			t.Fatalf("value %d of the 50 MiB MGET: %T of %d bytes", i, v, len(fmt.Sprint(v)))
		}
	}
}
