package resp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
)

// TestManualBenchServer serves RESP in front of an in-process cluster of
// $ZEPPELIN_RESP_BENCH_SERVERS servers (default 1; one table "default" of
// 16 partitions, replicated on min(3, servers) of them) on
// $ZEPPELIN_RESP_BENCH_ADDR for $ZEPPELIN_RESP_BENCH_SECONDS (default 300),
// so redis-benchmark can be pointed at it:
//
//	ZEPPELIN_TEST_LOG=error ZEPPELIN_RESP_BENCH_ADDR=127.0.0.1:7379 \
//	    go test -run TestManualBenchServer -timeout 0 -cpuprofile cpu.out ./resp/
//	redis-benchmark -p 7379 -c 50 -n 100000 -d 100 -r 100000 -t set,get,incr,mset -P 16
//
// It is skipped unless the variable is set.
func TestManualBenchServer(t *testing.T) {
	addr := os.Getenv("ZEPPELIN_RESP_BENCH_ADDR")
	if addr == "" {
		t.Skip("set ZEPPELIN_RESP_BENCH_ADDR to serve RESP for redis-benchmark")
	}
	secs, _ := strconv.Atoi(os.Getenv("ZEPPELIN_RESP_BENCH_SECONDS"))
	if secs <= 0 {
		secs = 300
	}
	servers, _ := strconv.Atoi(os.Getenv("ZEPPELIN_RESP_BENCH_SERVERS"))
	servers = max(servers, 1)
	c := newCluster(t, servers)
	c.CreateTable("default", client.TableOptions{Partitions: 16, Replication: min(3, servers)})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: c.Client(0)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	t.Logf("serving RESP on %s for %ds in front of %d servers", addr, secs, servers)
	time.Sleep(time.Duration(secs) * time.Second)
	t.Logf("stats: %+v", s.Stats())
}

func BenchmarkParse(b *testing.B) {
	var buf []byte
	for i := range 16 {
		buf = appendCommand(buf, []byte("SET"), fmt.Appendf(nil, "key:%012d", i), make([]byte, 100))
	}
	args := make([][]byte, 0, 8)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rest := buf
		for len(rest) > 0 {
			var n int
			args, n, _, _ = parse(rest, args, 1<<20, 1024)
			rest = rest[n:]
		}
	}
}

// BenchmarkPipeline sends pipelined commands over one connection through
// the server to a one-server cluster: it measures the RESP path plus the
// client, not the network between nodes.
func BenchmarkPipeline(b *testing.B) {
	c := newCluster(b, 1)
	c.CreateTable("default", client.TableOptions{Partitions: 16, Replication: 1})
	_, addr := startServer(b, c, Config{})
	for _, cmd := range []string{"GET", "SET", "PING"} {
		b.Run(cmd, func(b *testing.B) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			rd := bufio.NewReader(nc)
			const depth = 16
			var req []byte
			for i := range depth {
				key := fmt.Appendf(nil, "key:%012d", i)
				switch cmd {
				case "GET":
					req = appendCommand(req, []byte("GET"), key)
				case "SET":
					req = appendCommand(req, []byte("SET"), key, make([]byte, 100))
				default:
					req = appendCommand(req, []byte("PING"))
				}
			}
			// Replies: GET of a 100-byte value, +OK or +PONG.
			if _, err := nc.Write(appendCommand(nil, []byte("MSET"), []byte("key:000000000000"), make([]byte, 100))); err != nil {
				b.Fatal(err)
			}
			if _, err := rd.ReadString('\n'); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				for range depth {
					line, err := rd.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if line[0] == '$' {
						n, _ := strconv.Atoi(line[1 : len(line)-2])
						if n >= 0 {
							if _, err := io.CopyN(io.Discard, rd, int64(n)+2); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
			b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}
