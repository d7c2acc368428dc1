package resp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// newCluster starts a cluster of n servers whose clients wait up to 30 s
// for a call, so that a loaded test machine slows the tests down instead of
// failing them.
func newCluster(t testing.TB, n int) *testcluster.Cluster {
	t.Helper()
	return testcluster.New(t, testcluster.Options{Servers: n, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.ClientTimeout = 30 * time.Second
	}})
}

// startServer serves the RESP protocol on a loopback port in front of
// member 0's client and returns the server and its address. The server is
// closed when the test ends, before the cluster.
func startServer(t testing.TB, c *testcluster.Cluster, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Client == nil {
		cfg.Client = c.Client(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = c.Log
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func newRedis(t testing.TB, addr string, proto int, db int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:         addr,
		Protocol:     proto,
		DB:           db,
		MaxRetries:   -1,
		ReadTimeout:  20 * time.Second,
		WriteTimeout: 20 * time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails unless err is a Redis error reply starting with prefix.
func wantErr(t *testing.T, what string, err error, prefix string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %q", what, prefix)
		return
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("%s: error %q, want prefix %q", what, err, prefix)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestRedisCommands runs every supported command through go-redis, over
// RESP2 and RESP3, against a three-server cluster, and compares the
// replies with what Redis documents.
func TestRedisCommands(t *testing.T) {
	c := newCluster(t, 3)
	c.CreateTable("default", client.TableOptions{Partitions: 8, Replication: 3})
	c.CreateTable("1", client.TableOptions{Partitions: 4, Replication: 2})
	srv, addr := startServer(t, c, Config{})

	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx := ctxFor(t, 60*time.Second)
			rdb := newRedis(t, addr, proto, 0)
			p := fmt.Sprintf("p%d:", proto) // key prefix per protocol
			k := func(s string) string { return p + s }

			t.Run("Ping", func(t *testing.T) {
				equal(t, "PING", must[string](t, "PING")(rdb.Ping(ctx).Result()), "PONG")
				equal(t, "PING hi", must[any](t, "PING hi")(rdb.Do(ctx, "PING", "hi").Result()), any("hi"))
				equal(t, "ECHO", must[string](t, "ECHO")(rdb.Echo(ctx, "hello world").Result()), "hello world")
				wantErr(t, "PING a b", rdb.Do(ctx, "PING", "a", "b").Err(), "ERR wrong number of arguments for 'ping' command")
			})

			t.Run("GetSet", func(t *testing.T) {
				equal(t, "SET", must[string](t, "SET")(rdb.Set(ctx, k("a"), "1", 0).Result()), "OK")
				equal(t, "GET", must[string](t, "GET")(rdb.Get(ctx, k("a")).Result()), "1")
				if err := rdb.Get(ctx, k("missing")).Err(); err != redis.Nil {
					t.Errorf("GET missing: %v, want redis.Nil", err)
				}
				equal(t, "SET empty", must[string](t, "SET")(rdb.Set(ctx, k("empty"), "", 0).Result()), "OK")
				equal(t, "GET empty", must[string](t, "GET")(rdb.Get(ctx, k("empty")).Result()), "")
				bin := string([]byte{0, 1, '\r', '\n', 0xff})
				rdb.Set(ctx, k("bin"), bin, 0)
				equal(t, "GET binary", must[string](t, "GET")(rdb.Get(ctx, k("bin")).Result()), bin)
				wantErr(t, "GET a b", rdb.Do(ctx, "GET", k("a"), "b").Err(), "ERR wrong number of arguments for 'get' command")
				wantErr(t, "SET a", rdb.Do(ctx, "set", k("a")).Err(), "ERR wrong number of arguments for 'set' command")
			})

			t.Run("SetOptions", func(t *testing.T) {
				// NX / XX.
				equal(t, "SET NX new", must[bool](t, "SETNX")(rdb.SetNX(ctx, k("nx"), "v1", 0).Result()), true)
				equal(t, "SET NX existing", must[bool](t, "SETNX")(rdb.SetNX(ctx, k("nx"), "v2", 0).Result()), false)
				equal(t, "value after NX", rdb.Get(ctx, k("nx")).Val(), "v1")
				equal(t, "SET XX missing", must[bool](t, "SETXX")(rdb.SetXX(ctx, k("xx"), "v1", 0).Result()), false)
				if n := rdb.Exists(ctx, k("xx")).Val(); n != 0 {
					t.Errorf("SET XX on a missing key created it")
				}
				equal(t, "SET XX existing", must[bool](t, "SETXX")(rdb.SetXX(ctx, k("nx"), "v3", 0).Result()), true)
				equal(t, "value after XX", rdb.Get(ctx, k("nx")).Val(), "v3")
				if err := rdb.Do(ctx, "SET", k("nx"), "v", "NX").Err(); err != redis.Nil {
					t.Errorf("SET NX not met: %v, want a nil reply", err)
				}

				// EX / PX / EXAT / PXAT.
				rdb.Set(ctx, k("ex"), "v", 100*time.Second)
				ttl := must[int64](t, "TTL")(rdb.Do(ctx, "TTL", k("ex")).Int64())
				if ttl < 99 || ttl > 100 {
					t.Errorf("TTL after SET EX 100 = %d", ttl)
				}
				must[any](t, "SET PX")(rdb.Do(ctx, "SET", k("px"), "v", "PX", "50000").Result())
				pttl := must[int64](t, "PTTL")(rdb.Do(ctx, "PTTL", k("px")).Int64())
				if pttl < 49000 || pttl > 50000 {
					t.Errorf("PTTL after SET PX 50000 = %d", pttl)
				}
				at := time.Now().Add(200 * time.Second).Unix()
				must[any](t, "SET EXAT")(rdb.Do(ctx, "SET", k("exat"), "v", "EXAT", at).Result())
				if ttl := rdb.Do(ctx, "TTL", k("exat")).Val().(int64); ttl < 198 || ttl > 200 {
					t.Errorf("TTL after EXAT now+200 = %d", ttl)
				}
				atMs := time.Now().Add(300 * time.Second).UnixMilli()
				must[any](t, "SET PXAT")(rdb.Do(ctx, "SET", k("pxat"), "v", "PXAT", atMs).Result())
				if ttl := rdb.Do(ctx, "TTL", k("pxat")).Val().(int64); ttl < 298 || ttl > 300 {
					t.Errorf("TTL after PXAT now+300s = %d", ttl)
				}

				// A plain SET clears the TTL; KEEPTTL keeps it.
				rdb.Set(ctx, k("ex"), "w", 0)
				equal(t, "TTL after plain SET", rdb.Do(ctx, "TTL", k("ex")).Val(), any(int64(-1)))
				rdb.Set(ctx, k("ex"), "v", 100*time.Second)
				must[any](t, "SET KEEPTTL")(rdb.Do(ctx, "SET", k("ex"), "x", "KEEPTTL").Result())
				if ttl := rdb.Do(ctx, "TTL", k("ex")).Val().(int64); ttl < 99 {
					t.Errorf("TTL after SET KEEPTTL = %d", ttl)
				}
				equal(t, "value after KEEPTTL", rdb.Get(ctx, k("ex")).Val(), "x")

				// GET returns the old value.
				old, err := rdb.SetArgs(ctx, k("ex"), "y", redis.SetArgs{Get: true}).Result()
				equal(t, "SET GET old", old, "x")
				equal(t, "SET GET err", err, nil)
				if err := rdb.SetArgs(ctx, k("fresh"), "y", redis.SetArgs{Get: true}).Err(); err != redis.Nil {
					t.Errorf("SET GET on a new key: %v, want a nil reply", err)
				}
				equal(t, "SET GET wrote", rdb.Get(ctx, k("fresh")).Val(), "y")
				old, _ = rdb.Do(ctx, "SET", k("fresh"), "z", "NX", "GET").Text()
				equal(t, "SET NX GET (not written) old", old, "y")
				equal(t, "SET NX GET kept", rdb.Get(ctx, k("fresh")).Val(), "y")

				// Errors.
				wantErr(t, "SET EX 0", rdb.Do(ctx, "SET", k("e"), "v", "EX", "0").Err(), "ERR invalid expire time in 'set' command")
				wantErr(t, "SET PX -5", rdb.Do(ctx, "SET", k("e"), "v", "PX", "-5").Err(), "ERR invalid expire time in 'set' command")
				wantErr(t, "SET EX abc", rdb.Do(ctx, "SET", k("e"), "v", "EX", "abc").Err(), "ERR value is not an integer or out of range")
				wantErr(t, "SET NX XX", rdb.Do(ctx, "SET", k("e"), "v", "NX", "XX").Err(), "ERR syntax error")
				wantErr(t, "SET EX PX", rdb.Do(ctx, "SET", k("e"), "v", "EX", "1", "PX", "1").Err(), "ERR syntax error")
				wantErr(t, "SET EX KEEPTTL", rdb.Do(ctx, "SET", k("e"), "v", "EX", "1", "KEEPTTL").Err(), "ERR syntax error")
				wantErr(t, "SET EX", rdb.Do(ctx, "SET", k("e"), "v", "EX").Err(), "ERR syntax error")
				wantErr(t, "SET FOO", rdb.Do(ctx, "SET", k("e"), "v", "FOO").Err(), "ERR syntax error")
				if n := rdb.Exists(ctx, k("e")).Val(); n != 0 {
					t.Errorf("a rejected SET wrote its key")
				}

				// SETNX, SETEX, PSETEX, GETSET.
				equal(t, "SETNX", rdb.Do(ctx, "SETNX", k("snx"), "1").Val(), any(int64(1)))
				equal(t, "SETNX again", rdb.Do(ctx, "SETNX", k("snx"), "2").Val(), any(int64(0)))
				equal(t, "SETEX", rdb.Do(ctx, "SETEX", k("sex"), "30", "v").Val(), any("OK"))
				if ttl := rdb.Do(ctx, "TTL", k("sex")).Val().(int64); ttl < 29 || ttl > 30 {
					t.Errorf("TTL after SETEX 30 = %d", ttl)
				}
				wantErr(t, "SETEX 0", rdb.Do(ctx, "SETEX", k("sex"), "0", "v").Err(), "ERR invalid expire time in 'setex' command")
				must[any](t, "PSETEX")(rdb.Do(ctx, "PSETEX", k("psex"), "20000", "v").Result())
				if pttl := rdb.Do(ctx, "PTTL", k("psex")).Val().(int64); pttl < 19000 || pttl > 20000 {
					t.Errorf("PTTL after PSETEX 20000 = %d", pttl)
				}
				equal(t, "GETSET", rdb.Do(ctx, "GETSET", k("snx"), "3").Val(), any("1"))
				if err := rdb.Do(ctx, "GETSET", k("gsnew"), "3").Err(); err != redis.Nil {
					t.Errorf("GETSET new key: %v, want nil reply", err)
				}
			})

			t.Run("DelExists", func(t *testing.T) {
				rdb.MSet(ctx, k("d1"), "1", k("d2"), "2", k("d3"), "3")
				equal(t, "EXISTS one", rdb.Exists(ctx, k("d1")).Val(), int64(1))
				equal(t, "EXISTS missing", rdb.Exists(ctx, k("dx")).Val(), int64(0))
				// Redis counts a key as often as it is named.
				equal(t, "EXISTS with duplicates", rdb.Exists(ctx, k("d1"), k("d1"), k("d2"), k("dx")).Val(), int64(3))
				equal(t, "DEL one", rdb.Del(ctx, k("d1")).Val(), int64(1))
				equal(t, "DEL again", rdb.Del(ctx, k("d1")).Val(), int64(0))
				equal(t, "DEL many", rdb.Del(ctx, k("d2"), k("d3"), k("dx"), k("d2")).Val(), int64(2))
				equal(t, "EXISTS after DEL", rdb.Exists(ctx, k("d2"), k("d3")).Val(), int64(0))
				rdb.Set(ctx, k("u"), "1", 0)
				equal(t, "UNLINK", rdb.Unlink(ctx, k("u"), k("ux")).Val(), int64(1))
				rdb.Set(ctx, k("t"), "1", 0)
				equal(t, "TYPE string", rdb.Type(ctx, k("t")).Val(), "string")
				equal(t, "TYPE none", rdb.Type(ctx, k("tx")).Val(), "none")
			})

			t.Run("MGetMSet", func(t *testing.T) {
				var kv []any
				var keys []string
				for i := range 50 {
					kv = append(kv, k(fmt.Sprint("m", i)), fmt.Sprint("v", i))
					keys = append(keys, k(fmt.Sprint("m", i)))
				}
				equal(t, "MSET", rdb.MSet(ctx, kv...).Val(), "OK")
				got := must[[]any](t, "MGET")(rdb.MGet(ctx, append(keys, k("mx"))...).Result())
				if len(got) != 51 {
					t.Fatalf("MGET returned %d values, want 51", len(got))
				}
				for i := range 50 {
					equal(t, "MGET "+keys[i], got[i], any(fmt.Sprint("v", i)))
				}
				equal(t, "MGET missing", got[50], nil)
				wantErr(t, "MSET odd", rdb.Do(ctx, "MSET", k("a"), "1", k("b")).Err(), "ERR wrong number of arguments for 'mset' command")
			})

			t.Run("Incr", func(t *testing.T) {
				equal(t, "INCR new", rdb.Incr(ctx, k("n")).Val(), int64(1))
				equal(t, "INCRBY", rdb.IncrBy(ctx, k("n"), 41).Val(), int64(42))
				equal(t, "DECR", rdb.Decr(ctx, k("n")).Val(), int64(41))
				equal(t, "DECRBY", rdb.DecrBy(ctx, k("n"), 50).Val(), int64(-9))
				equal(t, "GET counter", rdb.Get(ctx, k("n")).Val(), "-9")
				rdb.Set(ctx, k("s"), "abc", 0)
				wantErr(t, "INCR string", rdb.Incr(ctx, k("s")).Err(), "ERR value is not an integer or out of range")
				equal(t, "value after failed INCR", rdb.Get(ctx, k("s")).Val(), "abc")
				rdb.Set(ctx, k("big"), strconv.FormatInt(1<<62, 10), 0)
				wantErr(t, "INCRBY overflow", rdb.IncrBy(ctx, k("big"), 1<<62).Err(), "ERR increment or decrement would overflow")
				wantErr(t, "INCRBY x", rdb.Do(ctx, "INCRBY", k("n"), "x").Err(), "ERR value is not an integer or out of range")
				wantErr(t, "INCRBY 1.5", rdb.Do(ctx, "INCRBY", k("n"), "1.5").Err(), "ERR value is not an integer or out of range")
				wantErr(t, "DECRBY min", rdb.Do(ctx, "DECRBY", k("n"), "-9223372036854775808").Err(), "ERR decrement would overflow")
				// The TTL survives INCR, as in Redis.
				rdb.Set(ctx, k("nt"), "5", time.Minute)
				rdb.Incr(ctx, k("nt"))
				if ttl := rdb.Do(ctx, "TTL", k("nt")).Val().(int64); ttl < 59 {
					t.Errorf("TTL after INCR = %d, want kept", ttl)
				}
			})

			t.Run("Expire", func(t *testing.T) {
				equal(t, "TTL missing", rdb.Do(ctx, "TTL", k("ttl-missing")).Val(), any(int64(-2)))
				equal(t, "PTTL missing", rdb.Do(ctx, "PTTL", k("ttl-missing")).Val(), any(int64(-2)))
				rdb.Set(ctx, k("e"), "v", 0)
				equal(t, "TTL none", rdb.Do(ctx, "TTL", k("e")).Val(), any(int64(-1)))
				equal(t, "PTTL none", rdb.Do(ctx, "PTTL", k("e")).Val(), any(int64(-1)))
				equal(t, "EXPIRE", rdb.Expire(ctx, k("e"), 100*time.Second).Val(), true)
				if ttl := rdb.Do(ctx, "TTL", k("e")).Val().(int64); ttl != 100 {
					t.Errorf("TTL after EXPIRE 100 = %d, want 100 (Redis rounds)", ttl)
				}
				equal(t, "PEXPIRE", rdb.PExpire(ctx, k("e"), 5500*time.Millisecond).Val(), true)
				if pttl := rdb.Do(ctx, "PTTL", k("e")).Val().(int64); pttl < 5000 || pttl > 5500 {
					t.Errorf("PTTL after PEXPIRE 5500 = %d", pttl)
				}
				equal(t, "EXPIRE missing", rdb.Expire(ctx, k("e-missing"), time.Second).Val(), false)
				equal(t, "PERSIST", rdb.Persist(ctx, k("e")).Val(), true)
				equal(t, "PERSIST again", rdb.Persist(ctx, k("e")).Val(), false)
				equal(t, "PERSIST missing", rdb.Persist(ctx, k("e-missing")).Val(), false)
				equal(t, "TTL after PERSIST", rdb.Do(ctx, "TTL", k("e")).Val(), any(int64(-1)))
				// A TTL ≤ 0 deletes the key.
				equal(t, "EXPIRE 0", rdb.Do(ctx, "EXPIRE", k("e"), "0").Val(), any(int64(1)))
				equal(t, "EXISTS after EXPIRE 0", rdb.Exists(ctx, k("e")).Val(), int64(0))
				rdb.Set(ctx, k("e2"), "v", 0)
				equal(t, "EXPIRE -1", rdb.Do(ctx, "EXPIRE", k("e2"), "-1").Val(), any(int64(1)))
				equal(t, "EXISTS after EXPIRE -1", rdb.Exists(ctx, k("e2")).Val(), int64(0))
				// A key really expires.
				rdb.Set(ctx, k("short"), "v", 0)
				rdb.Do(ctx, "PEXPIRE", k("short"), "50")
				time.Sleep(120 * time.Millisecond)
				if err := rdb.Get(ctx, k("short")).Err(); err != redis.Nil {
					t.Errorf("GET after expiry: %v, want redis.Nil", err)
				}
				wantErr(t, "EXPIRE abc", rdb.Do(ctx, "EXPIRE", k("e"), "abc").Err(), "ERR value is not an integer or out of range")
				wantErr(t, "EXPIRE huge", rdb.Do(ctx, "EXPIRE", k("e"), "9223372036854775807").Err(), "ERR invalid expire time in 'expire' command")
				wantErr(t, "EXPIRE NX", rdb.Do(ctx, "EXPIRE", k("e"), "10", "NX").Err(), "ERR the NX, XX, GT and LT options")
			})

			t.Run("Pipeline", func(t *testing.T) {
				pipe := rdb.Pipeline()
				var sets []*redis.StatusCmd
				var incrs []*redis.IntCmd
				var gets []*redis.StringCmd
				for i := range 200 {
					sets = append(sets, pipe.Set(ctx, k(fmt.Sprint("pl", i)), fmt.Sprint(i), 0))
					incrs = append(incrs, pipe.Incr(ctx, k("plc")))
					gets = append(gets, pipe.Get(ctx, k(fmt.Sprint("pl", i))))
				}
				bad := pipe.Incr(ctx, k("pl0x")) // works: a fresh key
				wrong := pipe.Do(ctx, "GET")     // wrong arity, answered in place
				last := pipe.Echo(ctx, "end")
				if _, err := pipe.Exec(ctx); err == nil || !strings.Contains(err.Error(), "wrong number of arguments") {
					t.Errorf("pipeline Exec error = %v, want the GET arity error", err)
				}
				for i := range 200 {
					equal(t, "pipelined SET", sets[i].Val(), "OK")
					equal(t, "pipelined INCR", incrs[i].Val(), int64(i+1))
					equal(t, "pipelined GET", gets[i].Val(), fmt.Sprint(i))
				}
				equal(t, "pipelined INCR fresh", bad.Val(), int64(1))
				wantErr(t, "pipelined bad GET", wrong.Err(), "ERR wrong number of arguments")
				equal(t, "pipelined ECHO after error", last.Val(), "end")
			})

			t.Run("PipelinedGets", func(t *testing.T) {
				// Runs of GETs are answered with one MGet per node: check
				// order, missing keys, empty values and a bad key in a run.
				var kv []any
				for i := range 300 {
					if i%7 != 0 {
						v := fmt.Sprint("g", i)
						if i%11 == 0 {
							v = ""
						}
						kv = append(kv, k(fmt.Sprint("pg", i)), v)
					}
				}
				must[string](t, "MSET")(rdb.MSet(ctx, kv...).Result())
				big := strings.Repeat("x", 70<<10)
				pipe := rdb.Pipeline()
				var gets []*redis.StringCmd
				for i := range 300 {
					key := k(fmt.Sprint("pg", i))
					if i == 150 {
						key = big
					}
					gets = append(gets, pipe.Get(ctx, key))
				}
				pipe.Exec(ctx)
				for i, g := range gets {
					switch {
					case i == 150:
						wantErr(t, "GET of an oversized key in a run", g.Err(), "ERR invalid argument")
					case i%7 == 0:
						if g.Err() != redis.Nil {
							t.Errorf("GET pg%d = %q, %v; want nil", i, g.Val(), g.Err())
						}
					case i%11 == 0:
						if g.Err() != nil || g.Val() != "" {
							t.Errorf("GET pg%d = %q, %v; want empty", i, g.Val(), g.Err())
						}
					default:
						if g.Err() != nil || g.Val() != fmt.Sprint("g", i) {
							t.Errorf("GET pg%d = %q, %v", i, g.Val(), g.Err())
						}
					}
				}
			})

			t.Run("Transactions", func(t *testing.T) {
				tag := "{" + p + "user}"
				var incr *redis.IntCmd
				var del *redis.IntCmd
				var setNX *redis.BoolCmd
				rdb.Set(ctx, tag+":old", "x", 0)
				cmds, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, tag+":name", "alice", 0)
					incr = pipe.IncrBy(ctx, tag+":visits", 5)
					pipe.Expire(ctx, tag+":visits", time.Hour)
					setNX = pipe.SetNX(ctx, tag+":name", "bob", 0)
					del = pipe.Del(ctx, tag+":old", tag+":none")
					pipe.Ping(ctx)
					return nil
				})
				if err != nil {
					t.Fatalf("MULTI/EXEC on one hashtag: %v", err)
				}
				equal(t, "tx commands", len(cmds), 6)
				equal(t, "tx INCRBY", incr.Val(), int64(5))
				equal(t, "tx SETNX", setNX.Val(), false)
				equal(t, "tx DEL", del.Val(), int64(1))
				equal(t, "tx name", rdb.Get(ctx, tag+":name").Val(), "alice")
				if ttl := rdb.Do(ctx, "TTL", tag+":visits").Val().(int64); ttl < 3599 {
					t.Errorf("TTL set in tx = %d", ttl)
				}

				// Keys of different hashtags: CROSSSLOT, nothing written.
				_, err = rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, "{"+p+"a}x", "1", 0)
					pipe.Set(ctx, "{"+p+"b}x", "1", 0)
					return nil
				})
				wantErr(t, "cross-slot EXEC", err, "CROSSSLOT Keys in request don't hash to the same slot")
				equal(t, "cross-slot writes", rdb.Exists(ctx, "{"+p+"a}x", "{"+p+"b}x").Val(), int64(0))

				// A failing command fails the whole batch.
				rdb.Set(ctx, tag+":str", "abc", 0)
				_, err = rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, tag+":written", "1", 0)
					pipe.Incr(ctx, tag+":str")
					return nil
				})
				wantErr(t, "EXEC with a failing INCR", err, "ERR value is not an integer or out of range")
				equal(t, "writes of a failed EXEC", rdb.Exists(ctx, tag+":written").Val(), int64(0))

				// Reads cannot be queued: EXECABORT.
				_, err = rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, tag+":r", "1", 0)
					pipe.Get(ctx, tag+":r")
					return nil
				})
				wantErr(t, "EXEC after GET", err, "EXECABORT")
				equal(t, "writes of an aborted EXEC", rdb.Exists(ctx, tag+":r").Val(), int64(0))

				// Raw MULTI on one connection: queueing replies and errors.
				conn := rdb.Conn()
				defer conn.Close()
				equal(t, "EXEC without MULTI", conn.Do(ctx, "EXEC").Err().Error(), "ERR EXEC without MULTI")
				equal(t, "DISCARD without MULTI", conn.Do(ctx, "DISCARD").Err().Error(), "ERR DISCARD without MULTI")
				equal(t, "MULTI", conn.Do(ctx, "MULTI").Val(), any("OK"))
				equal(t, "nested MULTI", conn.Do(ctx, "MULTI").Err().Error(), "ERR MULTI calls can not be nested")
				equal(t, "queued", conn.Do(ctx, "INCR", tag+":q").Val(), any("QUEUED"))
				equal(t, "queued echo", conn.Do(ctx, "ECHO", "hi").Val(), any("QUEUED"))
				res := must[any](t, "EXEC")(conn.Do(ctx, "EXEC").Result()).([]any)
				equal(t, "EXEC results", fmt.Sprint(res), "[1 hi]")
				equal(t, "empty MULTI", conn.Do(ctx, "MULTI").Val(), any("OK"))
				equal(t, "empty EXEC", fmt.Sprint(conn.Do(ctx, "EXEC").Val()), "[]")
				conn.Do(ctx, "MULTI")
				conn.Do(ctx, "SET", tag+":discarded", "1")
				equal(t, "DISCARD", conn.Do(ctx, "DISCARD").Val(), any("OK"))
				equal(t, "discarded write", rdb.Exists(ctx, tag+":discarded").Val(), int64(0))
				conn.Do(ctx, "MULTI")
				wantErr(t, "unknown in MULTI", conn.Do(ctx, "NOSUCH").Err(), "ERR unknown command 'NOSUCH'")
				wantErr(t, "SELECT in MULTI", conn.Do(ctx, "SELECT", "1").Err(), "ERR SELECT is not allowed inside MULTI")
				wantErr(t, "EXEC after errors", conn.Do(ctx, "EXEC").Err(), errExecAbort)
			})

			t.Run("Select", func(t *testing.T) {
				conn := rdb.Conn()
				defer conn.Close()
				conn.Set(ctx, k("sel"), "in-default", 0)
				equal(t, "SELECT 1", conn.Select(ctx, 1).Val(), "OK")
				if err := conn.Get(ctx, k("sel")).Err(); err != redis.Nil {
					t.Errorf("GET in table 1 sees table default's key: %v", err)
				}
				conn.Set(ctx, k("sel"), "in-1", 0)
				wantErr(t, "SELECT missing", conn.Select(ctx, 7).Err(), "ERR table '7' does not exist")
				equal(t, "table after failed SELECT", conn.Get(ctx, k("sel")).Val(), "in-1")
				equal(t, "SELECT 0", conn.Select(ctx, 0).Val(), "OK")
				equal(t, "GET in default", conn.Get(ctx, k("sel")).Val(), "in-default")
				equal(t, "SELECT by name", conn.Do(ctx, "SELECT", "1").Val(), any("OK"))
				equal(t, "GET in 1", conn.Get(ctx, k("sel")).Val(), "in-1")
				equal(t, "SELECT default by name", conn.Do(ctx, "SELECT", "default").Val(), any("OK"))
				equal(t, "GET in default again", conn.Get(ctx, k("sel")).Val(), "in-default")

				// go-redis selects on connect.
				r1 := newRedis(t, addr, proto, 1)
				equal(t, "GET through DB 1", r1.Get(ctx, k("sel")).Val(), "in-1")
				r9 := newRedis(t, addr, proto, 9)
				if err := r9.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "ERR table '9' does not exist") {
					t.Errorf("connect to DB 9: %v, want the SELECT error", err)
				}
			})

			t.Run("Hello", func(t *testing.T) {
				conn := rdb.Conn()
				defer conn.Close()
				for _, v := range []int{3, 2} {
					reply := must[any](t, "HELLO")(conn.Do(ctx, "HELLO", v, "SETNAME", "hello-test").Result())
					fields := map[string]any{}
					switch r := reply.(type) {
					case map[any]any:
						if v != 3 {
							t.Errorf("HELLO %d answered a RESP3 map", v)
						}
						for k, val := range r {
							fields[k.(string)] = val
						}
					case []any:
						if v != 2 {
							t.Errorf("HELLO %d answered a flat array", v)
						}
						for i := 0; i+1 < len(r); i += 2 {
							fields[r[i].(string)] = r[i+1]
						}
					default:
						t.Fatalf("HELLO %d reply %T", v, reply)
					}
					equal(t, "HELLO proto", fields["proto"], any(int64(v)))
					equal(t, "HELLO server", fields["server"], any("zeppelin"))
					equal(t, "HELLO mode", fields["mode"], any("standalone"))
					equal(t, "HELLO role", fields["role"], any("master"))
					if _, ok := fields["id"].(int64); !ok {
						t.Errorf("HELLO id = %v", fields["id"])
					}
				}
				equal(t, "CLIENT GETNAME after HELLO SETNAME", conn.ClientGetName(ctx).Val(), "hello-test")
				wantErr(t, "HELLO 4", conn.Do(ctx, "HELLO", 4).Err(), "NOPROTO unsupported protocol version")
				wantErr(t, "HELLO x", conn.Do(ctx, "HELLO", "x").Err(), "ERR Protocol version is not an integer or out of range")
				wantErr(t, "HELLO 3 FOO", conn.Do(ctx, "HELLO", 3, "FOO").Err(), "ERR Syntax error in HELLO option 'FOO'")
				wantErr(t, "HELLO AUTH", conn.Do(ctx, "HELLO", 3, "AUTH", "bob", "pw").Err(), "WRONGPASS")
				must[any](t, "HELLO AUTH default")(conn.Do(ctx, "HELLO", 3, "AUTH", "default", "pw").Result())
			})

			t.Run("Client", func(t *testing.T) {
				conn := newRedis(t, addr, proto, 0).Conn()
				defer conn.Close()
				if err := conn.Do(ctx, "CLIENT", "GETNAME").Err(); err != redis.Nil {
					t.Errorf("CLIENT GETNAME unnamed: %v, want nil", err)
				}
				equal(t, "CLIENT SETNAME", conn.ClientSetName(ctx, "worker-1").Val(), true)
				equal(t, "CLIENT GETNAME", conn.ClientGetName(ctx).Val(), "worker-1")
				wantErr(t, "CLIENT SETNAME space", conn.Do(ctx, "CLIENT", "SETNAME", "a b").Err(), "ERR Client names cannot contain spaces")
				id := must[int64](t, "CLIENT ID")(conn.ClientID(ctx).Result())
				if id <= 0 {
					t.Errorf("CLIENT ID = %d", id)
				}
				equal(t, "CLIENT SETINFO", conn.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "mylib").Val(), any("OK"))
				wantErr(t, "CLIENT SETINFO bad", conn.Do(ctx, "CLIENT", "SETINFO", "COLOR", "red").Err(), "ERR Unrecognized option 'COLOR'")
				info := must[string](t, "CLIENT INFO")(conn.Do(ctx, "CLIENT", "INFO").Text())
				for _, want := range []string{"id=" + strconv.FormatInt(id, 10), "name=worker-1", "lib-name=mylib", "table=default"} {
					if !strings.Contains(info, want) {
						t.Errorf("CLIENT INFO %q lacks %q", info, want)
					}
				}
				list := must[string](t, "CLIENT LIST")(conn.Do(ctx, "CLIENT", "LIST").Text())
				if !strings.Contains(list, "name=worker-1") {
					t.Errorf("CLIENT LIST %q lacks this connection", list)
				}
				wantErr(t, "CLIENT FOO", conn.Do(ctx, "CLIENT", "FOO").Err(), "ERR unknown subcommand 'FOO'. Try CLIENT HELP.")
				wantErr(t, "CLIENT SETNAME arity", conn.Do(ctx, "CLIENT", "SETNAME").Err(), "ERR wrong number of arguments for 'client|setname' command")
			})

			t.Run("Info", func(t *testing.T) {
				info := must[string](t, "INFO")(rdb.Info(ctx).Result())
				fields := map[string]string{}
				for _, line := range strings.Split(info, "\r\n") {
					if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
						fields[k] = v
					}
				}
				for _, sec := range []string{"# Server", "# Clients", "# Stats", "# Replication", "# Cluster", "# Keyspace"} {
					if !strings.Contains(info, sec+"\r\n") {
						t.Errorf("INFO lacks section %s", sec)
					}
				}
				num := func(name string) int64 {
					t.Helper()
					v, err := strconv.ParseInt(fields[name], 10, 64)
					if err != nil {
						t.Errorf("INFO %s = %q, not a number", name, fields[name])
					}
					return v
				}
				num("uptime_in_seconds")
				num("process_id")
				if n := num("connected_clients"); n < 1 {
					t.Errorf("connected_clients = %d", n)
				}
				if n := num("total_commands_processed"); n < 10 {
					t.Errorf("total_commands_processed = %d", n)
				}
				num("total_connections_received")
				num("total_error_replies")
				num("max_replication_lag_ms")
				num("max_replication_lag_records")
				equal(t, "nodes", num("nodes"), 3)
				equal(t, "nodes_up", num("nodes_up"), 3)
				equal(t, "partitions", num("partitions"), 12)
				equal(t, "slave_replicas", num("slave_replicas"), 8*2+4*1)
				equal(t, "role", fields["role"], "master")
				equal(t, "redis_version", fields["redis_version"], redisVersion)
				if !strings.HasPrefix(fields["table_default"], "id=") || !strings.Contains(fields["table_default"], "partitions=8,replication=3,mode=async") {
					t.Errorf("table_default = %q", fields["table_default"])
				}
				masters := 0
				for i := range 3 {
					line := fields[fmt.Sprint("node", i)]
					for _, part := range strings.Split(line, ",") {
						if v, ok := strings.CutPrefix(part, "masters="); ok {
							n, _ := strconv.Atoi(v)
							masters += n
						}
					}
				}
				equal(t, "masters over nodes", masters, 12)

				server := must[string](t, "INFO server")(rdb.Info(ctx, "server").Result())
				if !strings.Contains(server, "# Server") || strings.Contains(server, "# Clients") {
					t.Errorf("INFO server = %q", server)
				}
				two := must[string](t, "INFO clients stats")(rdb.Info(ctx, "clients", "stats").Result())
				if !strings.Contains(two, "# Clients") || !strings.Contains(two, "# Stats") || strings.Contains(two, "# Server") {
					t.Errorf("INFO clients stats = %q", two)
				}
			})

			t.Run("Config", func(t *testing.T) {
				got := must[map[string]string](t, "CONFIG GET")(rdb.ConfigGet(ctx, "save").Result())
				if v, ok := got["save"]; !ok || v != "" || len(got) != 1 {
					t.Errorf("CONFIG GET save = %v", got)
				}
				got = must[map[string]string](t, "CONFIG GET")(rdb.ConfigGet(ctx, "appendonly").Result())
				equal(t, "appendonly", got["appendonly"], "yes")
				got = must[map[string]string](t, "CONFIG GET")(rdb.ConfigGet(ctx, "no-such-param").Result())
				equal(t, "unknown param", len(got), 0)
				got = must[map[string]string](t, "CONFIG GET")(rdb.ConfigGet(ctx, "*").Result())
				if len(got) < 2 {
					t.Errorf("CONFIG GET * = %v", got)
				}
			})

			t.Run("Command", func(t *testing.T) {
				info := must[map[string]*redis.CommandInfo](t, "COMMAND")(rdb.Command(ctx).Result())
				get := info["get"]
				if get == nil || get.Arity != 2 || !get.ReadOnly || get.FirstKeyPos != 1 {
					t.Errorf("COMMAND get = %+v", get)
				}
				if mset := info["mset"]; mset == nil || mset.Arity != -3 || mset.StepCount != 2 || mset.LastKeyPos != -1 {
					t.Errorf("COMMAND mset = %+v", mset)
				}
				count := must[int64](t, "COMMAND COUNT")(rdb.Do(ctx, "COMMAND", "COUNT").Int64())
				equal(t, "COMMAND COUNT", count, int64(len(info)))
				docs := must[any](t, "COMMAND DOCS")(rdb.Do(ctx, "COMMAND", "DOCS", "get", "nosuch").Result())
				if s := fmt.Sprint(docs); !strings.Contains(s, "Returns the string value of a key.") {
					t.Errorf("COMMAND DOCS get = %s", s)
				}
				ci := must[any](t, "COMMAND INFO")(rdb.Do(ctx, "COMMAND", "INFO", "set", "nosuch").Result()).([]any)
				if len(ci) != 2 || ci[1] != nil {
					t.Errorf("COMMAND INFO set nosuch = %v", ci)
				}
			})

			t.Run("Errors", func(t *testing.T) {
				wantErr(t, "unknown", rdb.Do(ctx, "FOO", "a", "b").Err(), "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
				wantErr(t, "unknown no args", rdb.Do(ctx, "FOO").Err(), "ERR unknown command 'FOO', with args beginning with: ")
				wantErr(t, "WATCH", rdb.Do(ctx, "WATCH", "a").Err(), "ERR WATCH is not supported")
				wantErr(t, "AUTH", rdb.Do(ctx, "AUTH", "pw").Err(), "ERR AUTH <password> called without any password configured")
				big := strings.Repeat("k", 70<<10)
				wantErr(t, "key over the limit", rdb.Set(ctx, big, "v", 0).Err(), "ERR invalid argument")
			})

			t.Run("Quit", func(t *testing.T) {
				raw := dial(t, addr)
				raw.send("QUIT\r\n")
				raw.expect("+OK\r\n")
				raw.expectClosed()
			})
		})
	}

	st := srv.Stats()
	if st.Commands < 500 || st.TotalConnections < 4 || st.Errors < 10 {
		t.Errorf("Stats = %+v", st)
	}
}
