// Command cluster runs a three-server Zeppelin cluster inside one program:
// every server is a meta member and a data node, as three processes on
// three machines would be. It creates a table, writes and reads keys
// through the smart client, restarts one server from its directory to show
// that nothing is lost, and prints the cluster map.
//
//	go run ./examples/cluster
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
)

func main() {
	keys := flag.Int("keys", 1000, "keys to write")
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed at exit)")
	verbose := flag.Bool("v", false, "print the servers' logs")
	flag.Parse()
	if err := run(*dir, *keys, *verbose); err != nil {
		log.Fatal(err)
	}
}

func run(dir string, nkeys int, verbose bool) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "zeppelin-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	// Three servers, each a meta member and a data node, on loopback.
	ports, err := freePorts(9)
	if err != nil {
		return err
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	members := map[uint64]string{}
	var join []string
	for i := range 3 {
		members[uint64(i+1)] = addr(ports[3*i+2])
		join = append(join, addr(ports[3*i]))
	}
	configs := make([]zeppelin.Config, 3)
	for i := range configs {
		c := zeppelin.DefaultLocalConfig(filepath.Join(dir, fmt.Sprintf("n%d", i+1)))
		c.NodeID = fmt.Sprintf("n%d", i+1)
		c.RPCAddr = addr(ports[3*i])
		c.GossipAddr = addr(ports[3*i+1])
		c.MetaID = uint64(i + 1)
		c.RaftAddr = addr(ports[3*i+2])
		c.MetaMembers = members
		c.Join = join
		c.Logger = logger // zeppelin.Start adds node=<id>
		configs[i] = c
	}
	servers := make([]*zeppelin.Server, 3)
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for i, c := range configs {
		if servers[i], err = zeppelin.Start(c); err != nil {
			return err
		}
	}
	for _, s := range servers {
		if err := s.WaitReady(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("3 servers ready in %v: %s\n", time.Since(start).Round(time.Millisecond), strings.Join(join, ", "))

	c := servers[0].Client()
	tbl, err := c.CreateTable(ctx, "demo", client.TableOptions{Partitions: 12, Replication: 3})
	if err != nil {
		return err
	}
	fmt.Printf("created table %q (id %d): %d partitions × %d replicas\n", tbl.Name, tbl.ID, len(tbl.Partitions), tbl.Replication)

	// Write through one server's client, read through another's.
	demo := c.Table("demo")
	start = time.Now()
	for i := range nkeys {
		if err := demo.Set(ctx, fmt.Appendf(nil, "user:%04d", i), fmt.Appendf(nil, "value %d", i)); err != nil {
			return fmt.Errorf("set: %w", err)
		}
	}
	fmt.Printf("wrote %d keys in %v\n", nkeys, time.Since(start).Round(time.Millisecond))
	if err := verify(ctx, servers[1].Client(), nkeys); err != nil {
		return err
	}
	fmt.Printf("read all %d keys back through server n2\n", nkeys)

	// TTL, counters and an atomic batch on one hashtag.
	if err := demo.Set(ctx, []byte("session"), []byte("token"), client.WithTTL(time.Minute)); err != nil {
		return err
	}
	ttl, err := demo.TTL(ctx, []byte("session"))
	if err != nil {
		return err
	}
	if _, err := demo.IncrBy(ctx, []byte("visits"), 41); err != nil {
		return err
	}
	n, err := demo.Incr(ctx, []byte("visits"))
	if err != nil {
		return err
	}
	if _, err := demo.Batch([]byte("cart:7")).
		Set([]byte("{cart:7}:apples"), []byte("3")).
		Set([]byte("{cart:7}:pears"), []byte("1")).
		IncrBy([]byte("{cart:7}:items"), 4).
		Commit(ctx); err != nil {
		return err
	}
	page, err := demo.List(ctx, []byte("cart:7"), client.ListOptions{Values: true})
	if err != nil {
		return err
	}
	fmt.Printf("session expires in %v; visits = %d; cart:7 holds %d keys atomically written\n", ttl.Round(time.Second), n, len(page.KVs))

	// Restart n3 from its directory: its data and the map survive.
	fmt.Println("restarting n3 ...")
	servers[2].Close()
	servers[2] = nil
	if servers[2], err = zeppelin.Start(configs[2]); err != nil {
		return err
	}
	if err := servers[2].WaitReady(ctx); err != nil {
		return err
	}
	if err := verify(ctx, servers[2].Client(), nkeys); err != nil {
		return err
	}
	fmt.Printf("n3 is back; all %d keys read through it\n", nkeys)

	st, err := servers[2].Client().Status(ctx)
	if err != nil {
		return err
	}
	printMap(st)
	return nil
}

func verify(ctx context.Context, c *client.Client, nkeys int) error {
	keys := make([][]byte, nkeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%04d", i)
	}
	res, err := c.Table("demo").MGet(ctx, keys)
	if err != nil {
		return fmt.Errorf("mget: %w", err)
	}
	for i, r := range res {
		if want := fmt.Sprintf("value %d", i); !r.Found || string(r.Value) != want {
			return fmt.Errorf("key %s: got %q (found %v), want %q", keys[i], r.Value, r.Found, want)
		}
	}
	return nil
}

func printMap(st *client.Status) {
	m := st.Map
	fmt.Printf("\ncluster map at epoch %d\n", m.Epoch)
	fmt.Printf("meta members (leader %d):\n", st.LeaderID)
	for _, mm := range m.Meta {
		fmt.Printf("  %d  rpc %s  raft %s\n", mm.ID, mm.RPCAddr, mm.RaftAddr)
	}
	fmt.Println("data nodes:")
	for _, n := range st.Nodes {
		masters := 0
		for _, r := range n.Replicas {
			if r.Role.String() == "master" {
				masters++
			}
		}
		fmt.Printf("  %s  %s  %s  replicas %d  masters %d\n", n.Node.ID, n.Node.Addr, n.Node.State, len(n.Replicas), masters)
	}
	for _, t := range m.Tables {
		fmt.Printf("table %s (id %d):\n", t.Name, t.ID)
		for _, p := range t.Partitions {
			slaves := make([]string, len(p.Slaves))
			for i, s := range p.Slaves {
				slaves[i] = string(s)
			}
			sort.Strings(slaves)
			fmt.Printf("  partition %2d  master %s  slaves %-8s gen %d\n", p.ID, p.Master, strings.Join(slaves, ","), p.Gen)
		}
	}
}

// freePorts reserves n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
