package zeppelin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// This file tests the data API of issue 5 end to end: every client
// operation on replicated in-process clusters, checked through the client
// and by reading every replica's store (testcluster.Dump).

// apiCluster starts a 3-member cluster (every member meta+data) with one
// table of parts partitions and replication factor 3, served by every
// master.
func apiCluster(t *testing.T, table string, parts int, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	opts.Servers = 3
	c := testcluster.New(t, opts)
	c.CreateTable(table, client.TableOptions{Partitions: parts, Replication: 3})
	return c
}

// bs is shorthand for a byte slice of a string.
func bs(s string) []byte { return []byte(s) }

// wantIs fails the test unless errors.Is(err, target).
func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// wantValue fails the test unless key holds want, read through tb.
func wantValue(t *testing.T, ctx context.Context, tb *client.Table, key, want string) {
	t.Helper()
	got, err := tb.Get(ctx, bs(key))
	if err != nil {
		t.Errorf("Get(%q): %v, want %q", key, err, want)
		return
	}
	if string(got) != want {
		t.Errorf("Get(%q) = %q, want %q", key, got, want)
	}
}

// wantMissing fails the test unless key does not exist, read through tb.
func wantMissing(t *testing.T, ctx context.Context, tb *client.Table, key string) {
	t.Helper()
	if got, err := tb.Get(ctx, bs(key)); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get(%q) = %q, %v, want ErrNotFound", key, got, err)
	}
}

// wantTTL fails the test unless key's remaining TTL is in (lo, hi].
func wantTTL(t *testing.T, ctx context.Context, tb *client.Table, key string, lo, hi time.Duration) {
	t.Helper()
	got, err := tb.TTL(ctx, bs(key))
	if err != nil {
		t.Errorf("TTL(%q): %v, want a TTL in (%v, %v]", key, err, lo, hi)
		return
	}
	if got <= lo || got > hi {
		t.Errorf("TTL(%q) = %v, want in (%v, %v]", key, got, lo, hi)
	}
}

// tableOf returns table's entry in the meta leader's map.
func tableOf(t *testing.T, c *testcluster.Cluster, table string) *placement.Table {
	t.Helper()
	m := c.LeaderMap()
	if m == nil {
		t.Fatalf("no meta leader")
	}
	tbl := m.Table(table)
	if tbl == nil {
		t.Fatalf("table %s not in the leader's map", table)
	}
	return tbl
}

// masterOf returns the partition of key in table and the index of the
// member that masters it in the meta leader's map.
func masterOf(t *testing.T, c *testcluster.Cluster, table string, key []byte) (placement.PartitionID, int) {
	t.Helper()
	tbl := tableOf(t, c, table)
	part := placement.PartitionOf(key, len(tbl.Partitions))
	i := c.Index(tbl.Partitions[part].Master)
	if i < 0 {
		t.Fatalf("partition %d of %s has no known master (%q)", part, table, tbl.Partitions[part].Master)
	}
	return part, i
}

// readReplica reads key straight from member i's replica of its partition,
// bypassing the client and the master check: the replica's own view, with
// the absolute expiry (Unix ms, 0 = none). It is safe to call from any
// goroutine.
func readReplica(c *testcluster.Cluster, i int, table string, key []byte) (val []byte, expireAt int64, found bool, err error) {
	m := c.LeaderMap()
	if m == nil {
		return nil, 0, false, errors.New("no meta leader")
	}
	tbl := m.Table(table)
	if tbl == nil {
		return nil, 0, false, fmt.Errorf("table %s not in the leader's map", table)
	}
	srv := c.Server(i)
	if srv == nil || srv.Node() == nil {
		return nil, 0, false, fmt.Errorf("member %d is not running a data node", i)
	}
	part := placement.PartitionOf(key, len(tbl.Partitions))
	r, err := srv.Node().Store().Replica(uint32(tbl.ID), uint32(part))
	if err != nil {
		return nil, 0, false, fmt.Errorf("member %d: replica %d/%d: %w", i, tbl.ID, part, err)
	}
	val, expireAt, found, err = r.Get(key)
	if err != nil {
		return nil, 0, false, fmt.Errorf("member %d: read %q from its replica: %w", i, key, err)
	}
	return val, expireAt, found, nil
}

// replicaRead is readReplica that fails the test on error.
func replicaRead(t *testing.T, c *testcluster.Cluster, i int, table string, key []byte) (val []byte, expireAt int64, found bool) {
	t.Helper()
	val, expireAt, found, err := readReplica(c, i, table, key)
	if err != nil {
		t.Fatal(err)
	}
	return val, expireAt, found
}

// positions waits until table has converged, then returns the (gen, seq)
// of every running replica of every partition, read from the stores. Equal
// positions before and after a call prove it logged nothing.
func positions(t *testing.T, c *testcluster.Cluster, table string) []string {
	t.Helper()
	c.WaitConverged(table, 10*time.Second)
	var out []string
	for _, p := range tableOf(t, c, table).Partitions {
		ds, err := c.Dump(table, p.ID)
		if err != nil {
			t.Fatalf("dump partition %d: %v", p.ID, err)
		}
		for _, d := range ds {
			out = append(out, fmt.Sprintf("p%d@%s=%d/%d", p.ID, d.Node, d.Gen, d.Seq))
		}
	}
	return out
}

// partitionSeq returns the seq of the master's replica of part.
func partitionSeq(t *testing.T, c *testcluster.Cluster, table string, part placement.PartitionID) uint64 {
	t.Helper()
	master := tableOf(t, c, table).Partitions[part].Master
	ds, err := c.Dump(table, part)
	if err != nil {
		t.Fatalf("dump partition %d: %v", part, err)
	}
	for _, d := range ds {
		if d.Node == master {
			return d.Seq
		}
	}
	t.Fatalf("partition %d: master %s not running", part, master)
	return 0
}

// nowMs is the current time in Unix milliseconds, the clock expiries use.
func nowMs() int64 { return time.Now().UnixMilli() }

// watchExpiry polls member i's replica of key until the key is gone, and
// checks that it expires on time: present whenever read before expireAt,
// absent only when read at or after it, and gone within 5 s of expireAt.
// It returns what went wrong and is safe to call from any goroutine.
func watchExpiry(c *testcluster.Cluster, i int, table string, key []byte, expireAt int64) error {
	var bad error
	err := testcluster.Poll(time.Until(time.UnixMilli(expireAt))+5*time.Second, func() error {
		before := nowMs()
		_, exp, found, err := readReplica(c, i, table, key)
		after := nowMs()
		switch {
		case err != nil:
			return err
		case found && exp != expireAt:
			bad = fmt.Errorf("member %d: %q expires at %d, want %d", i, key, exp, expireAt)
		case found && before >= expireAt:
			bad = fmt.Errorf("member %d: %q still present at %d, %d ms after its expiry %d", i, key, before, before-expireAt, expireAt)
		case !found && after < expireAt:
			bad = fmt.Errorf("member %d: %q gone at %d, %d ms before its expiry %d", i, key, after, expireAt-after, expireAt)
		case found:
			return fmt.Errorf("member %d: %q not expired yet (expiry %d, now %d)", i, key, expireAt, before)
		}
		return nil
	})
	if bad != nil {
		return bad
	}
	return err
}

// watchExpiries runs watchExpiry for every (member, key) pair in parallel
// and fails the test with every error.
func watchExpiries(t *testing.T, c *testcluster.Cluster, members []int, table string, exps map[string]int64) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, i := range members {
		for k, exp := range exps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := watchExpiry(c, i, table, bs(k), exp); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
}

// expiryOnAll returns the expiry of key as every running replica holds it,
// failing the test unless they all hold the key with the same expiry.
func expiryOnAll(t *testing.T, c *testcluster.Cluster, table string, key []byte) int64 {
	t.Helper()
	tbl := tableOf(t, c, table)
	p := tbl.Partitions[placement.PartitionOf(key, len(tbl.Partitions))]
	var want int64 = -1
	for _, n := range p.Replicas() {
		i := c.Index(n)
		if c.Server(i) == nil {
			continue
		}
		_, exp, found := replicaRead(t, c, i, table, key)
		if !found {
			t.Fatalf("replica on %s: %q missing", n, key)
		}
		if want >= 0 && exp != want {
			t.Fatalf("replica on %s: %q expires at %d, another replica at %d", n, key, exp, want)
		}
		want = exp
	}
	return want
}

func TestDataAPIEveryOperation(t *testing.T) {
	c := apiCluster(t, "api", 8, testcluster.Options{})
	ctx := ctxFor(t, 60*time.Second)
	tb := c.NewClient("app").Table("api")
	local := c.Client(1).Table("api") // a member's in-process client

	t.Run("SetGetDelete", func(t *testing.T) {
		if err := tb.Set(ctx, bs("a"), bs("1")); err != nil {
			t.Fatalf("Set(a): %v", err)
		}
		wantValue(t, ctx, tb, "a", "1")
		wantValue(t, ctx, local, "a", "1")
		if err := tb.Set(ctx, bs("a"), bs("2")); err != nil {
			t.Fatalf("overwrite Set(a): %v", err)
		}
		wantValue(t, ctx, tb, "a", "2")
		if ok, err := tb.Exists(ctx, bs("a")); err != nil || !ok {
			t.Errorf("Exists(a) = %v, %v, want true", ok, err)
		}
		if ok, err := tb.Exists(ctx, bs("nope")); err != nil || ok {
			t.Errorf("Exists(nope) = %v, %v, want false", ok, err)
		}
		wantMissing(t, ctx, tb, "nope")
		// An empty value is a value.
		if err := tb.Set(ctx, bs("empty"), nil); err != nil {
			t.Fatal(err)
		}
		if got, err := tb.Get(ctx, bs("empty")); err != nil || got == nil || len(got) != 0 {
			t.Errorf("Get(empty) = %q (nil %v), %v, want a non-nil empty value", got, got == nil, err)
		}
		if ok, err := tb.Delete(ctx, bs("a")); err != nil || !ok {
			t.Errorf("Delete(a) = %v, %v, want true", ok, err)
		}
		if ok, err := tb.Delete(ctx, bs("a")); err != nil || ok {
			t.Errorf("second Delete(a) = %v, %v, want false", ok, err)
		}
		wantMissing(t, ctx, tb, "a")
	})

	t.Run("SetConditions", func(t *testing.T) {
		if ok, err := tb.SetIf(ctx, bs("nx"), bs("first"), client.IfAbsent()); err != nil || !ok {
			t.Errorf("IfAbsent on a missing key = %v, %v, want true", ok, err)
		}
		if ok, err := tb.SetIf(ctx, bs("nx"), bs("second"), client.IfAbsent()); err != nil || ok {
			t.Errorf("IfAbsent on an existing key = %v, %v, want false", ok, err)
		}
		wantValue(t, ctx, tb, "nx", "first")
		if ok, err := tb.SetIf(ctx, bs("xx"), bs("v"), client.IfPresent()); err != nil || ok {
			t.Errorf("IfPresent on a missing key = %v, %v, want false", ok, err)
		}
		wantMissing(t, ctx, tb, "xx")
		if ok, err := tb.SetIf(ctx, bs("nx"), bs("third"), client.IfPresent()); err != nil || !ok {
			t.Errorf("IfPresent on an existing key = %v, %v, want true", ok, err)
		}
		wantValue(t, ctx, tb, "nx", "third")
		if ok, err := tb.SetIf(ctx, bs("nx"), bs("fourth")); err != nil || !ok {
			t.Errorf("SetIf without a condition = %v, %v, want true", ok, err)
		}
		wantValue(t, ctx, tb, "nx", "fourth")
		// Set cannot report whether a condition held: it refuses one and
		// writes nothing.
		for _, o := range []client.SetOption{client.IfAbsent(), client.IfPresent()} {
			if err := tb.Set(ctx, bs("nx"), bs("fifth"), o); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "SetIf") {
				t.Errorf("Set with a condition: %v, want ErrInvalid naming SetIf", err)
			}
		}
		if err := tb.Set(ctx, bs("cond-new"), bs("v"), client.IfAbsent()); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Set IfAbsent of a new key: %v, want ErrInvalid", err)
		}
		wantValue(t, ctx, tb, "nx", "fourth")
		wantMissing(t, ctx, tb, "cond-new")
	})

	t.Run("Strings", func(t *testing.T) {
		for key, tt := range map[string]*client.Table{"str-remote": tb, "str-local": local} {
			if _, err := tt.GetString(ctx, key); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("GetString of a missing key: %v, want ErrNotFound", err)
			}
			if err := tt.SetString(ctx, key, "héllo"); err != nil {
				t.Fatalf("SetString: %v", err)
			}
			if got, err := tt.GetString(ctx, key); err != nil || got != "héllo" {
				t.Errorf("GetString = %q, %v, want %q", got, err, "héllo")
			}
			// The string and the []byte API see the same key and value.
			wantValue(t, ctx, tb, key, "héllo")
			if err := tt.SetString(ctx, key, "", client.WithTTL(time.Hour)); err != nil {
				t.Fatalf("SetString with a TTL: %v", err)
			}
			if got, err := tt.GetString(ctx, key); err != nil || got != "" {
				t.Errorf("GetString of an empty value = %q, %v, want \"\", nil", got, err)
			}
			wantTTL(t, ctx, tb, key, 59*time.Minute, time.Hour)
			if err := tt.SetString(ctx, key, "x", client.IfPresent()); !errors.Is(err, client.ErrInvalid) {
				t.Errorf("SetString with a condition: %v, want ErrInvalid", err)
			}
		}
	})

	t.Run("SetTTLOptions", func(t *testing.T) {
		if err := tb.Set(ctx, bs("ttl"), bs("v1"), client.WithTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantTTL(t, ctx, tb, "ttl", 59*time.Minute, time.Hour)
		// KeepTTL keeps the expiry, to the millisecond.
		c.WaitConverged("api", 10*time.Second)
		exp1 := expiryOnAll(t, c, "api", bs("ttl"))
		if err := tb.Set(ctx, bs("ttl"), bs("v2"), client.KeepTTL()); err != nil {
			t.Fatal(err)
		}
		wantValue(t, ctx, tb, "ttl", "v2")
		c.WaitConverged("api", 10*time.Second)
		if exp2 := expiryOnAll(t, c, "api", bs("ttl")); exp2 != exp1 {
			t.Errorf("after Set with KeepTTL the key expires at %d, want %d", exp2, exp1)
		}
		// A TTL given with KeepTTL wins.
		if err := tb.Set(ctx, bs("ttl"), bs("v3"), client.KeepTTL(), client.WithTTL(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		wantTTL(t, ctx, tb, "ttl", 9*time.Minute, 10*time.Minute)
		// A plain Set clears it.
		if err := tb.Set(ctx, bs("ttl"), bs("v4")); err != nil {
			t.Fatal(err)
		}
		if got, err := tb.TTL(ctx, bs("ttl")); err != nil || got != client.NoTTL {
			t.Errorf("TTL after a plain Set = %v, %v, want NoTTL", got, err)
		}
		// KeepTTL on a missing key sets no expiry.
		if err := tb.Set(ctx, bs("keep-new"), bs("v"), client.KeepTTL()); err != nil {
			t.Fatal(err)
		}
		if got, err := tb.TTL(ctx, bs("keep-new")); err != nil || got != client.NoTTL {
			t.Errorf("TTL after KeepTTL on a new key = %v, %v, want NoTTL", got, err)
		}
		// A conditional set with a TTL.
		if ok, err := tb.SetIf(ctx, bs("nx-ttl"), bs("v"), client.IfAbsent(), client.WithTTL(time.Hour)); err != nil || !ok {
			t.Errorf("IfAbsent with TTL = %v, %v, want true", ok, err)
		}
		wantTTL(t, ctx, tb, "nx-ttl", 59*time.Minute, time.Hour)
	})

	t.Run("SetGet", func(t *testing.T) {
		r, err := tb.SetGet(ctx, bs("sg"), bs("one"))
		if err != nil || !r.Written || r.Existed || r.Old != nil {
			t.Errorf("SetGet on a missing key = %+v, %v, want written, not existed, Old nil", r, err)
		}
		r, err = tb.SetGet(ctx, bs("sg"), bs("two"))
		if err != nil || !r.Written || !r.Existed || string(r.Old) != "one" {
			t.Errorf("SetGet on an existing key = %+v, %v, want written, Old %q", r, err, "one")
		}
		r, err = tb.SetGet(ctx, bs("sg"), bs("three"), client.IfAbsent())
		if err != nil || r.Written || !r.Existed || string(r.Old) != "two" {
			t.Errorf("SetGet IfAbsent on an existing key = %+v, %v, want not written, Old %q", r, err, "two")
		}
		wantValue(t, ctx, tb, "sg", "two")
		r, err = tb.SetGet(ctx, bs("empty"), bs("now-full"))
		if err != nil || !r.Existed || r.Old == nil || len(r.Old) != 0 {
			t.Errorf("SetGet over an empty value = %+v (Old nil %v), %v, want Existed with a non-nil empty Old", r, r.Old == nil, err)
		}
	})

	t.Run("ExpireTTLPersist", func(t *testing.T) {
		if err := tb.Set(ctx, bs("e"), bs("v")); err != nil {
			t.Fatal(err)
		}
		if got, err := tb.TTL(ctx, bs("e")); err != nil || got != client.NoTTL {
			t.Errorf("TTL of a key without expiry = %v, %v, want NoTTL", got, err)
		}
		if _, err := tb.TTL(ctx, bs("missing")); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("TTL of a missing key: got error %v, want ErrNotFound", err)
		}
		if ok, err := tb.Expire(ctx, bs("e"), 30*time.Minute); err != nil || !ok {
			t.Errorf("Expire(e, 30m) = %v, %v, want true", ok, err)
		}
		wantTTL(t, ctx, tb, "e", 29*time.Minute, 30*time.Minute)
		if ok, err := tb.Expire(ctx, bs("missing"), time.Minute); err != nil || ok {
			t.Errorf("Expire of a missing key = %v, %v, want false", ok, err)
		}
		wantMissing(t, ctx, tb, "missing")
		if ok, err := tb.Persist(ctx, bs("e")); err != nil || !ok {
			t.Errorf("Persist of a key with expiry = %v, %v, want true", ok, err)
		}
		if got, err := tb.TTL(ctx, bs("e")); err != nil || got != client.NoTTL {
			t.Errorf("TTL after Persist = %v, %v, want NoTTL", got, err)
		}
		if ok, err := tb.Persist(ctx, bs("e")); err != nil || ok {
			t.Errorf("Persist of a key without expiry = %v, %v, want false", ok, err)
		}
		if ok, err := tb.Persist(ctx, bs("missing")); err != nil || ok {
			t.Errorf("Persist of a missing key = %v, %v, want false", ok, err)
		}
		// A TTL ≤ 0 deletes, as Redis EXPIRE does.
		if ok, err := tb.Expire(ctx, bs("e"), 0); err != nil || !ok {
			t.Errorf("Expire(e, 0) = %v, %v, want true", ok, err)
		}
		wantMissing(t, ctx, tb, "e")
		if err := tb.Set(ctx, bs("e"), bs("v")); err != nil {
			t.Fatal(err)
		}
		if ok, err := tb.Expire(ctx, bs("e"), -time.Second); err != nil || !ok {
			t.Errorf("Expire(e, -1s) = %v, %v, want true", ok, err)
		}
		wantMissing(t, ctx, tb, "e")
		if ok, err := tb.Expire(ctx, bs("e"), -time.Second); err != nil || ok {
			t.Errorf("Expire(missing, -1s) = %v, %v, want false", ok, err)
		}
	})

	t.Run("Incr", func(t *testing.T) {
		for i, want := range []int64{1, 2, 3} {
			if got, err := tb.Incr(ctx, bs("ctr")); err != nil || got != want {
				t.Errorf("Incr #%d = %d, %v, want %d", i+1, got, err, want)
			}
		}
		if got, err := tb.IncrBy(ctx, bs("ctr"), 40); err != nil || got != 43 {
			t.Errorf("IncrBy(40) = %d, %v, want 43", got, err)
		}
		if got, err := tb.IncrBy(ctx, bs("ctr"), -50); err != nil || got != -7 {
			t.Errorf("IncrBy(-50) = %d, %v, want -7", got, err)
		}
		wantValue(t, ctx, tb, "ctr", "-7")
		if got, err := tb.IncrBy(ctx, bs("ctr-new"), -5); err != nil || got != -5 {
			t.Errorf("IncrBy(-5) on a missing key = %d, %v, want -5", got, err)
		}
		// Incr keeps the expiry.
		if err := tb.Set(ctx, bs("ctr-ttl"), bs("10"), client.WithTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		c.WaitConverged("api", 10*time.Second)
		exp := expiryOnAll(t, c, "api", bs("ctr-ttl"))
		if got, err := tb.Incr(ctx, bs("ctr-ttl")); err != nil || got != 11 {
			t.Errorf("Incr of a key with TTL = %d, %v, want 11", got, err)
		}
		c.WaitConverged("api", 10*time.Second)
		if got := expiryOnAll(t, c, "api", bs("ctr-ttl")); got != exp {
			t.Errorf("after Incr the key expires at %d, want %d as before", got, exp)
		}
	})

	t.Run("MultiKey", func(t *testing.T) {
		const n = 60
		kvs := make([]client.KV, n)
		keys := make([][]byte, n)
		for i := range kvs {
			keys[i] = fmt.Appendf(nil, "m%02d", i)
			kvs[i] = client.KV{Key: keys[i], Value: fmt.Appendf(nil, "mv%02d", i)}
		}
		kvs[7].Value = nil // an empty value
		if err := tb.MSet(ctx, kvs); err != nil {
			t.Fatalf("MSet: %v", err)
		}
		query := append(slices.Clone(keys), bs("m-missing"))
		res, err := tb.MGet(ctx, query)
		if err != nil {
			t.Fatalf("MGet: %v", err)
		}
		if len(res) != len(query) {
			t.Fatalf("MGet returned %d results for %d keys", len(res), len(query))
		}
		for i, r := range res[:n] {
			if !r.Found || !bytes.Equal(r.Value, kvs[i].Value) {
				t.Errorf("MGet %s = %q found=%v, want %q", keys[i], r.Value, r.Found, kvs[i].Value)
			}
		}
		if r := res[7]; !r.Found || r.Value == nil || len(r.Value) != 0 {
			t.Errorf("MGet of an empty value = %+v, want Found with a non-nil empty value", r)
		}
		if r := res[n]; r.Found || r.Value != nil {
			t.Errorf("MGet of a missing key = %+v, want not Found, nil value", r)
		}
		if res, err := tb.MGet(ctx, [][]byte{keys[40], keys[40]}); err != nil || len(res) != 2 || !res[0].Found || !bytes.Equal(res[0].Value, res[1].Value) {
			t.Errorf("MGet of one key twice = %+v, %v, want the value twice", res, err)
		}
		ex, err := tb.MExists(ctx, [][]byte{keys[0], bs("m-missing"), keys[7]})
		if err != nil || !slices.Equal(ex, []bool{true, false, true}) {
			t.Errorf("MExists = %v, %v, want [true false true]", ex, err)
		}
		// MSet with options applies them to every pair.
		if err := tb.MSet(ctx, []client.KV{{Key: bs("m00"), Value: bs("new")}, {Key: bs("m-nx"), Value: bs("nx")}}, client.IfAbsent()); err != nil {
			t.Fatalf("MSet IfAbsent: %v", err)
		}
		wantValue(t, ctx, tb, "m00", "mv00")
		wantValue(t, ctx, tb, "m-nx", "nx")
		if err := tb.MSet(ctx, kvs[:2], client.WithTTL(time.Hour)); err != nil {
			t.Fatalf("MSet WithTTL: %v", err)
		}
		wantTTL(t, ctx, tb, "m01", 59*time.Minute, time.Hour)

		del := append(slices.Clone(keys[:30]), bs("m-missing"), bs("m-missing-2"))
		if got, err := tb.MDelete(ctx, del); err != nil || got != 30 {
			t.Errorf("MDelete of 30 existing and 2 missing keys = %d, %v, want 30", got, err)
		}
		res, err = tb.MGet(ctx, keys)
		if err != nil {
			t.Fatalf("MGet after MDelete: %v", err)
		}
		for i, r := range res {
			if r.Found != (i >= 30) {
				t.Errorf("after MDelete, %s found=%v, want %v", keys[i], r.Found, i >= 30)
			}
		}
		// Empty requests are no-ops.
		if res, err := tb.MGet(ctx, nil); err != nil || len(res) != 0 {
			t.Errorf("MGet(nil) = %v, %v, want no results", res, err)
		}
		if err := tb.MSet(ctx, nil); err != nil {
			t.Errorf("MSet(nil): %v", err)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		for _, k := range []string{"{u1}old", "{u1}gone"} {
			if err := tb.Set(ctx, bs(k), bs("x")); err != nil {
				t.Fatal(err)
			}
		}
		part, _ := masterOf(t, c, "api", bs("{u1}"))
		c.WaitConverged("api", 10*time.Second)
		seq := partitionSeq(t, c, "api", part)
		res, err := tb.Batch(bs("u1")).
			Set(bs("{u1}name"), bs("ann"), client.WithTTL(time.Hour)).
			Set(bs("{u1}city"), bs("paris")).
			Delete(bs("{u1}old")).
			IncrBy(bs("{u1}visits"), 5).
			Expire(bs("{u1}city"), 30*time.Minute).
			Persist(bs("{u1}name")).
			Delete(bs("{u1}none")).
			Expire(bs("{u1}none"), time.Minute).
			Expire(bs("{u1}gone"), 0).
			Commit(ctx)
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		want := []client.BatchResult{{Done: true}, {Done: true}, {Done: true}, {Int: 5}, {Done: true}, {Done: true}, {}, {}, {Done: true}}
		if !slices.Equal(res, want) {
			t.Errorf("batch results = %+v, want %+v", res, want)
		}
		wantValue(t, ctx, tb, "{u1}name", "ann")
		if got, err := tb.TTL(ctx, bs("{u1}name")); err != nil || got != client.NoTTL {
			t.Errorf("TTL of a key set with a TTL then persisted in one batch = %v, %v, want NoTTL", got, err)
		}
		wantValue(t, ctx, tb, "{u1}city", "paris")
		wantTTL(t, ctx, tb, "{u1}city", 29*time.Minute, 30*time.Minute)
		wantMissing(t, ctx, tb, "{u1}old")
		wantMissing(t, ctx, tb, "{u1}gone")
		wantMissing(t, ctx, tb, "{u1}none")
		wantValue(t, ctx, tb, "{u1}visits", "5")
		if got := partitionSeq(t, c, "api", part); got != seq+1 {
			t.Errorf("the batch advanced its partition from seq %d to %d, want one record (seq %d)", seq, got, seq+1)
		}
		// A key without a hashtag joins a batch when it is the tag itself.
		if _, err := tb.Batch(nil).Set(bs("u1"), bs("plain")).IncrBy(bs("{u1}visits"), 1).Commit(ctx); err != nil {
			t.Errorf("batch of key u1 and {u1}visits: %v", err)
		}
		wantValue(t, ctx, tb, "u1", "plain")
		wantValue(t, ctx, tb, "{u1}visits", "6")
		// An empty batch does nothing.
		if res, err := tb.Batch(bs("u1")).Commit(ctx); err != nil || res != nil {
			t.Errorf("empty batch = %v, %v, want nil, nil", res, err)
		}
	})

	t.Run("ListAndDeleteTag", func(t *testing.T) {
		var kvs []client.KV
		for i := range 25 {
			kvs = append(kvs, client.KV{Key: fmt.Appendf(nil, "{list}k%02d", i), Value: fmt.Appendf(nil, "v%02d", i)})
		}
		// Keys that share the partition or the prefix but not the hashtag.
		kvs = append(kvs, client.KV{Key: bs("list"), Value: bs("plain")}, client.KV{Key: bs("{lis}t"), Value: bs("x")}, client.KV{Key: bs("{list2}k"), Value: bs("x")})
		if err := tb.MSet(ctx, kvs); err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{10, 5, 25, 100} {
			var got []string
			var after []byte
			pages := 0
			for {
				page, err := tb.List(ctx, bs("list"), client.ListOptions{After: after, Limit: limit, Values: true})
				if err != nil {
					t.Fatalf("List limit %d after %q: %v", limit, after, err)
				}
				pages++
				if len(page.KVs) > limit {
					t.Fatalf("List limit %d returned %d keys", limit, len(page.KVs))
				}
				for _, kv := range page.KVs {
					got = append(got, string(kv.Key)+"="+string(kv.Value))
				}
				if !page.More {
					break
				}
				if len(page.KVs) == 0 {
					t.Fatalf("List limit %d: an empty page with More set", limit)
				}
				after = page.KVs[len(page.KVs)-1].Key
			}
			var want []string
			for i := range 25 {
				want = append(want, fmt.Sprintf("{list}k%02d=v%02d", i, i))
			}
			if !slices.Equal(got, want) {
				t.Errorf("List limit %d = %v, want %v", limit, got, want)
			}
			if wantPages := (25 + limit - 1) / limit; pages != wantPages {
				t.Errorf("List limit %d took %d pages, want %d", limit, pages, wantPages)
			}
		}
		page, err := tb.List(ctx, bs("list"), client.ListOptions{After: bs("{list}k20"), Limit: 2})
		if err != nil || len(page.KVs) != 2 || string(page.KVs[0].Key) != "{list}k21" || page.KVs[0].Value != nil || !page.More {
			t.Errorf("List after k20, limit 2, without values = %+v, %v, want k21, k22 without values, More", page, err)
		}
		if page, err := tb.List(ctx, bs("nothing"), client.ListOptions{}); err != nil || len(page.KVs) != 0 || page.More {
			t.Errorf("List of an unused tag = %+v, %v, want empty", page, err)
		}
		if n, err := tb.DeleteTag(ctx, bs("list")); err != nil || n != 25 {
			t.Errorf("DeleteTag = %d, %v, want 25", n, err)
		}
		if page, err := tb.List(ctx, bs("list"), client.ListOptions{}); err != nil || len(page.KVs) != 0 {
			t.Errorf("List after DeleteTag = %+v, %v, want empty", page, err)
		}
		if n, err := tb.DeleteTag(ctx, bs("list")); err != nil || n != 0 {
			t.Errorf("second DeleteTag = %d, %v, want 0", n, err)
		}
		wantValue(t, ctx, tb, "list", "plain")
		wantValue(t, ctx, tb, "{lis}t", "x")
		wantValue(t, ctx, tb, "{list2}k", "x")
	})

	// Every replica holds the same contents, expiries and (gen, seq).
	c.WaitConverged("api", 20*time.Second)

	t.Run("Flush", func(t *testing.T) {
		if err := tb.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for _, k := range []string{"nx", "ttl", "sg", "ctr", "m59", "{u1}name", "list", "empty"} {
			wantMissing(t, ctx, tb, k)
		}
		c.WaitConverged("api", 20*time.Second)
		for _, p := range tableOf(t, c, "api").Partitions {
			ds, err := c.Dump("api", p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 3 {
				t.Errorf("partition %d: %d replicas running, want 3", p.ID, len(ds))
			}
			for _, d := range ds {
				if len(d.Entries) != 0 {
					t.Errorf("partition %d on %s holds %d keys after Flush, want 0", p.ID, d.Node, len(d.Entries))
				}
			}
		}
		// The table works after a flush.
		if err := tb.Set(ctx, bs("after"), bs("flush")); err != nil {
			t.Fatal(err)
		}
		wantValue(t, ctx, tb, "after", "flush")
		c.WaitConverged("api", 20*time.Second)
	})
}

func TestDataAPITTLExpiresOnEveryReplica(t *testing.T) {
	c := apiCluster(t, "ttl", 4, testcluster.Options{})
	ctx := ctxFor(t, 60*time.Second)
	tb := c.NewClient("app").Table("ttl")

	// Expiries set by Set, Batch and Expire, with a key that stays.
	if err := tb.Set(ctx, bs("short"), bs("v"), client.WithTTL(2500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Batch(bs("tag")).
		Set(bs("{tag}short"), bs("v"), client.WithTTL(2000*time.Millisecond)).
		Set(bs("{tag}stays"), bs("v")).
		Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(ctx, bs("expire"), bs("v")); err != nil {
		t.Fatal(err)
	}
	if ok, err := tb.Expire(ctx, bs("expire"), 2200*time.Millisecond); err != nil || !ok {
		t.Fatalf("Expire = %v, %v, want true", ok, err)
	}
	c.WaitConverged("ttl", 10*time.Second)
	keys := []string{"short", "{tag}short", "expire"}
	exps := make(map[string]int64)
	for _, k := range keys {
		exps[k] = expiryOnAll(t, c, "ttl", bs(k))
	}

	// Each replica, master and slaves, drops each key exactly when it
	// expires.
	watchExpiries(t, c, []int{0, 1, 2}, "ttl", exps)

	// Expired keys are absent for every operation.
	for _, k := range keys {
		wantMissing(t, ctx, tb, k)
		if ok, err := tb.Exists(ctx, bs(k)); err != nil || ok {
			t.Errorf("Exists(%q) after expiry = %v, %v, want false", k, ok, err)
		}
		if _, err := tb.TTL(ctx, bs(k)); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("TTL(%q) after expiry: got %v, want ErrNotFound", k, err)
		}
	}
	res, err := tb.MGet(ctx, [][]byte{bs("short"), bs("{tag}stays")})
	if err != nil || res[0].Found || !res[1].Found {
		t.Errorf("MGet after expiry = %+v, %v, want [missing, found]", res, err)
	}
	if page, err := tb.List(ctx, bs("tag"), client.ListOptions{}); err != nil || len(page.KVs) != 1 || string(page.KVs[0].Key) != "{tag}stays" {
		t.Errorf("List after expiry = %+v, %v, want only {tag}stays", page, err)
	}
	if ok, err := tb.SetIf(ctx, bs("short"), bs("again"), client.IfAbsent()); err != nil || !ok {
		t.Errorf("Set IfAbsent of an expired key = %v, %v, want true", ok, err)
	}
	if ok, err := tb.SetIf(ctx, bs("expire"), bs("again"), client.IfPresent()); err != nil || ok {
		t.Errorf("Set IfPresent of an expired key = %v, %v, want false", ok, err)
	}
	if got, err := tb.Incr(ctx, bs("{tag}short")); err != nil || got != 1 {
		t.Errorf("Incr of an expired key = %d, %v, want 1 (from 0)", got, err)
	}
	if ok, err := tb.Persist(ctx, bs("expire")); err != nil || ok {
		t.Errorf("Persist of an expired key = %v, %v, want false", ok, err)
	}
	if ok, err := tb.Delete(ctx, bs("expire")); err != nil || ok {
		t.Errorf("Delete of an expired key = %v, %v, want false", ok, err)
	}
	c.WaitConverged("ttl", 10*time.Second)
}

func TestDataAPITTLAfterFullSync(t *testing.T) {
	c := apiCluster(t, "ttl", 4, testcluster.Options{})
	ctx := ctxFor(t, 60*time.Second)
	tb := c.NewClient("app").Table("ttl")
	if err := tb.Set(ctx, bs("warm"), bs("v")); err != nil {
		t.Fatal(err)
	}
	k := bs("fs-key")
	part, master := masterOf(t, c, "ttl", k)
	leader := c.WaitMetaLeader()
	slave := -1
	for i := range c.Len() {
		if i != master && i != leader {
			slave = i
			break
		}
	}
	if slave < 0 {
		t.Fatalf("no member is neither master (%d) nor meta leader (%d)", master, leader)
	}
	c.WaitConverged("ttl", 10*time.Second)

	// Wipe the slave's store; while it is down, write the key with a TTL.
	c.Stop(slave)
	if err := os.RemoveAll(filepath.Join(c.Member(slave).Cfg.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(ctx, k, bs("v"), client.WithTTL(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, exp, found := replicaRead(t, c, master, "ttl", k)
	if !found || exp == 0 {
		t.Fatalf("master holds %q: found=%v expiry=%d, want an expiry", k, found, exp)
	}
	c.Restart(slave, true)
	c.WaitConverged("ttl", 20*time.Second)

	// The slave got the key by a full sync, with the master's absolute
	// expiry.
	tblID := tableOf(t, c, "ttl").ID
	var syncs uint64
	for _, rs := range c.Server(slave).Node().Status().Replicas {
		if rs.Table == tblID && rs.Partition == part {
			syncs = rs.FullSyncs
		}
	}
	if syncs == 0 {
		t.Errorf("the wiped slave's replica of partition %d made no full sync", part)
	}
	_, got, found := replicaRead(t, c, slave, "ttl", k)
	if !found {
		t.Fatalf("the resynced slave lacks %q (restart took %d ms of the 5 s TTL)", k, nowMs()-(exp-5000))
	}
	if got != exp {
		t.Errorf("the resynced slave expires %q at %d, the master at %d", k, got, exp)
	}
	watchExpiries(t, c, []int{master, slave}, "ttl", map[string]int64{string(k): exp})
	c.WaitConverged("ttl", 10*time.Second)
}

func TestDataAPITTLSurvivesClusterRestart(t *testing.T) {
	c := apiCluster(t, "ttl", 4, testcluster.Options{})
	ctx := ctxFor(t, 90*time.Second)
	tb := c.NewClient("app").Table("ttl")
	if err := tb.Set(ctx, bs("long"), bs("v"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(ctx, bs("short"), bs("v"), client.WithTTL(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(ctx, bs("forever"), bs("v")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged("ttl", 10*time.Second)
	longExp := expiryOnAll(t, c, "ttl", bs("long"))
	shortExp := expiryOnAll(t, c, "ttl", bs("short"))

	for i := range c.Len() {
		c.Stop(i)
	}
	for i := range c.Len() {
		c.Restart(i, false)
	}
	c.WaitReady()
	c.WaitServing("ttl")
	c.WaitConverged("ttl", 30*time.Second)

	if got := expiryOnAll(t, c, "ttl", bs("long")); got != longExp {
		t.Errorf("after restart %q expires at %d, before at %d", "long", got, longExp)
	}
	if got, err := tb.TTL(ctx, bs("forever")); err != nil || got != client.NoTTL {
		t.Errorf("TTL(forever) after restart = %v, %v, want NoTTL", got, err)
	}
	if nowMs() < shortExp {
		if got := expiryOnAll(t, c, "ttl", bs("short")); got != shortExp {
			t.Errorf("after restart %q expires at %d, before at %d", "short", got, shortExp)
		}
	}
	watchExpiries(t, c, []int{0, 1, 2}, "ttl", map[string]int64{"short": shortExp})
	wantMissing(t, ctx, tb, "short")
	wantTTL(t, ctx, tb, "long", 50*time.Minute, time.Hour)
}

// batchKeys are the keys each batch of TestDataAPIBatchAtomicUnderFault
// sets to its generation number, "n" counts the batches applied, and "odd"
// exists only after batches of odd generation.
var batchKeys = []string{"a", "b", "c", "d", "e"}

func TestDataAPIBatchAtomicUnderFault(t *testing.T) {
	const parts = 8
	c := apiCluster(t, "batch", parts, testcluster.Options{})
	ctx := ctxFor(t, 90*time.Second)

	// Hashtags whose partitions the victim masters; the victim is not the
	// meta leader, so only the data path fails over.
	leader := c.WaitMetaLeader()
	victim := (leader + 1) % c.Len()
	tbl := tableOf(t, c, "batch")
	var tags []string
	for i := 0; len(tags) < 8 && i < 10_000; i++ {
		tag := fmt.Sprintf("t%d", i)
		if tbl.Partitions[placement.PartitionOfTag(bs(tag), parts)].Master == placement.NodeID(c.Member(victim).Name) {
			tags = append(tags, tag)
		}
	}
	if len(tags) < 8 {
		t.Fatalf("found only %d hashtags mastered by member %d", len(tags), victim)
	}

	cl := c.NewClient("writers")
	var commits, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, tag := range tags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := cl.Table("batch")
			for gen := 1; ; gen++ {
				select {
				case <-stop:
					return
				default:
				}
				v := strconv.Itoa(gen)
				b := tb.Batch(bs(tag))
				for _, k := range batchKeys {
					b.Set(bs("{"+tag+"}"+k), bs(v), client.WithTTL(time.Hour))
				}
				b.IncrBy(bs("{"+tag+"}n"), 1)
				if gen%2 == 1 {
					b.Set(bs("{"+tag+"}odd"), bs(v))
				} else {
					b.Delete(bs("{" + tag + "}odd"))
				}
				bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := b.Commit(bctx)
				cancel()
				switch {
				case err == nil:
					commits.Add(1)
				case ctx.Err() != nil:
					return
				default:
					failures.Add(1)
				}
			}
		}()
	}
	// waitCommits waits until the writers have committed n more batches.
	waitCommits := func(n int64, why string) {
		t.Helper()
		target := commits.Load() + n
		c.Eventually(30*time.Second, func() error {
			if got := commits.Load(); got < target {
				return fmt.Errorf("%s: %d batches committed, waiting for %d", why, got, target)
			}
			return nil
		})
	}
	waitCommits(200, "before the fault")
	c.Stop(victim)
	waitCommits(200, "after the master stopped")
	c.Restart(victim, true)
	waitCommits(200, "after the old master restarted")
	close(stop)
	wg.Wait()
	var syncs uint64
	for _, rs := range c.Server(victim).Node().Status().Replicas {
		syncs += rs.FullSyncs
	}
	t.Logf("%d batches committed, %d failed; the old master made %d full syncs on its return", commits.Load(), failures.Load(), syncs)

	c.WaitServing("batch")
	c.WaitConverged("batch", 30*time.Second)
	checked := 0
	for _, tag := range tags {
		ds, err := c.Dump("batch", placement.PartitionOfTag(bs(tag), parts))
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 3 {
			t.Fatalf("tag %s: %d replicas running, want 3", tag, len(ds))
		}
		for _, d := range ds {
			vals := make(map[string]string)
			prefix := "{" + tag + "}"
			for _, e := range d.Entries {
				if k, ok := strings.CutPrefix(string(e.Key), prefix); ok {
					vals[k] = string(e.Value)
				}
			}
			checkBatchKeys(t, d.Node, tag, vals)
			checked++
		}
	}
	t.Logf("checked %d tag copies", checked)
}

// checkBatchKeys checks that one replica's keys of tag reflect whole
// batches: every key of batchKeys holds the same generation g, "odd" exists
// exactly when g is odd and then holds g, and "n" (batches applied) is at
// most g.
func checkBatchKeys(t *testing.T, node placement.NodeID, tag string, vals map[string]string) {
	t.Helper()
	g, ok := vals[batchKeys[0]]
	if !ok {
		if len(vals) != 0 {
			t.Errorf("replica on %s, tag %s: no %q but %v", node, tag, batchKeys[0], vals)
		}
		return
	}
	for _, k := range batchKeys {
		if vals[k] != g {
			t.Errorf("replica on %s, tag %s: %s=%q, %s=%q: a batch is half-applied (%v)", node, tag, batchKeys[0], g, k, vals[k], vals)
		}
	}
	gen, err := strconv.Atoi(g)
	if err != nil {
		t.Fatalf("replica on %s, tag %s: generation %q: %v", node, tag, g, err)
	}
	odd, hasOdd := vals["odd"]
	if hasOdd != (gen%2 == 1) || (hasOdd && odd != g) {
		t.Errorf("replica on %s, tag %s: generation %d but odd=%q (present %v): a batch is half-applied", node, tag, gen, odd, hasOdd)
	}
	n, err := strconv.Atoi(vals["n"])
	if err != nil || n < 1 || n > gen {
		t.Errorf("replica on %s, tag %s: n=%q, want 1..%d", node, tag, vals["n"], gen)
	}
}

func TestDataAPIConcurrentIncrAndSetIfAbsent(t *testing.T) {
	c := apiCluster(t, "race", 4, testcluster.Options{})
	ctx := ctxFor(t, 60*time.Second)
	clients := []*client.Client{c.NewClient("app"), c.Client(0), c.Client(1), c.Client(2)}

	t.Run("Incr", func(t *testing.T) {
		const workers, each = 32, 25
		got := make([][]int64, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tb := clients[w%len(clients)].Table("race")
				for range each {
					n, err := tb.Incr(ctx, bs("hot"))
					if err != nil {
						t.Errorf("worker %d: Incr: %v", w, err)
						return
					}
					got[w] = append(got[w], n)
				}
			}()
		}
		wg.Wait()
		all := slices.Concat(got...)
		slices.Sort(all)
		for i, n := range all {
			if n != int64(i+1) {
				t.Fatalf("the %d increments returned %v..., want each of 1..%d once", len(all), all[:min(len(all), i+3)], workers*each)
			}
		}
		wantValue(t, ctx, clients[0].Table("race"), "hot", strconv.Itoa(workers*each))
	})

	t.Run("SetIfAbsent", func(t *testing.T) {
		const workers, rounds = 32, 5
		for round := range rounds {
			k := fmt.Appendf(nil, "nx-%d", round)
			var wins atomic.Int32
			winner := make([]bool, workers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, err := clients[w%len(clients)].Table("race").SetIf(ctx, k, fmt.Appendf(nil, "w%d", w), client.IfAbsent())
					if err != nil {
						t.Errorf("worker %d: Set IfAbsent: %v", w, err)
						return
					}
					if ok {
						wins.Add(1)
						winner[w] = true
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d goroutines won Set IfAbsent, want exactly 1", round, n)
			}
			w := slices.Index(winner, true)
			wantValue(t, ctx, clients[0].Table("race"), string(k), fmt.Sprintf("w%d", w))
		}
	})
	c.WaitConverged("race", 20*time.Second)
}

func TestDataAPILimitsAndWrongTypes(t *testing.T) {
	limits := zeppelin.Limits{MaxKeySize: 32, MaxValueSize: 64, MaxBatchOps: 8, MaxMultiKeys: 4}
	c := apiCluster(t, "lim", 16, testcluster.Options{Configure: func(_ int, cfg *zeppelin.Config) {
		cfg.Limits = limits
	}})
	ctx := ctxFor(t, 60*time.Second)
	// A member's client checks the limits before sending; a client with
	// the default limits sends and the servers refuse.
	for _, cl := range []struct {
		name string
		c    *client.Client
	}{{"checked by the client", c.Client(0)}, {"checked by the server", c.NewClient("default-limits")}} {
		t.Run(cl.name, func(t *testing.T) {
			tb := cl.c.Table("lim")
			before := positions(t, c, "lim")
			longKey := bs(strings.Repeat("k", 33))
			bigValue := make([]byte, 65)
			// wantLimit checks that err is ErrInvalid naming limit.
			wantLimit := func(what string, err error, limit string) {
				t.Helper()
				if !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), limit) {
					t.Errorf("%s: got error %v, want ErrInvalid naming %s", what, err, limit)
				}
			}
			err := tb.Set(ctx, longKey, bs("v"))
			wantLimit("Set with a 33-byte key", err, "MaxKeySize")
			_, err = tb.Get(ctx, longKey)
			wantLimit("Get with a 33-byte key", err, "MaxKeySize")
			err = tb.Set(ctx, bs("big"), bigValue)
			wantLimit("Set with a 65-byte value", err, "MaxValueSize")
			_, err = tb.SetGet(ctx, bs("big"), bigValue)
			wantLimit("SetGet with a 65-byte value", err, "MaxValueSize")
			nine := tb.Batch(bs("b"))
			for i := range 9 {
				nine.Set(fmt.Appendf(nil, "{b}%d", i), bs("v"))
			}
			_, err = nine.Commit(ctx)
			wantLimit("Batch of 9 operations", err, "MaxBatchOps")
			_, err = tb.Batch(bs("b")).Set(bs("{b}1"), bs("v")).Set(bs("{b}2"), bigValue).Commit(ctx)
			wantLimit("Batch with a 65-byte value", err, "MaxValueSize")
			_, err = tb.List(ctx, bs("b"), client.ListOptions{Limit: 5})
			wantLimit("List with limit 5", err, "MaxMultiKeys")
			if cl.c == c.Client(0) {
				// The multi-key limit bounds the whole call, which only
				// the client sees (each server gets its share).
				keys := make([][]byte, 5)
				kvs := make([]client.KV, 5)
				for i := range keys {
					keys[i] = fmt.Appendf(nil, "mk%d", i)
					kvs[i] = client.KV{Key: keys[i], Value: bs("v")}
				}
				err = tb.MSet(ctx, kvs)
				wantLimit("MSet of 5 keys", err, "MaxMultiKeys")
				_, err = tb.MGet(ctx, keys)
				wantLimit("MGet of 5 keys", err, "MaxMultiKeys")
				_, err = tb.MExists(ctx, keys)
				wantLimit("MExists of 5 keys", err, "MaxMultiKeys")
				_, err = tb.MDelete(ctx, keys)
				wantLimit("MDelete of 5 keys", err, "MaxMultiKeys")
				// One bad pair fails the whole MSet before anything is sent.
				err = tb.MSet(ctx, []client.KV{{Key: bs("ok1"), Value: bs("v")}, {Key: bs("ok2"), Value: bigValue}})
				wantLimit("MSet with one 65-byte value", err, "MaxValueSize")
				if ex, err := tb.MExists(ctx, [][]byte{bs("ok1"), bs("ok2")}); err != nil || ex[0] || ex[1] {
					t.Errorf("after the refused MSet: MExists = %v, %v, want neither key", ex, err)
				}
			}
			// Cross-slot batches are refused before anything is sent.
			_, err = tb.Batch(bs("a")).Set(bs("{a}1"), bs("v")).Set(bs("{b}1"), bs("v")).Commit(ctx)
			wantIs(t, "Batch of {a} and {b} keys", err, client.ErrCrossSlot)
			_, err = tb.Batch(nil).Set(bs("{a}1"), bs("v")).IncrBy(bs("other"), 1).Commit(ctx)
			wantIs(t, "Batch of {a}1 and other", err, client.ErrCrossSlot)
			for _, k := range []string{"big", "{b}1", "{a}1", "{b}2", "other", "mk0"} {
				wantMissing(t, ctx, tb, k)
			}
			if after := positions(t, c, "lim"); !slices.Equal(after, before) {
				t.Errorf("refused writes moved the logs:\nbefore %v\nafter  %v", before, after)
			}
		})
	}

	t.Run("WrongTypes", func(t *testing.T) {
		tb := c.NewClient("types").Table("lim")
		values := map[string]string{
			"abc": "abc", "float": "1.5", "space": " 1", "trailing": "1 ", "plus": "+1", "zero-pad": "01",
			"empty": "", "too-big": "9223372036854775808", "max": strconv.FormatInt(math.MaxInt64, 10),
			"min": strconv.FormatInt(math.MinInt64, 10), "{t}x": "x",
		}
		for k, v := range values {
			if err := tb.Set(ctx, bs(k), bs(v)); err != nil {
				t.Fatal(err)
			}
		}
		// The extremes are reachable.
		if got, err := tb.IncrBy(ctx, bs("edge"), math.MaxInt64); err != nil || got != math.MaxInt64 {
			t.Errorf("IncrBy(MaxInt64) from 0 = %d, %v, want MaxInt64", got, err)
		}
		if got, err := tb.IncrBy(ctx, bs("edge"), math.MinInt64); err != nil || got != -1 {
			t.Errorf("IncrBy(MinInt64) from MaxInt64 = %d, %v, want -1", got, err)
		}
		if got, err := tb.IncrBy(ctx, bs("edge"), math.MinInt64+1); err != nil || got != math.MinInt64 {
			t.Errorf("IncrBy(MinInt64+1) from -1 = %d, %v, want MinInt64", got, err)
		}

		before := positions(t, c, "lim")
		for _, k := range []string{"abc", "float", "space", "trailing", "plus", "zero-pad", "empty", "too-big"} {
			got, err := tb.Incr(ctx, bs(k))
			wantIs(t, fmt.Sprintf("Incr of %q (%d)", values[k], got), err, client.ErrNotInteger)
		}
		_, err := tb.Incr(ctx, bs("max"))
		wantIs(t, "Incr of MaxInt64", err, client.ErrOverflow)
		_, err = tb.IncrBy(ctx, bs("max"), math.MaxInt64)
		wantIs(t, "IncrBy(MaxInt64) of MaxInt64", err, client.ErrOverflow)
		_, err = tb.IncrBy(ctx, bs("min"), -1)
		wantIs(t, "IncrBy(-1) of MinInt64", err, client.ErrOverflow)
		_, err = tb.IncrBy(ctx, bs("edge"), -1)
		wantIs(t, "IncrBy(-1) of MinInt64", err, client.ErrOverflow)
		// A failing increment fails its whole batch.
		_, err = tb.Batch(bs("t")).Set(bs("{t}new"), bs("1")).IncrBy(bs("{t}x"), 1).Commit(ctx)
		wantIs(t, "Batch with Incr of \"x\"", err, client.ErrNotInteger)
		_, err = tb.Batch(bs("t")).IncrBy(bs("{t}new"), 1).IncrBy(bs("{t}new"), math.MaxInt64).Commit(ctx)
		wantIs(t, "Batch of Incr 1 then MaxInt64", err, client.ErrOverflow)
		wantMissing(t, ctx, tb, "{t}new")
		for k, v := range values {
			wantValue(t, ctx, tb, k, v)
		}
		if after := positions(t, c, "lim"); !slices.Equal(after, before) {
			t.Errorf("refused increments moved the logs:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("FlushWithManyPartitions", func(t *testing.T) {
		// The table has more partitions than MaxMultiKeys: Flush is not a
		// multi-key operation, and it must empty every partition.
		tb := c.Client(0).Table("lim")
		var keys [][]byte
		for i := range 48 {
			keys = append(keys, fmt.Appendf(nil, "f%d", i))
			if err := tb.Set(ctx, keys[i], bs("v")); err != nil {
				t.Fatal(err)
			}
		}
		if err := tb.Flush(ctx); err != nil {
			t.Fatalf("Flush of a 16-partition table with MaxMultiKeys 4: %v", err)
		}
		for lo := 0; lo < len(keys); lo += 4 {
			ex, err := tb.MExists(ctx, keys[lo:lo+4])
			if err != nil || slices.Contains(ex, true) {
				t.Errorf("after Flush, MExists(%q) = %v, %v, want all false", keys[lo:lo+4], ex, err)
			}
		}
	})
	c.WaitConverged("lim", 20*time.Second)
}

func TestDataAPIMultiKeyPartialFailure(t *testing.T) {
	const parts = 8
	c := apiCluster(t, "multi", parts, testcluster.Options{})
	ctx := ctxFor(t, 60*time.Second)
	cl := c.NewClient("remote")
	tb := cl.Table("multi")

	const n = 40
	keys := make([][]byte, n)
	kvs := make([]client.KV, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "pk%02d", i)
		kvs[i] = client.KV{Key: keys[i], Value: bs("old")}
	}
	if err := tb.MSet(ctx, kvs); err != nil {
		t.Fatal(err)
	}

	// Cut the client off from one data node: the keys of the partitions it
	// masters fail, the others succeed.
	const cut = 1
	var wantFailed, wantOK []string
	for _, k := range keys {
		if _, m := masterOf(t, c, "multi", k); m == cut {
			wantFailed = append(wantFailed, string(k))
		} else {
			wantOK = append(wantOK, string(k))
		}
	}
	if len(wantFailed) == 0 || len(wantOK) == 0 {
		t.Fatalf("member %d masters %d of %d keys: need some on both sides", cut, len(wantFailed), n)
	}
	c.Hub.Block("remote", c.Member(cut).Name)

	// checkMulti checks that err is a *MultiError naming exactly the keys
	// mastered by the cut member as failed, each with ErrUnavailable.
	checkMulti := func(op string, err error) {
		t.Helper()
		var me *client.MultiError
		if !errors.As(err, &me) {
			t.Fatalf("%s: got error %v, want a *client.MultiError", op, err)
		}
		var failed, ok []string
		for _, f := range me.Failed {
			failed = append(failed, string(f.Key))
			if !errors.Is(f.Err, client.ErrUnavailable) {
				t.Errorf("%s: key %q failed with %v, want ErrUnavailable", op, f.Key, f.Err)
			}
		}
		for _, k := range me.Succeeded {
			ok = append(ok, string(k))
		}
		if !slices.Equal(failed, wantFailed) {
			t.Errorf("%s: failed keys %v, want %v", op, failed, wantFailed)
		}
		if !slices.Equal(ok, wantOK) {
			t.Errorf("%s: succeeded keys %v, want %v", op, ok, wantOK)
		}
		if !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("%s: errors.Is(err, ErrUnavailable) is false for %v", op, err)
		}
	}

	mctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	res, err := tb.MGet(mctx, keys)
	cancel()
	checkMulti("MGet", err)
	if len(res) != n {
		t.Fatalf("MGet returned %d results for %d keys", len(res), n)
	}
	for i, r := range res {
		failed := slices.Contains(wantFailed, string(keys[i]))
		if r.Found == failed || (!failed && string(r.Value) != "old") {
			t.Errorf("MGet result %s = %+v, want found=%v", keys[i], r, !failed)
		}
	}

	for i := range kvs {
		kvs[i].Value = bs("new")
	}
	mctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
	err = tb.MSet(mctx, kvs)
	cancel()
	checkMulti("MSet", err)

	c.Hub.Heal()
	res, err = tb.MGet(ctx, keys)
	if err != nil {
		t.Fatalf("MGet after healing: %v", err)
	}
	for i, r := range res {
		want := "new"
		if slices.Contains(wantFailed, string(keys[i])) {
			want = "old"
		}
		if string(r.Value) != want {
			t.Errorf("after the partial MSet, %s = %q, want %q", keys[i], r.Value, want)
		}
	}
	c.WaitConverged("multi", 20*time.Second)
}
