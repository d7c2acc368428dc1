package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/poll"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Options shape a cluster.
type Options struct {
	// Servers is the number of members (default 3).
	Servers int
	// Roles gives each member's roles; missing entries are meta+data.
	Roles []zeppelin.Roles
	// Configure adjusts member i's configuration before it first starts.
	Configure func(i int, c *zeppelin.Config)
	// NoWait skips waiting for every member to be ready.
	NoWait bool
}

// Cluster is a set of in-process servers.
type Cluster struct {
	t    testing.TB
	base string // holds every member's directory
	Hub  *transport.Hub
	Log  *slog.Logger

	mu      sync.Mutex
	members []*Member
	clients []*client.Client
}

// Member is one server of the cluster. Srv is nil while it is stopped.
type Member struct {
	Index int
	Name  string
	Cfg   zeppelin.Config
	Srv   *zeppelin.Server
}

// freePorts reserves n distinct free loopback ports, free for TCP and UDP
// (gossip takes both). They are drawn below the kernel's range of
// ephemeral ports (32768 and up on Linux, 49152 and up elsewhere): a
// member restarted on its old port must not find it taken by the local
// end of some outgoing connection made while it was down.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	const lo, hi = 10000, 32768
	var lns []net.Listener
	var pcs []net.PacketConn
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("testcluster: no %d free ports in [%d, %d) after %d tries", n, lo, hi, tries)
		}
		port := lo + rand.IntN(hi-lo)
		if slices.Contains(ports, port) {
			continue
		}
		ln, err := net.Listen("tcp", addr(port))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr(port))
		if err != nil {
			ln.Close()
			continue
		}
		lns, pcs, ports = append(lns, ln), append(pcs, pc), append(ports, port)
	}
	for i := range lns {
		lns[i].Close()
		pcs[i].Close()
	}
	return ports
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// New starts a cluster and, unless opts.NoWait, waits until every member is
// ready. Everything is closed when the test ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Servers == 0 {
		opts.Servers = 3
	}
	// TempDir first: cleanups run last-in first-out, so the servers are
	// closed before their directories are removed.
	base := t.TempDir()
	c := &Cluster{t: t, base: base, Hub: transport.NewHub(nil), Log: newTestLogger(t)}
	t.Cleanup(c.closeAll)

	roles := make([]zeppelin.Roles, opts.Servers)
	var metaIdx []int
	for i := range roles {
		roles[i] = zeppelin.RoleMeta | zeppelin.RoleData
		if i < len(opts.Roles) && opts.Roles[i] != 0 {
			roles[i] = opts.Roles[i]
		}
		if roles[i]&zeppelin.RoleMeta != 0 {
			metaIdx = append(metaIdx, i)
		}
	}
	if len(metaIdx) == 0 {
		t.Fatalf("testcluster: no member has the meta role")
	}
	ports := freePorts(t, 3*opts.Servers)
	metaMembers := make(map[uint64]string)
	for k, i := range metaIdx {
		metaMembers[uint64(k+1)] = addr(ports[3*i+2])
	}
	var metaRPC []string
	for _, i := range metaIdx {
		metaRPC = append(metaRPC, addr(ports[3*i]))
	}
	for i := range opts.Servers {
		name := fmt.Sprintf("n%d", i+1)
		cfg := zeppelin.DefaultLocalConfig(filepath.Join(base, name))
		cfg.NodeID = name
		cfg.Roles = roles[i]
		cfg.RPCAddr = addr(ports[3*i])
		cfg.GossipAddr = addr(ports[3*i+1])
		cfg.Logger = c.Log // zeppelin.Start adds node=<name>
		cfg.Expert.Network = c.Hub.Host(name)
		cfg.Join = metaRPC
		if roles[i]&zeppelin.RoleMeta != 0 {
			for id, a := range metaMembers {
				if a == addr(ports[3*i+2]) {
					cfg.MetaID = id
				}
			}
			cfg.MetaMembers = metaMembers
			cfg.RaftAddr = addr(ports[3*i+2])
		}
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		c.members = append(c.members, &Member{Index: i, Name: name, Cfg: cfg})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.members))
	for i, m := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Srv, errs[i] = zeppelin.Start(m.Cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("testcluster: start %s: %v", c.members[i].Name, err)
		}
	}
	if !opts.NoWait {
		c.WaitReady()
	}
	return c
}

// Len returns the number of members.
func (c *Cluster) Len() int { return len(c.members) }

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Index returns the index of the member whose node ID is id, or -1.
func (c *Cluster) Index(id placement.NodeID) int {
	for i, m := range c.members {
		if placement.NodeID(m.Name) == id {
			return i
		}
	}
	return -1
}

// Server returns member i's running server (nil when stopped).
func (c *Cluster) Server(i int) *zeppelin.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].Srv
}

// Addr returns member i's RPC address.
func (c *Cluster) Addr(i int) string { return c.members[i].Cfg.RPCAddr }

// Addrs returns every member's RPC address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.members))
	for i := range c.members {
		out[i] = c.Addr(i)
	}
	return out
}

// WaitReady waits until every running member is ready.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range c.members {
		if s := c.Server(m.Index); s != nil {
			if err := s.WaitReady(ctx); err != nil {
				c.t.Fatalf("testcluster: %s not ready: %v", m.Name, err)
			}
		}
	}
}

// Client returns member i's own client.
func (c *Cluster) Client(i int) *client.Client {
	s := c.Server(i)
	if s == nil {
		c.t.Fatalf("testcluster: member %d is stopped", i)
	}
	return s.Client()
}

// NewClient returns a client that bootstraps from seeds (every member when
// none are given) and dials through the hub as host name ("client" when
// empty). It is closed when the test ends.
func (c *Cluster) NewClient(name string, seeds ...string) *client.Client {
	c.t.Helper()
	return c.NewClientConfig(name, nil, seeds...)
}

// NewClientConfig is NewClient with the client's configuration adjusted
// by configure (when not nil) before it is created.
func (c *Cluster) NewClientConfig(name string, configure func(*client.Config), seeds ...string) *client.Client {
	c.t.Helper()
	if name == "" {
		name = "client"
	}
	if len(seeds) == 0 {
		seeds = c.Addrs()
	}
	cfg := client.DefaultConfig(seeds...)
	cfg.Timeout = 10 * time.Second
	cfg.Logger = c.Log.With("client", name)
	if configure != nil {
		configure(&cfg)
	}
	cl, err := client.NewWithNetwork(cfg, c.Hub.Host(name))
	if err != nil {
		c.t.Fatalf("testcluster: new client: %v", err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cl)
	c.mu.Unlock()
	return cl
}

// take marks member i stopped and returns its server (nil when it was
// not running).
func (c *Cluster) take(i int) *zeppelin.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.members[i].Srv
	c.members[i].Srv = nil
	return s
}

// Stop closes member i at once (zeppelin.Server.Close), as a crash looks to
// the rest of the cluster; its directory is kept.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	s := c.take(i)
	if s == nil {
		return
	}
	if err := s.Close(); err != nil {
		c.t.Logf("testcluster: close %s: %v", c.members[i].Name, err)
	}
}

// Shutdown stops member i gracefully (zeppelin.Server.Shutdown: master
// roles handed off, slaves caught up); its directory is kept.
func (c *Cluster) Shutdown(i int) {
	c.t.Helper()
	s := c.take(i)
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		c.t.Errorf("testcluster: shutdown %s: %v", c.members[i].Name, err)
	}
}

// Restart starts a stopped member again from its directory, with the same
// configuration, and waits until it is ready (unless wait is false).
func (c *Cluster) Restart(i int, wait bool) {
	c.t.Helper()
	m := c.members[i]
	c.mu.Lock()
	running := m.Srv != nil
	c.mu.Unlock()
	if running {
		c.t.Fatalf("testcluster: restart of running member %s", m.Name)
	}
	srv, err := zeppelin.Start(m.Cfg)
	if err != nil {
		c.t.Fatalf("testcluster: restart %s: %v", m.Name, err)
	}
	c.mu.Lock()
	m.Srv = srv
	c.mu.Unlock()
	if wait {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.WaitReady(ctx); err != nil {
			c.t.Fatalf("testcluster: %s not ready after restart: %v", m.Name, err)
		}
	}
}

func (c *Cluster) closeAll() {
	c.mu.Lock()
	clients := c.clients
	c.clients = nil
	c.mu.Unlock()
	for _, cl := range clients {
		cl.Close()
	}
	var wg sync.WaitGroup
	for i := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(i)
		}()
	}
	wg.Wait()
}

// Eventually polls cond (poll.Until) until it returns nil or timeout
// passes, then fails the test with cond's last error.
func (c *Cluster) Eventually(timeout time.Duration, cond func() error) {
	c.t.Helper()
	if err := poll.Until(timeout, cond); err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
}

// Poll is poll.Until for callers that report the failure themselves: it
// returns cond's last error as it is, without the timeout.
func Poll(timeout time.Duration, cond func() error) error {
	return errors.Unwrap(poll.Until(timeout, cond))
}

// MetaLeader returns the index of the member leading the meta group, or -1.
func (c *Cluster) MetaLeader() int {
	for i := range c.members {
		s := c.Server(i)
		if s == nil || s.Meta() == nil {
			continue
		}
		if s.Meta().IsLeader() {
			return i
		}
	}
	return -1
}

// WaitMetaLeader waits until some running member leads the meta group and
// returns its index.
func (c *Cluster) WaitMetaLeader() int {
	c.t.Helper()
	leader := -1
	c.Eventually(20*time.Second, func() error {
		leader = c.MetaLeader()
		if leader < 0 {
			return fmt.Errorf("no meta leader")
		}
		return nil
	})
	return leader
}

// CreateTable creates a table through member 0's (or the first running
// member's) client and waits until every partition's master serves it.
func (c *Cluster) CreateTable(name string, o client.TableOptions) *placement.Table {
	c.t.Helper()
	cl := c.anyClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := cl.CreateTable(ctx, name, o)
	if err != nil {
		c.t.Fatalf("testcluster: create table %s: %v", name, err)
	}
	c.WaitServing(name)
	return t
}

func (c *Cluster) anyClient() *client.Client {
	for i := range c.members {
		if s := c.Server(i); s != nil {
			return s.Client()
		}
	}
	c.t.Fatalf("testcluster: no running member")
	return nil
}

// WaitServing waits until, for every partition of table, the master in the
// meta leader's map has that map (or a newer one) and serves the
// partition as master.
func (c *Cluster) WaitServing(table string) {
	c.t.Helper()
	c.Eventually(30*time.Second, func() error { return c.serving(table) })
}

func (c *Cluster) serving(table string) error {
	leader := c.MetaLeader()
	if leader < 0 {
		return fmt.Errorf("no meta leader")
	}
	m := c.Server(leader).Meta().Map()
	t := m.Table(table)
	if t == nil {
		return fmt.Errorf("table %s not in the map", table)
	}
	byID := make(map[placement.NodeID]*zeppelin.Server)
	for i := range c.members {
		if s := c.Server(i); s != nil {
			byID[placement.NodeID(s.NodeID())] = s
		}
	}
	for _, p := range t.Partitions {
		s := byID[p.Master]
		if s == nil || s.Node() == nil {
			return fmt.Errorf("partition %d: master %q not running", p.ID, p.Master)
		}
		if s.Node().Epoch() < m.Epoch {
			return fmt.Errorf("partition %d: master %s at epoch %d < %d", p.ID, p.Master, s.Node().Epoch(), m.Epoch)
		}
	}
	return nil
}

// Pause stops member i's traffic as a stopped process looks to its peers
// (SIGSTOP, a VM freeze): every connection to and from it stays open but
// carries nothing until Resume, when what was held is delivered, late.
// The member's meta Raft traffic is held too. Its own goroutines go on,
// so its clocks run: a paused master sees its lease lapse.
func (c *Cluster) Pause(i int) { c.Hub.Pause(c.members[i].Name) }

// Resume ends a Pause of member i.
func (c *Cluster) Resume(i int) { c.Hub.Resume(c.members[i].Name) }
