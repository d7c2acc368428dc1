package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TableOptions configure CreateTable. The table's name is not among them:
// it is CreateTable's argument, 1 to 64 ASCII letters, digits, '_', '-'
// and '.', starting with a letter, a digit or '_' ("users", "orders-2024",
// "1").
type TableOptions struct {
	// Partitions is the fixed number of partitions (default 16).
	Partitions int
	// Replication is the number of replicas of each partition, master
	// included (default 3, at most the number of data nodes).
	Replication int
	// Mode is the replication mode: async (the default) acknowledges a
	// write once its master has it; sync once every member of the
	// partition's in-sync set has it, so that no acknowledged write is lost
	// while fewer than MinInSync replicas fail (a sync table is always
	// fenced, and single-key operations on it are linearizable).
	Mode placement.Mode
	// Fenced makes masters stop accepting writes when their meta lease
	// lapses, so two masters never accept writes at once (always on for
	// sync tables).
	Fenced bool
	// MinInSync is the smallest in-sync set (master included) a sync table
	// accepts writes with (default: a majority of Replication; 1 ≤
	// MinInSync ≤ Replication). Below it, writes fail with the retryable
	// ErrNotEnoughReplicas and nothing is written.
	MinInSync int
	// Domain is the failure domain replicas are spread across (distinct
	// hosts by default).
	Domain placement.Domain
}

// adminCall calls the meta group and maps its errors.
func (c *Client) adminCall(ctx context.Context, leaderOnly bool, kind wire.Kind, req, resp any) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	err := c.callMeta(ctx, leaderOnly, kind, req, resp)
	var we *wire.Error
	if errors.Is(err, ErrNoMeta) || !errors.As(err, &we) {
		return err
	}
	return fromWire(we)
}

// waitEpoch makes sure the client's map is at least epoch e, that of a
// change the meta group has committed. The change stands whatever happens
// here, so a failed pull is logged, not returned: the next call that needs
// the new map pulls it again.
func (c *Client) waitEpoch(ctx context.Context, e placement.Epoch) {
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	if m := c.cur.Load(); m != nil && m.Epoch >= e {
		return
	}
	var seen placement.Epoch
	if m := c.cur.Load(); m != nil {
		seen = m.Epoch
	}
	if err := c.refresh(ctx, seen, e); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("client: change committed, but the map could not be refreshed", "epoch", e, "err", err)
	}
}

// CreateTable creates a table and returns it as committed. It returns when
// the meta group has committed it; data nodes open their replicas within a
// heartbeat, and calls made meanwhile wait for them.
//
// name is 1 to 64 ASCII letters, digits, '_', '-' and '.', and starts with
// a letter, a digit or '_'; the meta group refuses any other name with
// ErrInvalid. An existing name is refused with ErrTableExists.
func (c *Client) CreateTable(ctx context.Context, name string, o TableOptions) (*placement.Table, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	if o.Partitions == 0 {
		o.Partitions = 16
	}
	if o.Replication == 0 {
		o.Replication = 3
	}
	req := wire.CreateTableRequest{Name: name, Partitions: o.Partitions, Replication: o.Replication,
		Mode: o.Mode, Fenced: o.Fenced, MinInSync: o.MinInSync, Domain: o.Domain}
	var reply wire.TableReply
	if err := c.adminCall(ctx, false, wire.KindMetaCreateTable, &req, &reply); err != nil {
		return nil, err
	}
	c.waitEpoch(ctx, reply.Epoch)
	for _, w := range reply.Warnings {
		c.log.Warn("client: table placement", "table", name, "warning", w)
	}
	return &reply.Table, nil
}

// DropTable drops a table and, on every replica, its data.
func (c *Client) DropTable(ctx context.Context, name string) error {
	var reply wire.EpochReply
	if err := c.adminCall(ctx, false, wire.KindMetaDropTable, &wire.DropTableRequest{Name: name}, &reply); err != nil {
		return err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return nil
}

// ListTables returns every table in a freshly pulled map.
func (c *Client) ListTables(ctx context.Context) ([]placement.Table, error) {
	m, err := c.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	return m.Tables, nil
}

// ListNodes returns every data node in a freshly pulled map.
func (c *Client) ListNodes(ctx context.Context) ([]placement.Node, error) {
	m, err := c.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	return m.Nodes, nil
}

// Status returns the cluster status from the meta leader: members, nodes
// with their heartbeat ages and replica states, and the map.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var reply wire.StatusReply
	if err := c.adminCall(ctx, true, wire.KindMetaStatus, &wire.StatusRequest{Leader: true}, &reply); err != nil {
		return nil, err
	}
	return statusFromWire(&reply), nil
}

// NodeStatus asks the data node at addr for its replicas' states.
func (c *Client) NodeStatus(ctx context.Context, addr string) (*NodeReport, error) {
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	var reply wire.NodeStatusReply
	if err := c.pool.Call(ctx, addr, wire.KindNodeStatus, &wire.NodeStatusRequest{}, &reply); err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return nil, fromWire(we)
		}
		return nil, err
	}
	return nodeReportFromWire(&reply), nil
}

// SetMaster makes node the master of one partition by a planned switchover
// that loses nothing: writes to the partition wait for the moment the node
// needs to catch up, then the node takes over with a new generation. It
// returns when the switchover is committed.
func (c *Client) SetMaster(ctx context.Context, table string, partition int, node placement.NodeID) error {
	req := wire.SetMasterRequest{Table: table, Partition: placement.PartitionID(partition), Node: node}
	var reply wire.EpochReply
	if err := c.adminCall(ctx, true, wire.KindMetaSetMaster, &req, &reply); err != nil {
		return err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return nil
}

// PlanRebalance returns, without changing anything, the moves a rebalance
// of table (every table when empty) would make; with mastersOnly, only the
// master switchovers.
func (c *Client) PlanRebalance(ctx context.Context, table string, mastersOnly bool) (*Plan, error) {
	var reply wire.PlanReply
	if err := c.adminCall(ctx, false, wire.KindMetaPlan, &wire.PlanRequest{Table: table, MastersOnly: mastersOnly}, &reply); err != nil {
		return nil, err
	}
	return planFromWire(&reply), nil
}

// RebalanceMasters spreads masters evenly across their replicas by planned
// switchovers and returns when they are committed.
func (c *Client) RebalanceMasters(ctx context.Context, table string) error {
	_, err := c.Rebalance(ctx, RebalanceOptions{Table: table, MastersOnly: true})
	return err
}

// AlterOptions are the changes AlterTable makes; nil fields are left as
// they are.
type AlterOptions struct {
	// Mode switches the replication mode online. Async → sync starts every
	// partition's in-sync set with its master alone: slaves rejoin it as
	// soon as they have caught up (milliseconds), and until MinInSync of
	// them have, writes wait (ErrNotEnoughReplicas when the deadline
	// passes first). Sync → async drops the in-sync sets: from then on a
	// write is acknowledged once its master has it.
	Mode *placement.Mode
	// MinInSync changes a sync table's minimum in-sync set.
	MinInSync *int
	// Fenced turns fencing on or off (a sync table is always fenced).
	Fenced *bool
}

// AlterTable changes a table's replication mode, minimum in-sync set or
// fencing while it serves, and returns the table as committed.
func (c *Client) AlterTable(ctx context.Context, name string, o AlterOptions) (*placement.Table, error) {
	var reply wire.TableReply
	req := wire.AlterTableRequest{Name: name, Mode: o.Mode, MinInSync: o.MinInSync, Fenced: o.Fenced}
	if err := c.adminCall(ctx, false, wire.KindMetaAlterTable, &req, &reply); err != nil {
		return nil, err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return &reply.Table, nil
}
