package resp

import (
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
)

// TestDBSize counts the selected table's live keys across its partitions
// and masters, leaving out deleted and expired keys and other tables.
func TestDBSize(t *testing.T) {
	c := newCluster(t, 3)
	c.CreateTable("default", client.TableOptions{Partitions: 8, Replication: 2})
	c.CreateTable("1", client.TableOptions{Partitions: 4, Replication: 1})
	_, addr := startServer(t, c, Config{})
	ctx := ctxFor(t, 60*time.Second)
	rdb := newRedis(t, addr, 2, 0)
	other := newRedis(t, addr, 3, 1)

	equal(t, "DBSIZE empty", must[int64](t, "DBSIZE")(rdb.DBSize(ctx).Result()), 0)
	for i := range 200 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		if err := other.Set(ctx, fmt.Sprintf("o%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "DBSIZE", must[int64](t, "DBSIZE")(rdb.DBSize(ctx).Result()), 200)
	equal(t, "DBSIZE of table 1", must[int64](t, "DBSIZE")(other.DBSize(ctx).Result()), 7)

	for i := range 20 {
		rdb.Del(ctx, fmt.Sprintf("k%d", i))
	}
	for i := 20; i < 30; i++ {
		rdb.Set(ctx, fmt.Sprintf("k%d", i), "v", 100*time.Millisecond)
	}
	for i := 30; i < 35; i++ {
		rdb.Set(ctx, fmt.Sprintf("k%d", i), "v", time.Hour)
	}
	c.Eventually(10*time.Second, func() error {
		if n := rdb.DBSize(ctx).Val(); n != 170 {
			return fmt.Errorf("DBSIZE %d after deleting 20 keys and 10 expiring, want 170", n)
		}
		return nil
	})
	wantErr(t, "DBSIZE x", rdb.Do(ctx, "DBSIZE", "x").Err(), "ERR wrong number of arguments for 'dbsize' command")

	// A failover moves partitions' masters; the count follows them.
	c.WaitConverged("default", 20*time.Second)
	c.Stop(1)
	c.Eventually(30*time.Second, func() error {
		n, err := rdb.DBSize(ctx).Result()
		if err != nil || n != 170 {
			return fmt.Errorf("DBSIZE after a kill: %d, %v", n, err)
		}
		return nil
	})
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	equal(t, "DBSIZE after FLUSHDB", must[int64](t, "DBSIZE")(rdb.DBSize(ctx).Result()), 0)
}
