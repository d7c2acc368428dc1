package testcluster

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// ReplicaDump is the full contents of one replica, read in one consistent
// snapshot from the member's store.
type ReplicaDump struct {
	Node       placement.NodeID
	Gen, Seq   uint64
	Incomplete bool
	Entries    []wire.SnapEntry // sorted by key
}

// LeaderMap returns the meta leader's map (nil when there is no leader).
func (c *Cluster) LeaderMap() *placement.Map {
	l := c.MetaLeader()
	if l < 0 {
		return nil
	}
	return c.Server(l).Meta().Map()
}

// memberByNode returns the running member whose node ID is id, or -1.
func (c *Cluster) memberByNode(id placement.NodeID) int {
	for i, m := range c.members {
		if placement.NodeID(m.Name) == id && c.Server(i) != nil {
			return i
		}
	}
	return -1
}

// Dump reads every running replica of one partition of table, as assigned
// in the meta leader's map.
func (c *Cluster) Dump(table string, part placement.PartitionID) ([]ReplicaDump, error) {
	m := c.LeaderMap()
	if m == nil {
		return nil, fmt.Errorf("no meta leader")
	}
	t := m.Table(table)
	if t == nil {
		return nil, fmt.Errorf("no table %s", table)
	}
	var out []ReplicaDump
	for _, n := range t.Partitions[part].Replicas() {
		i := c.memberByNode(n)
		if i < 0 {
			continue
		}
		d, err := c.dumpReplica(i, t.ID, part)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (c *Cluster) dumpReplica(i int, table placement.TableID, part placement.PartitionID) (ReplicaDump, error) {
	s := c.Server(i)
	if s == nil || s.Node() == nil {
		return ReplicaDump{}, fmt.Errorf("member %d has no data node", i)
	}
	r, err := s.Node().Store().Replica(uint32(table), uint32(part))
	if err != nil {
		return ReplicaDump{}, err
	}
	snap, err := r.Snapshot()
	if err != nil {
		return ReplicaDump{}, err
	}
	defer snap.Close()
	d := ReplicaDump{Node: placement.NodeID(s.NodeID()), Gen: snap.Gen, Seq: snap.Seq, Incomplete: r.State().Incomplete}
	for {
		es, done, err := snap.Next(1 << 20)
		if err != nil {
			return ReplicaDump{}, err
		}
		d.Entries = append(d.Entries, es...)
		if done {
			break
		}
	}
	slices.SortFunc(d.Entries, func(a, b wire.SnapEntry) int { return bytes.Compare(a.Key, b.Key) })
	return d, nil
}

// Converged checks that every partition of table has all its assigned,
// running replicas complete and identical: same (gen, seq), same keys,
// values and expiry times.
func (c *Cluster) Converged(table string) error {
	m := c.LeaderMap()
	if m == nil {
		return fmt.Errorf("no meta leader")
	}
	t := m.Table(table)
	if t == nil {
		return fmt.Errorf("no table %s", table)
	}
	for _, p := range t.Partitions {
		ds, err := c.Dump(table, p.ID)
		if err != nil {
			return fmt.Errorf("partition %d: %w", p.ID, err)
		}
		if err := sameReplicas(ds); err != nil {
			return fmt.Errorf("table %s partition %d: %w", table, p.ID, err)
		}
	}
	return nil
}

func sameReplicas(ds []ReplicaDump) error {
	for _, d := range ds {
		if d.Incomplete {
			return fmt.Errorf("replica on %s is incomplete", d.Node)
		}
	}
	for _, d := range ds[min(1, len(ds)):] {
		a := ds[0]
		if d.Gen != a.Gen || d.Seq != a.Seq {
			return fmt.Errorf("%s at (gen %d, seq %d), %s at (gen %d, seq %d)", a.Node, a.Gen, a.Seq, d.Node, d.Gen, d.Seq)
		}
		if len(d.Entries) != len(a.Entries) {
			return fmt.Errorf("%s holds %d keys, %s holds %d", a.Node, len(a.Entries), d.Node, len(d.Entries))
		}
		for i := range a.Entries {
			x, y := a.Entries[i], d.Entries[i]
			if !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) || x.ExpireAt != y.ExpireAt {
				return fmt.Errorf("%s has %q=%q (expires %d), %s has %q=%q (expires %d)",
					a.Node, x.Key, x.Value, x.ExpireAt, d.Node, y.Key, y.Value, y.ExpireAt)
			}
		}
	}
	return nil
}

// WaitConverged waits until Converged(table) holds.
func (c *Cluster) WaitConverged(table string, timeout time.Duration) {
	c.t.Helper()
	c.Eventually(timeout, func() error { return c.Converged(table) })
}

// Map waits until some member leads the meta group and returns its map.
func (c *Cluster) Map() *placement.Map {
	c.t.Helper()
	var m *placement.Map
	c.Eventually(20*time.Second, func() error {
		if m = c.LeaderMap(); m == nil {
			return fmt.Errorf("no meta leader")
		}
		return nil
	})
	return m
}

// WaitSlavesStreaming waits until every slave replica of every running
// member has a complete copy and streams from its master: no initial or
// full sync is left, so a master can hand its role to any of them.
func (c *Cluster) WaitSlavesStreaming(timeout time.Duration) {
	c.t.Helper()
	c.Eventually(timeout, func() error {
		for i := range c.Len() {
			s := c.Server(i)
			if s == nil || s.Node() == nil {
				continue
			}
			for _, r := range s.Node().Status().Replicas {
				if r.Role == wire.RoleSlave && (r.State != wire.ReplStreaming || r.Incomplete) {
					return fmt.Errorf("%s: table %d partition %d: slave %v, incomplete %v", c.members[i].Name, r.Table, r.Partition, r.State, r.Incomplete)
				}
			}
		}
		return nil
	})
}
