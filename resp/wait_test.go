package resp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestWaitAndNoReplicas checks WAIT through go-redis on an async table,
// as slaves stop and come back, and NOREPLICAS on a sync table that has
// lost more replicas than its minimum allows.
func TestWaitAndNoReplicas(t *testing.T) {
	c := newCluster(t, 3)
	c.CreateTable("default", client.TableOptions{Partitions: 1, Replication: 3})
	c.CreateTable("s", client.TableOptions{Partitions: 1, Replication: 3, Mode: placement.ModeSync, MinInSync: 3})
	// The RESP server fronts a client of its own, so that the members
	// stopped below are only data nodes to it.
	_, addr := startServer(t, c, Config{Client: c.NewClient("resp")})
	ctx := ctxFor(t, 3*time.Minute)
	rdb := newRedis(t, addr, 3, 0)

	equal(t, "WAIT before any write", must[int64](t, "WAIT")(rdb.Wait(ctx, 2, 0).Result()), int64(0))
	wantErr(t, "WAIT x 0", rdb.Do(ctx, "WAIT", "x", "0").Err(), "ERR value is not an integer")
	wantErr(t, "WAIT 1 -5", rdb.Do(ctx, "WAIT", "1", "-5").Err(), "ERR timeout is negative")
	wantErr(t, "WAIT 1", rdb.Do(ctx, "WAIT", "1").Err(), "ERR wrong number of arguments for 'wait' command")

	must[string](t, "SET")(rdb.Set(ctx, "k", "1", 0).Result())
	equal(t, "WAIT 2 (both slaves)", must[int64](t, "WAIT")(rdb.Wait(ctx, 2, 10*time.Second).Result()), int64(2))
	start := time.Now()
	equal(t, "WAIT 3 with two slaves", must[int64](t, "WAIT")(rdb.Wait(ctx, 3, 300*time.Millisecond).Result()), int64(2))
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("WAIT 3 300 returned after %v, before its timeout", d)
	}

	// Stop one slave of the async table's partition: WAIT counts one.
	p := c.Map().Table("default").Partitions[0]
	slave := c.Index(p.Slaves[0])
	c.Stop(slave)
	c.Eventually(30*time.Second, func() error {
		if _, err := rdb.Set(ctx, "k", "2", 0).Result(); err != nil {
			return err
		}
		return nil
	})
	equal(t, "WAIT 2 with a slave down", must[int64](t, "WAIT")(rdb.Wait(ctx, 2, 500*time.Millisecond).Result()), int64(1))

	// The sync table wants all three replicas in sync: with one down its
	// writes fail with Redis's NOREPLICAS, and nothing is written.
	sdb := newRedis(t, addr, 2, 0)
	must[string](t, "SELECT s")(sdb.Do(ctx, "SELECT", "s").Text())
	equal(t, "CONFIG GET min-replicas-to-write on the sync table",
		must[map[string]string](t, "CONFIG GET")(sdb.ConfigGet(ctx, "min-replicas-to-write").Result())["min-replicas-to-write"], "2")
	equal(t, "CONFIG GET min-replicas-to-write on the async table",
		must[map[string]string](t, "CONFIG GET")(rdb.ConfigGet(ctx, "min-replicas-to-write").Result())["min-replicas-to-write"], "0")
	c.Eventually(30*time.Second, func() error {
		err := sdb.Set(ctx, "lost", "x", 0).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOREPLICAS Not enough good replicas to write.") {
			return fmt.Errorf("SET on the sync table with a replica down: %v", err)
		}
		return nil
	})

	c.Eventually(30*time.Second, func() error {
		info := must[string](t, "INFO keyspace")(sdb.Info(ctx, "keyspace").Result())
		if !strings.Contains(info, "table_s:") || !strings.Contains(info, "mode=sync,fenced=1") || !strings.Contains(info, "min_in_sync=3,partitions_below_min_in_sync=1") {
			return fmt.Errorf("INFO keyspace with the sync table short of replicas:\n%s", info)
		}
		return nil
	})

	// Back up: WAIT counts two again, and the sync table takes writes.
	c.Restart(slave, true)
	c.Eventually(60*time.Second, func() error {
		if err := sdb.Set(ctx, "after", "y", 0).Err(); err != nil {
			return err
		}
		if got := rdb.Wait(ctx, 2, time.Second).Val(); got != 2 {
			return fmt.Errorf("WAIT 2 after the restart: %d", got)
		}
		return nil
	})
	equal(t, "GET after", must[string](t, "GET")(sdb.Get(ctx, "after").Result()), "y")
	if err := sdb.Get(ctx, "lost").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of a write refused with NOREPLICAS: %v, want nil", err)
	}
}
