package zeppelin_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
)

// startExample starts a single-process cluster (one meta+data server) in a
// temporary directory, creates the table "users" with one replica per
// partition and returns the server's client and a function that stops the
// server and removes the directory. Examples cannot use testing.T; a
// failure ends the program.
func startExample() (*client.Client, func()) {
	dir, err := os.MkdirTemp("", "zeppelin-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := zeppelin.Start(zeppelin.DefaultLocalConfig(dir))
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	stop := func() {
		srv.Close()
		os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitReady(ctx); err != nil {
		stop()
		log.Fatal(err)
	}
	cl := srv.Client()
	if _, err := cl.CreateTable(ctx, "users", client.TableOptions{Partitions: 4, Replication: 1}); err != nil {
		stop()
		log.Fatal(err)
	}
	return cl, stop
}

// Set, get and delete single keys, with conditional sets.
func Example_basic() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()
	users := cl.Table("users")

	if err := users.Set(ctx, []byte("alice"), []byte("admin")); err != nil {
		log.Fatal(err)
	}
	v, err := users.Get(ctx, []byte("alice"))
	fmt.Printf("alice: %s %v\n", v, err)

	// Only if absent (Redis NX) and only if present (Redis XX).
	ok, _ := users.SetIf(ctx, []byte("alice"), []byte("guest"), client.IfAbsent())
	fmt.Println("set alice if absent:", ok)
	ok, _ = users.SetIf(ctx, []byte("bob"), []byte("guest"), client.IfPresent())
	fmt.Println("set bob if present:", ok)

	// SetGet returns the previous value.
	r, _ := users.SetGet(ctx, []byte("alice"), []byte("owner"))
	fmt.Printf("previous alice: %s (existed %v)\n", r.Old, r.Existed)

	found, _ := users.Exists(ctx, []byte("alice"))
	fmt.Println("alice exists:", found)
	existed, _ := users.Delete(ctx, []byte("alice"))
	fmt.Println("deleted alice:", existed)
	_, err = users.Get(ctx, []byte("alice"))
	fmt.Println("get alice:", errors.Is(err, client.ErrNotFound))
	// Output:
	// alice: admin <nil>
	// set alice if absent: false
	// set bob if present: false
	// previous alice: admin (existed true)
	// alice exists: true
	// deleted alice: true
	// get alice: true
}

// Keys with a time to live: the master turns it into an absolute expiry, so
// every replica drops the key at the same instant.
func Example_ttl() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()
	users := cl.Table("users")

	users.Set(ctx, []byte("session"), []byte("token"), client.WithTTL(time.Hour))
	ttl, _ := users.TTL(ctx, []byte("session"))
	fmt.Println("session ttl:", ttl.Round(time.Minute))

	// Overwrite the value but keep the expiry (Redis KEEPTTL).
	users.Set(ctx, []byte("session"), []byte("token2"), client.KeepTTL())
	ttl, _ = users.TTL(ctx, []byte("session"))
	fmt.Println("after KeepTTL:", ttl.Round(time.Minute))

	had, _ := users.Persist(ctx, []byte("session"))
	ttl, _ = users.TTL(ctx, []byte("session"))
	fmt.Println("persisted:", had, ttl == client.NoTTL)

	users.Expire(ctx, []byte("session"), 50*time.Millisecond)
	// The master fixed the expiry when it took the write: once the time
	// has passed, the key is gone on every replica.
	time.Sleep(60 * time.Millisecond)
	if ok, _ := users.Exists(ctx, []byte("session")); !ok {
		fmt.Println("session expired")
	}
	_, err := users.TTL(ctx, []byte("session"))
	fmt.Println("ttl of a missing key:", errors.Is(err, client.ErrNotFound))
	// Output:
	// session ttl: 1h0m0s
	// after KeepTTL: 1h0m0s
	// persisted: true true
	// session expired
	// ttl of a missing key: true
}

// Counters: 64-bit signed integers stored as decimal strings.
func Example_counters() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()
	users := cl.Table("users")

	n, _ := users.Incr(ctx, []byte("visits"))
	fmt.Println(n)
	n, _ = users.IncrBy(ctx, []byte("visits"), 41)
	fmt.Println(n)
	n, _ = users.IncrBy(ctx, []byte("visits"), -50)
	fmt.Println(n)
	v, _ := users.Get(ctx, []byte("visits"))
	fmt.Printf("stored as %q\n", v)

	users.Set(ctx, []byte("name"), []byte("alice"))
	_, err := users.Incr(ctx, []byte("name"))
	fmt.Println(errors.Is(err, client.ErrNotInteger))
	users.Set(ctx, []byte("big"), []byte("9223372036854775807"))
	_, err = users.Incr(ctx, []byte("big"))
	fmt.Println(errors.Is(err, client.ErrOverflow))
	// Output:
	// 1
	// 42
	// -8
	// stored as "-8"
	// true
	// true
}

// Keys that share a hashtag (the part between '{' and '}') live in one
// partition: a batch on them commits all or nothing, and List and DeleteTag
// work on all of them.
func Example_batch() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()
	users := cl.Table("users")

	res, err := users.Batch([]byte("user:42")).
		Set([]byte("{user:42}name"), []byte("alice")).
		Set([]byte("{user:42}session"), []byte("token"), client.WithTTL(time.Hour)).
		IncrBy([]byte("{user:42}logins"), 1).
		Delete([]byte("{user:42}reset-code")).
		Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("set %v, set %v, logins %d, deleted %v\n", res[0].Done, res[1].Done, res[2].Int, res[3].Done)

	// A key of another hashtag is refused before anything is written.
	_, err = users.Batch([]byte("user:42")).
		Set([]byte("{user:42}name"), []byte("bob")).
		Set([]byte("{user:7}name"), []byte("bob")).
		Commit(ctx)
	fmt.Println("cross-slot:", errors.Is(err, client.ErrCrossSlot))

	// List pages through the keys of a hashtag in key order.
	var after []byte
	for {
		page, err := users.List(ctx, []byte("user:42"), client.ListOptions{After: after, Limit: 2, Values: true})
		if err != nil {
			log.Fatal(err)
		}
		for _, kv := range page.KVs {
			fmt.Printf("%s=%s\n", kv.Key, kv.Value)
		}
		if !page.More {
			break
		}
		after = page.KVs[len(page.KVs)-1].Key
	}

	n, _ := users.DeleteTag(ctx, []byte("user:42"))
	fmt.Println("deleted", n)
	// Output:
	// set true, set true, logins 1, deleted false
	// cross-slot: true
	// {user:42}logins=1
	// {user:42}name=alice
	// {user:42}session=token
	// deleted 3
}

// Multi-key operations span partitions: they are grouped per master node,
// sent in parallel and atomic per partition.
func Example_multiKey() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()
	users := cl.Table("users")

	err := users.MSet(ctx, []client.KV{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("")},
		{Key: []byte("c"), Value: []byte("3")},
	})
	if err != nil {
		// A *client.MultiError names the keys that failed and those
		// that were written.
		log.Fatal(err)
	}
	rs, _ := users.MGet(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("missing")})
	for _, r := range rs {
		fmt.Printf("found=%v value=%q\n", r.Found, r.Value)
	}
	ex, _ := users.MExists(ctx, [][]byte{[]byte("c"), []byte("missing")})
	fmt.Println(ex)
	n, _ := users.MDelete(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("missing")})
	fmt.Println("deleted", n)
	// Output:
	// found=true value="1"
	// found=true value=""
	// found=false value=""
	// [true false]
	// deleted 2
}

// Tables are created, listed, flushed and dropped through the client.
func Example_tableAdmin() {
	cl, stop := startExample()
	defer stop()
	ctx := context.Background()

	t, err := cl.CreateTable(ctx, "orders", client.TableOptions{Partitions: 8, Replication: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("created %s: %d partitions, replication %d\n", t.Name, len(t.Partitions), t.Replication)
	_, err = cl.CreateTable(ctx, "orders", client.TableOptions{Partitions: 8, Replication: 1})
	fmt.Println("create again:", errors.Is(err, client.ErrTableExists))

	tables, _ := cl.ListTables(ctx)
	var names []string
	for _, t := range tables {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	fmt.Println("tables:", names)

	orders := cl.Table("orders")
	orders.Set(ctx, []byte("o1"), []byte("pending"))
	if err := orders.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	found, _ := orders.Exists(ctx, []byte("o1"))
	fmt.Println("o1 after flush:", found)

	if err := cl.DropTable(ctx, "orders"); err != nil {
		log.Fatal(err)
	}
	_, err = orders.Get(ctx, []byte("o1"))
	fmt.Println("get after drop:", errors.Is(err, client.ErrTableNotFound))
	// Output:
	// created orders: 8 partitions, replication 1
	// create again: true
	// tables: [orders users]
	// o1 after flush: false
	// get after drop: true
}
