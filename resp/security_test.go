package resp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth"
)

// TestConnectionLimits refuses connections beyond the total and per-address
// bounds with Redis's error, counts them, and admits again once others
// close.
func TestConnectionLimits(t *testing.T) {
	c := newCluster(t, 1)
	s, addr := startServer(t, c, Config{MaxConns: 3, MaxConnsPerIP: 2})
	a := dial(t, addr)
	b := dial(t, addr)
	a.send("PING\r\n")
	a.expect("+PONG\r\n")
	b.send("PING\r\n")
	b.expect("+PONG\r\n")
	third := dial(t, addr)
	third.expect("-ERR max number of clients reached\r\n")
	third.expectClosed()
	if got := s.Stats().Refused["too many connections from one address"]; got != 1 {
		t.Fatalf("refusals %v", s.Stats().Refused)
	}
	a.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Connections > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	d := dial(t, addr)
	d.send("PING\r\n")
	d.expect("+PONG\r\n")
}

// TestAuthAndIdleTimeouts closes connections that do not authenticate in
// time and, with IdleTimeout, connections that stay idle; busy ones stay.
func TestAuthAndIdleTimeouts(t *testing.T) {
	c := newCluster(t, 1)
	users := mustUsers(t, auth.User{Name: "default", Password: "pw", Grants: []auth.Grant{{Access: auth.LevelAdmin}}})
	s, addr := startServer(t, c, Config{Users: users, AuthTimeout: 300 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})

	silent := dial(t, addr)
	start := time.Now()
	silent.expectClosed()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("an unauthenticated connection lived %v", took)
	}
	if s.Stats().AuthFailures != 1 {
		t.Errorf("auth failures %d, want 1", s.Stats().AuthFailures)
	}

	busy := dial(t, addr)
	busy.send("AUTH pw\r\n")
	busy.expect("+OK\r\n")
	idle := dial(t, addr)
	idle.send("AUTH pw\r\n")
	idle.expect("+OK\r\n")
	for range 8 { // 1.6 s, past both timeouts
		time.Sleep(200 * time.Millisecond)
		busy.send("PING\r\n")
		busy.expect("+PONG\r\n")
	}
	idle.expectClosed()
	if s.Stats().IdleClosed != 1 {
		t.Errorf("idle closed %d, want 1", s.Stats().IdleClosed)
	}
}

func mustUsers(t testing.TB, users ...auth.User) *auth.Users {
	t.Helper()
	u, err := auth.NewUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPipelinedBigGetsMemory pipelines 300 GETs of a 16 MiB value and reads
// none of the replies: the server stops reading from the client (back
// pressure) and its memory stays bounded (at most MaxRunBytes of values
// per run, none of them copied into the output buffer), instead of the
// 4.8 GB of replies, or a run's 4 GiB, it would otherwise gather.
func TestPipelinedBigGetsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves gigabytes")
	}
	c := newCluster(t, 1)
	c.CreateTable("big", client.TableOptions{Partitions: 4, Replication: 1})
	s, addr := startServer(t, c, Config{DefaultTable: "big"})
	ctx := ctxFor(t, 2*time.Minute)
	value := bytes.Repeat([]byte("v"), 16<<20)
	rdb := newRedis(t, addr, 2, 0)
	for i := range 2 {
		if err := rdb.Set(ctx, fmt.Sprintf("big%d", i), value, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	value = nil
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heap()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	}
	var req bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&req, "GET big%d\r\n", i%2)
	}
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	var peak uint64
	for range 10 {
		time.Sleep(200 * time.Millisecond)
		peak = max(peak, heap()-min(base, heap()))
	}
	t.Logf("heap in use grew by %d MiB at most (base %d MiB) with 300 × 16 MiB GETs unread",
		peak>>20, base>>20)
	const bound = 512 << 20 // MaxRunBytes (256 MiB) of values, buffers, Badger
	if peak > bound {
		t.Fatalf("heap grew by %d MiB, more than %d MiB", peak>>20, bound>>20)
	}
	// The server serves others meanwhile, and the stalled client still
	// gets its replies once it reads.
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(time.Minute))
	want := int64(300 * (16<<20 + len("$16777216\r\n\r\n")))
	n, err := io.CopyN(io.Discard, nc, want)
	if err != nil || n != want {
		t.Fatalf("read %d of %d reply bytes: %v", n, want, err)
	}
	if st := s.Stats(); st.Connections != 2 {
		t.Logf("connections %d", st.Connections)
	}
}

// TestUsers covers AUTH, HELLO AUTH and the grants: NOAUTH before
// authenticating, WRONGPASS, NOPERM for a command or table outside the
// grant, with go-redis.
func TestUsers(t *testing.T) {
	c := newCluster(t, 1)
	c.CreateTable("users", client.TableOptions{Partitions: 2, Replication: 1})
	c.CreateTable("other", client.TableOptions{Partitions: 2, Replication: 1})
	users := mustUsers(t,
		auth.User{Name: "default", Password: "defpw", Grants: []auth.Grant{{Access: auth.LevelAdmin}}},
		auth.User{Name: "alice", Password: "alicepw", Grants: []auth.Grant{{Tables: []string{"users"}, Access: auth.LevelWrite}}},
		auth.User{Name: "reader", Password: "readerpw", Grants: []auth.Grant{{Access: auth.LevelRead}}},
	)
	s, addr := startServer(t, c, Config{Users: users, DefaultTable: "users"})
	ctx := ctxFor(t, time.Minute)

	raw := dial(t, addr)
	raw.send("GET k\r\n")
	raw.expect("-NOAUTH Authentication required.\r\n")
	raw.send("HELLO 3\r\n")
	raw.expectLine("-NOAUTH HELLO must be called with the client already authenticated")
	raw.send("AUTH alice nope\r\n")
	raw.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	raw.send("AUTH nope\r\n")
	raw.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	raw.send("AUTH alice alicepw\r\nSET k v\r\nGET k\r\nSELECT other\r\nFLUSHDB\r\n")
	raw.expect("+OK\r\n+OK\r\n$1\r\nv\r\n")
	raw.expect("-NOPERM this user has no permissions to access table 'other'\r\n")
	raw.expect("-NOPERM User alice has no permissions to run the 'flushdb' command\r\n")
	if got := s.Stats().AuthFailures; got != 2 {
		t.Errorf("auth failures %d, want 2", got)
	}

	alice := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "alicepw", Protocol: 3, MaxRetries: -1})
	defer alice.Close()
	if err := alice.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("alice SET (HELLO 3 AUTH): %v", err)
	}
	reader := redis.NewClient(&redis.Options{Addr: addr, Username: "reader", Password: "readerpw", Protocol: 2, MaxRetries: -1})
	defer reader.Close()
	if v, err := reader.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Fatalf("reader GET: %q %v", v, err)
	}
	wantErr(t, "reader SET", reader.Set(ctx, "a", "2", 0).Err(), "NOPERM User reader has no permissions to run the 'set' command")
	_, err := reader.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "a"); return nil })
	wantErr(t, "reader INCR in MULTI", err, "EXECABORT")
	def := redis.NewClient(&redis.Options{Addr: addr, Password: "defpw", Protocol: 2, MaxRetries: -1, DB: 0})
	defer def.Close()
	if err := def.Set(ctx, "d", "1", 0).Err(); err != nil {
		t.Fatalf("AUTH password (the default user): %v", err)
	}
	bad := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "wrong", Protocol: 3, MaxRetries: -1})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
}
