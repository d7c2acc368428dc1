package client

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Event is something a process saw happen: a decision of the meta group
// its meta member proposed, or a full sync of one of its replicas.
type Event struct {
	// Time is when it happened (for a meta decision, when it was taken).
	Time time.Time
	// Kind is one of "leader" (the member began to lead), "down" and "up"
	// (a data node declared so), "failover" (a new master), "unavailable"
	// (no replica could be promoted), "in-sync" (a sync partition's
	// in-sync set changed), "replicas" (another change that kept the
	// master), "released", "switchover", "migrated", "migration <state>",
	// "full sync" and "full sync done".
	Kind string
	// Table and Partition name the partition concerned (TableID 0: none).
	// Table is empty when the table is no longer in the caller's map.
	Table     string
	TableID   placement.TableID
	Partition placement.PartitionID
	// Node is the node concerned (the new master of a failover or a
	// switchover); From the previous master.
	Node, From placement.NodeID
	// Gen is the partition's generation after the event, Epoch the map's.
	Gen   uint64
	Epoch placement.Epoch
	// Source is the node ID of the process that reported the event.
	Source string
}

// eventsFromWire converts a process's reported events, naming tables from
// m (nil: IDs only).
func eventsFromWire(source string, m *placement.Map, evs []wire.ServerEvent) []Event {
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{Time: time.UnixMilli(e.TimeMs), Kind: e.Kind, TableID: e.Table, Partition: e.Partition,
			Node: e.Node, From: e.From, Gen: e.Gen, Epoch: e.Epoch, Source: source}
		if m != nil && e.Table != 0 {
			for _, t := range m.Tables {
				if t.ID == e.Table {
					out[i].Table = t.Name
				}
			}
		}
	}
	return out
}

// Events returns up to n (at most 500) of the newest events of the process
// at RPC address addr, newest first: the meta decisions its member
// proposed (a meta leader's are the cluster's failovers, switchovers and
// node state changes) and its replicas' full syncs.
func (c *Client) Events(ctx context.Context, addr string, n int) ([]Event, error) {
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	var reply wire.ServerStatsReply
	if err := c.call(ctx, addr, wire.KindServerStats, &wire.ServerStatsRequest{Events: max(n, 0)}, &reply); err != nil {
		return nil, err
	}
	m, _ := c.Map(ctx)
	return eventsFromWire(reply.NodeID, m, reply.Events), nil
}
