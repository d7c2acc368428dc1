package zeppelintest

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Options shape a test cluster.
type Options struct {
	// Servers is the number of servers (default 3). Each is a meta member
	// and a data node, configured by zeppelin.DefaultLocalConfig.
	Servers int
	// Configure, when set, adjusts server i's configuration before it
	// starts (its addresses, directory and node ID are already set).
	Configure func(i int, cfg *zeppelin.Config)
}

// Cluster is a running test cluster. Its methods fail the test (with
// t.Fatal) when the cluster does not do what they wait for.
type Cluster struct {
	c *testcluster.Cluster
}

// Start starts a cluster and waits until its meta group has a leader and
// every data node is registered.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	return &Cluster{c: testcluster.New(tb, testcluster.Options{Servers: o.Servers, Configure: o.Configure})}
}

// Len returns the number of servers, running or stopped.
func (c *Cluster) Len() int { return c.c.Len() }

// Server returns server i, or nil while it is stopped.
func (c *Cluster) Server(i int) *zeppelin.Server { return c.c.Server(i) }

// NodeID returns server i's node ID.
func (c *Cluster) NodeID(i int) placement.NodeID { return placement.NodeID(c.c.Member(i).Name) }

// Addrs returns every server's RPC address, the seeds a client.Config
// takes.
func (c *Cluster) Addrs() []string { return c.c.Addrs() }

// Client returns server i's own client (see zeppelin.Server.Client).
func (c *Cluster) Client(i int) *client.Client { return c.c.Client(i) }

// NewClient returns a client of its own that knows every server, as a
// separate program would; it is closed when the test ends.
func (c *Cluster) NewClient() *client.Client { return c.c.NewClient("") }

// CreateTable creates a table and waits until every partition has a master
// that serves it.
func (c *Cluster) CreateTable(name string, o client.TableOptions) *placement.Table {
	return c.c.CreateTable(name, o)
}

// Kill stops server i as a crash looks to the others (zeppelin.Server.Close):
// its partitions fail over once the meta group declares it down.
func (c *Cluster) Kill(i int) { c.c.Stop(i) }

// Shutdown stops server i gracefully (zeppelin.Server.Shutdown): its master
// roles are handed to caught-up slaves first.
func (c *Cluster) Shutdown(i int) { c.c.Shutdown(i) }

// Restart starts a stopped server again from its directory and waits until
// it is ready.
func (c *Cluster) Restart(i int) { c.c.Restart(i, true) }

// Map returns the cluster map as the meta leader holds it now.
func (c *Cluster) Map() *placement.Map { return c.c.Map() }
