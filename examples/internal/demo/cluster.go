package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/zeppelin-kv/zeppelin"
)

// StartCluster starts n servers in dir (one subdirectory each, named n1,
// n2, ...), each a meta member and a data node on loopback, and waits until
// they are ready. It returns the servers started, even on error (the caller
// closes them), and their RPC addresses.
func StartCluster(ctx context.Context, dir string, n int, logger *slog.Logger) ([]*zeppelin.Server, []string, error) {
	ports, err := FreePorts(3 * n)
	if err != nil {
		return nil, nil, err
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	members := map[uint64]string{}
	var join []string
	for i := range n {
		members[uint64(i+1)] = addr(ports[3*i+2])
		join = append(join, addr(ports[3*i]))
	}
	servers := make([]*zeppelin.Server, 0, n)
	for i := range n {
		c := zeppelin.DefaultLocalConfig(filepath.Join(dir, fmt.Sprintf("n%d", i+1)))
		c.NodeID = fmt.Sprintf("n%d", i+1)
		c.RPCAddr = addr(ports[3*i])
		c.GossipAddr = addr(ports[3*i+1])
		c.MetaID = uint64(i + 1)
		c.RaftAddr = addr(ports[3*i+2])
		c.MetaMembers = members
		c.Join = join
		c.Logger = logger // zeppelin.Start adds node=<id>
		s, err := zeppelin.Start(c)
		if err != nil {
			return servers, nil, err
		}
		servers = append(servers, s)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, s := range servers {
		if err := s.WaitReady(ctx); err != nil {
			return servers, nil, err
		}
	}
	return servers, join, nil
}

// FreePorts reserves n free loopback ports. They are free when it returns;
// another process may take one before it is bound again.
func FreePorts(n int) ([]int, error) {
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
