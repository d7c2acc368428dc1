package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// runsCluster starts three servers with a replication-3 table of eight
// partitions, values of at most 1 KiB, and a RESP server in front of them,
// and returns it with a client of it and a context for the test.
func runsCluster(t *testing.T) (*Server, *redis.Client, context.Context) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.ClientTimeout = 30 * time.Second
		cfg.Limits.MaxValueSize = 1024
	}})
	c.CreateTable("default", client.TableOptions{Partitions: 8, Replication: 3})
	srv, addr := startServer(t, c, Config{})
	return srv, newRedis(t, addr, 2, 0), ctxFor(t, 60*time.Second)
}

// TestPipelinedRuns pipelines runs of GETs, SETs and increments over
// keys mastered by three nodes, with failing commands inside the runs, and
// checks every reply, in order, and that runs did form.
func TestPipelinedRuns(t *testing.T) {
	srv, rdb, ctx := runsCluster(t)

	const n = 200
	pipe := rdb.Pipeline()
	var sets []*redis.StatusCmd
	for i := range n {
		sets = append(sets, pipe.Set(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i), 0))
	}
	big := pipe.Set(ctx, "k-big", strings.Repeat("x", 2000), 0) // over MaxValueSize
	for i := range 5 {
		sets = append(sets, pipe.Set(ctx, "same", fmt.Sprint(i), 0)) // one key, in order
	}
	sets = append(sets, pipe.Set(ctx, "word", "abc", 0))
	var gets []*redis.StringCmd
	for i := range n {
		gets = append(gets, pipe.Get(ctx, fmt.Sprint("k", i)))
	}
	same := pipe.Get(ctx, "same")
	missing := pipe.Get(ctx, "missing")
	var incrs []*redis.IntCmd
	for range 50 {
		incrs = append(incrs, pipe.Incr(ctx, "ctr"))
	}
	incrs = append(incrs, pipe.IncrBy(ctx, "ctr", 10), pipe.Decr(ctx, "ctr"), pipe.DecrBy(ctx, "ctr", 5))
	notInt := pipe.Incr(ctx, "word")
	after := pipe.Incr(ctx, "ctr2")
	if _, err := pipe.Exec(ctx); err == nil {
		t.Fatal("pipeline Exec: no error, want the oversized value's and the non-integer's")
	}

	for i, s := range sets {
		if s.Err() != nil {
			t.Errorf("SET %d: %v", i, s.Err())
		}
	}
	wantErr(t, "SET of an oversized value", big.Err(), "ERR")
	for i, g := range gets {
		if v, err := g.Result(); err != nil || v != fmt.Sprint("v", i) {
			t.Errorf("GET k%d = %q, %v; want v%d", i, v, err, i)
		}
	}
	if v, err := same.Result(); err != nil || v != "4" {
		t.Errorf("GET same = %q, %v; want the last SET's 4", v, err)
	}
	if err := missing.Err(); err != redis.Nil {
		t.Errorf("GET missing: %v, want nil", err)
	}
	want := int64(0)
	for i, in := range incrs {
		switch {
		case i < 50:
			want++
		case i == 50:
			want += 10
		case i == 51:
			want--
		default:
			want -= 5
		}
		if v, err := in.Result(); err != nil || v != want {
			t.Errorf("increment %d = %d, %v; want %d", i, v, err, want)
		}
	}
	wantErr(t, "INCR of a word", notInt.Err(), "ERR value is not an integer or out of range")
	if v, err := after.Result(); err != nil || v != 1 {
		t.Errorf("INCR after the failed one = %d, %v; want 1", v, err)
	}
	if v, err := rdb.Get(ctx, "k-big").Result(); err != redis.Nil {
		t.Errorf("the refused SET wrote %q, %v", v, err)
	}

	st := srv.Stats()
	if st.Runs == 0 || st.RunCommands < n {
		t.Errorf("runs %d answering %d commands: the pipeline formed no runs", st.Runs, st.RunCommands)
	}
	t.Logf("%d runs answered %d of %d commands", st.Runs, st.RunCommands, st.Commands)
}

// TestPipelinedMSetRuns pipelines MSETs, some forming runs (keys of one
// hashtag, so of one master), some spanning the nodes, one refused by the
// limits in the middle of a run and one with a wrong arity, and checks
// every reply in order, that the refused MSET wrote none of its pairs, that
// a key set by several MSETs of a run keeps the last value, and that runs
// did form.
func TestPipelinedMSetRuns(t *testing.T) {
	srv, rdb, ctx := runsCluster(t)
	before := srv.Stats()

	const n = 100
	pipe := rdb.Pipeline()
	var msets []*redis.StatusCmd
	for i := range n {
		if i == n/2 {
			msets = append(msets, pipe.MSet(ctx, "{t}refused-a", "1", "{t}refused-b", strings.Repeat("x", 2000)))
		}
		if i == n/2+1 {
			msets = append(msets, pipe.MSet(ctx, "{t}same", "early"))
		}
		msets = append(msets, pipe.MSet(ctx, fmt.Sprint("{t}a", i), fmt.Sprint("a", i), fmt.Sprint("{t}b", i), fmt.Sprint("b", i), "{t}same", fmt.Sprint(i)))
	}
	arity := pipe.Do(ctx, "mset", "{t}odd")
	spread := pipe.MSet(ctx, "s1", "1", "s2", "2", "s3", "3", "s4", "4") // keys on several nodes
	spread2 := pipe.MSet(ctx, "s1", "10", "s5", "5")
	get := pipe.Get(ctx, "{t}same") // a read after the run sees it
	if _, err := pipe.Exec(ctx); err == nil {
		t.Fatal("pipeline Exec: no error, want the oversized value's and the arity error")
	}
	for i, m := range msets {
		if i == n/2 {
			wantErr(t, "MSET of an oversized value", m.Err(), "ERR")
			continue
		}
		if m.Err() != nil {
			t.Errorf("MSET %d: %v", i, m.Err())
		}
	}
	wantErr(t, "MSET with an odd number of arguments", arity.Err(), "ERR wrong number of arguments")
	for _, m := range []*redis.StatusCmd{spread, spread2} {
		if m.Err() != nil {
			t.Errorf("MSET over several nodes: %v", m.Err())
		}
	}
	if v, err := get.Result(); err != nil || v != fmt.Sprint(n-1) {
		t.Errorf("GET {t}same = %q, %v; want the last MSET's %d", v, err, n-1)
	}
	for i := range n {
		got, err := rdb.MGet(ctx, fmt.Sprint("{t}a", i), fmt.Sprint("{t}b", i)).Result()
		if err != nil || len(got) != 2 || got[0] != fmt.Sprint("a", i) || got[1] != fmt.Sprint("b", i) {
			t.Errorf("MGET of MSET %d's keys = %v, %v", i, got, err)
		}
	}
	if got, err := rdb.Exists(ctx, "{t}refused-a", "{t}refused-b").Result(); err != nil || got != 0 {
		t.Errorf("the refused MSET's keys: EXISTS = %d, %v; want 0 (nothing written)", got, err)
	}
	got, err := rdb.MGet(ctx, "s1", "s2", "s3", "s4", "s5").Result()
	if err != nil || fmt.Sprint(got) != "[10 2 3 4 5]" {
		t.Errorf("MGET s1..s5 = %v, %v; want [10 2 3 4 5]", got, err)
	}

	st := srv.Stats()
	if runs, cmds := st.Runs-before.Runs, st.RunCommands-before.RunCommands; runs == 0 || cmds < n/2 {
		t.Errorf("%d runs answering %d commands: the MSETs formed no runs", runs, cmds)
	}
	t.Logf("%d runs answered %d commands", st.Runs-before.Runs, st.RunCommands-before.RunCommands)
}
