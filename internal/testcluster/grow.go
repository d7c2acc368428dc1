package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/zeppelin-kv/zeppelin"
)

// Prepare adds a member with the given roles to the cluster without
// starting it, and returns its index. It gets free ports, a directory
// beside the others and the RPC addresses of the cluster's meta members
// as Join seeds. A meta member also gets the next meta ID never used in
// the cluster, a Raft address and MetaJoin, so that it joins the group
// once an admin call has added it under Member(i).Cfg.MetaID and
// Member(i).Cfg.RaftAddr (client.AddMetaMember or ReplaceMetaMember).
// configure, when not nil, adjusts the configuration last.
//
// Restart(i, wait) starts the member; from then on Stop, Restart, Server
// and Member work on it as on the others, and it is closed when the test
// ends.
func (c *Cluster) Prepare(roles zeppelin.Roles, configure func(*zeppelin.Config)) int {
	c.t.Helper()
	ports := freePorts(c.t, 3)
	c.mu.Lock()
	defer c.mu.Unlock()
	var join []string
	var lastID uint64
	for _, m := range c.members {
		if m.Cfg.Roles&zeppelin.RoleMeta != 0 {
			join = append(join, m.Cfg.RPCAddr)
			lastID = max(lastID, m.Cfg.MetaID)
		}
	}
	i := len(c.members)
	name := fmt.Sprintf("n%d", i+1)
	cfg := zeppelin.DefaultLocalConfig(filepath.Join(c.base, name))
	cfg.NodeID = name
	cfg.Roles = roles
	cfg.RPCAddr = addr(ports[0])
	cfg.GossipAddr = addr(ports[1])
	cfg.Logger = c.Log // zeppelin.Start adds node=<name>
	cfg.Expert.Network = c.Hub.Host(name)
	cfg.Join = join
	if roles&zeppelin.RoleMeta != 0 {
		cfg.MetaID = lastID + 1
		cfg.RaftAddr = addr(ports[2])
		cfg.MetaJoin = true
	}
	if configure != nil {
		configure(&cfg)
	}
	c.members = append(c.members, &Member{Index: i, Name: name, Cfg: cfg})
	return i
}

// AddServer prepares a member (see Prepare), adds it to the meta group
// through a running member's client when it has the meta role, starts it
// and waits until it is ready. It returns the member's index.
func (c *Cluster) AddServer(roles zeppelin.Roles, configure func(*zeppelin.Config)) int {
	c.t.Helper()
	i := c.Prepare(roles, configure)
	m := c.Member(i)
	if m.Cfg.Roles&zeppelin.RoleMeta != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.anyClient().AddMetaMember(ctx, m.Cfg.MetaID, m.Cfg.RaftAddr); err != nil {
			c.t.Fatalf("testcluster: add meta member %d (%s): %v", m.Cfg.MetaID, m.Name, err)
		}
	}
	c.Restart(i, true)
	return i
}
