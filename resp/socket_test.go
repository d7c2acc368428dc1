package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
)

// rawConn is a plain TCP connection to the server for tests that send
// bytes by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	rd *bufio.Reader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// expect reads exactly len(want) bytes and compares them with want.
func (r *rawConn) expect(want string) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.rd, got); err != nil {
		r.t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		r.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectLine reads one line and checks that it starts with prefix.
func (r *rawConn) expectLine(prefix string) string {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.rd.ReadString('\n')
	if err != nil {
		r.t.Fatalf("reading a line starting %q: got %q, %v", prefix, line, err)
	}
	if !strings.HasPrefix(line, prefix) {
		r.t.Fatalf("got %q, want a line starting %q", line, prefix)
	}
	return line
}

// expectNothing checks that nothing arrives for a while.
func (r *rawConn) expectNothing(d time.Duration) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(d))
	b, err := r.rd.ReadByte()
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		r.t.Fatalf("got %q, %v; want nothing", b, err)
	}
}

// expectClosed checks that the server closed the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := r.rd.ReadByte()
	if !errors.Is(err, io.EOF) && !isReset(err) {
		r.t.Fatalf("got %q, %v; want the connection closed", b, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestBadInput sends malformed and hostile input at the socket while a
// well-behaved go-redis client keeps working on another connection.
func TestBadInput(t *testing.T) {
	c := newCluster(t, 1)
	c.CreateTable("default", client.TableOptions{Partitions: 4, Replication: 1})
	srv, addr := startServer(t, c, Config{MaxArgs: 64})

	// A well-behaved client works throughout.
	stop := make(chan struct{})
	var good sync.WaitGroup
	var goodOps atomic.Int64
	good.Add(1)
	go func() {
		defer good.Done()
		rdb := newRedis(t, addr, 3, 0)
		ctx := ctxFor(t, 60*time.Second)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k, v := fmt.Sprint("good", i%100), fmt.Sprint(i)
			if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
				t.Errorf("well-behaved SET: %v", err)
				return
			}
			if got, err := rdb.Get(ctx, k).Result(); err != nil || got != v {
				t.Errorf("well-behaved GET = %q, %v; want %q", got, err, v)
				return
			}
			goodOps.Add(1)
		}
	}()
	defer func() {
		close(stop)
		good.Wait()
		if goodOps.Load() == 0 {
			t.Errorf("the well-behaved client made no progress")
		}
	}()

	t.Run("HalfCommand", func(t *testing.T) {
		r := dial(t, addr)
		r.send("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nva")
		r.expectNothing(200 * time.Millisecond)
		r.send("lue\r\n*2\r\n$3\r\nGET\r\n$4\r\nhalf\r")
		r.expect("+OK\r\n")
		r.expectNothing(100 * time.Millisecond)
		r.send("\n")
		r.expect("$5\r\nvalue\r\n")
		// Byte by byte.
		cmd := "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n"
		for i := range len(cmd) {
			r.send(cmd[i : i+1])
		}
		r.expect("$3\r\nabc\r\n")
		// Half an inline command.
		r.send("PI")
		r.expectNothing(100 * time.Millisecond)
		r.send("NG\r\n")
		r.expect("+PONG\r\n")
	})

	t.Run("Inline", func(t *testing.T) {
		r := dial(t, addr)
		r.send("PING\r\n")
		r.expect("+PONG\r\n")
		r.send("ping hello\n")
		r.expect("$5\r\nhello\r\n")
		r.send("SET inline \"a b\\x41\\n\"\r\nGET inline\r\n")
		r.expect("+OK\r\n$5\r\na bA\n\r\n")
		r.send("\r\n\r\n  \r\nECHO 'it''s'\r\n")
		r.expectLine("-ERR Protocol error: unbalanced quotes")
		r.expectClosed()
	})

	t.Run("Pipelined", func(t *testing.T) {
		r := dial(t, addr)
		var req, want strings.Builder
		for i := range 300 {
			fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$%d\r\np%d\r\n$1\r\nx\r\n", len(fmt.Sprint("p", i)), i)
			fmt.Fprintf(&req, "ECHO %d\r\n", i)
			fmt.Fprintf(&want, "+OK\r\n$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
		}
		r.send(req.String())
		r.expect(want.String())
	})

	t.Run("PipelinedGets", func(t *testing.T) {
		// One node: consecutive GETs are answered by one MGet, and a key
		// over the client's limit fails only its own GET.
		r := dial(t, addr)
		r.send("SET ga 1\r\nSET gb 22\r\n")
		r.expect("+OK\r\n+OK\r\n")
		big := strings.Repeat("k", 70<<10)
		var req []byte
		req = appendCommand(req, []byte("GET"), []byte("ga"))
		req = appendCommand(req, []byte("GET"), []byte("missing"))
		req = appendCommand(req, []byte("GET"), []byte(big))
		req = appendCommand(req, []byte("GET"), []byte("gb"))
		req = appendCommand(req, []byte("GET"), []byte("ga"))
		req = appendCommand(req, []byte("PING"))
		req = appendCommand(req, []byte("GET"), []byte("gb"))
		r.send(string(req))
		r.expect("$1\r\n1\r\n$-1\r\n")
		r.expectLine("-ERR invalid argument")
		r.expect("$2\r\n22\r\n$1\r\n1\r\n+PONG\r\n$2\r\n22\r\n")
		before := srv.Stats().Commands
		r.send("GET ga\r\nGET gb\r\nGET ga\r\n")
		r.expect("$1\r\n1\r\n$2\r\n22\r\n$1\r\n1\r\n")
		if d := srv.Stats().Commands - before; d < 3 {
			t.Errorf("a run of 3 GETs counted as %d commands", d)
		}
	})

	t.Run("HugeBulk", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := dial(t, addr)
		r.send("*2\r\n$3\r\nGET\r\n$1073741824\r\n")
		r.expectLine("-ERR Protocol error: invalid bulk length 1073741824")
		r.expectClosed()
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 256<<20 {
			t.Errorf("the server allocated %d MiB for a rejected bulk string", d>>20)
		}
		// Just above MaxBulk is rejected the same way.
		r = dial(t, addr)
		r.send(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", srv.cfg.MaxBulk+1))
		r.expectLine("-ERR Protocol error: invalid bulk length")
		r.expectClosed()
	})

	t.Run("TooManyArgs", func(t *testing.T) {
		r := dial(t, addr)
		r.send("*65\r\n")
		r.expectLine("-ERR Protocol error: invalid multibulk length 65")
		r.expectClosed()
		r = dial(t, addr)
		r.send("*1048576000000000000000\r\n")
		r.expectLine("-ERR Protocol error: invalid multibulk length")
		r.expectClosed()
	})

	t.Run("BigValue", func(t *testing.T) {
		// A value just under the client's limit passes through.
		v := strings.Repeat("v", 1<<20)
		r := dial(t, addr)
		r.send(string(appendCommand(nil, []byte("SET"), []byte("bigvalue"), []byte(v))))
		r.expect("+OK\r\n")
		r.send("GET bigvalue\r\n")
		r.expect(fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
	})

	t.Run("Garbage", func(t *testing.T) {
		for _, junk := range []string{
			"\x00\x01\x02\xff\xfe garbage\r\n",
			"*2\r\n$3\r\nGET\r\n+oops\r\n",
			"*2\r\n$3\r\nGET\r\n$3\r\nabcXY",
			"*x\r\n",
			"*1\r\n$-5\r\n",
			"*1\r\n$3\rxabc\r\n",
			strings.Repeat("A", 70<<10),
		} {
			r := dial(t, addr)
			r.send(junk)
			r.expectLine("-ERR Protocol error: ")
			r.expectClosed()
		}
		// Random bytes never crash the server; the connection is answered
		// or closed.
		rng := rand.New(rand.NewPCG(1, 2))
		for range 50 {
			b := make([]byte, 1+rng.IntN(4096))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			if rng.IntN(2) == 0 {
				b[0] = '*'
			}
			r := dial(t, addr)
			r.nc.Write(b)
			r.nc.(*net.TCPConn).CloseWrite()
			r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, r.rd); err != nil && !isReset(err) {
				t.Fatalf("reading the answer to garbage: %v", err)
			}
		}
		// An unknown command is an error reply, not a protocol error.
		r := dial(t, addr)
		r.send("*1\r\n$4\r\nNOPE\r\nPING\r\n")
		r.expect("-ERR unknown command 'NOPE', with args beginning with: \r\n+PONG\r\n")
	})

	if st := srv.Stats(); st.Panics != 0 || st.ProtocolErrors < 10 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestCloseWithOpenConnections checks that Close ends every connection and
// goroutine, and that Serve then returns nil.
func TestCloseWithOpenConnections(t *testing.T) {
	c := newCluster(t, 1)
	c.CreateTable("default", client.TableOptions{Partitions: 2, Replication: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: c.Client(0), Logger: c.Log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	var conns []*rawConn
	for range 5 {
		r := dial(t, ln.Addr().String())
		r.send("PING\r\n")
		r.expect("+PONG\r\n")
		conns = append(conns, r)
	}
	conns[0].send("*2\r\n$3\r\nGET\r\n$3\r\nab") // half a command
	if n := s.Stats().Connections; n != 5 {
		t.Errorf("Stats.Connections = %d, want 5", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	for _, r := range conns {
		r.expectClosed()
	}
	if n := s.Stats().Connections; n != 0 {
		t.Errorf("Stats.Connections after Close = %d", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(ln2); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New without a client succeeded")
	}
}

// TestLimits checks the defaults derived from the client's limits and the
// bound on a transaction's size.
func TestLimits(t *testing.T) {
	c := newCluster(t, 1)
	c.CreateTable("default", client.TableOptions{Partitions: 2, Replication: 1})
	cfg := client.DefaultConfig(c.Addrs()...)
	cfg.Limits = client.Limits{MaxValueSize: 4 << 10, MaxBatchOps: 4, MaxMultiKeys: 4}
	cl, err := client.NewWithNetwork(cfg, c.Hub.Host("limits"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	srv, addr := startServer(t, c, Config{Client: cl})
	if srv.cfg.MaxBulk != 5<<10 || srv.cfg.MaxArgs != 1024 || srv.cfg.DefaultTable != "default" || srv.cfg.Name != "zeppelin" {
		t.Errorf("defaults: MaxBulk %d MaxArgs %d DefaultTable %q Name %q", srv.cfg.MaxBulk, srv.cfg.MaxArgs, srv.cfg.DefaultTable, srv.cfg.Name)
	}

	r := dial(t, addr)
	r.send("MULTI\r\nINCR {t}a\r\nMSET {t}b 1 {t}c 2\r\nPING\r\nPING\r\nEXEC\r\n")
	r.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n")
	r.expectLine("-ERR transaction exceeds the limit of 4 operations")
	r.expect("-" + errExecAbort + "\r\n")
	r.send("EXISTS {t}a {t}b\r\n")
	r.expect(":0\r\n")

	// A value over the client's limit but under MaxBulk is the client's
	// error; over MaxBulk it is a protocol error.
	r.send(string(appendCommand(nil, []byte("SET"), []byte("v"), make([]byte, 4<<10+1))))
	r.expectLine("-ERR invalid argument")
	r.send(string(appendCommand(nil, []byte("SET"), []byte("v"), make([]byte, 5<<10+1))))
	r.expectLine("-ERR Protocol error: invalid bulk length")
	r.expectClosed()
}
