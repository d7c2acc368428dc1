package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Migration is one replica move and, while it runs, its progress as the
// meta leader sees it.
type Migration struct {
	// ID names the migration; Batch the rebalance, drain or
	// re-replication that queued it (0 for a single move).
	ID, Batch uint64
	Table     string
	Partition int
	// From is the node giving up its replica (empty when a lost replica is
	// re-created); To the node receiving it (empty when a surplus replica
	// is dropped).
	From, To placement.NodeID
	State    placement.MigrationState
	// RateBytes is the copy bandwidth limit in bytes per second (0: none).
	RateBytes int64
	// Created and Updated are when the migration was queued and last moved
	// on.
	Created, Updated time.Time
	// Attempts counts the failed handovers of a moving master.
	Attempts int
	// Error says why the migration failed or was cancelled.
	Error string
	// CopiedBytes and TotalBytes measure the target's copy (TotalBytes is
	// an estimate, 0 when unknown); LagRecords is how far behind the
	// master its log is; CopyRate is the copy's recent bytes per second.
	CopiedBytes, TotalBytes int64
	LagRecords              uint64
	CopyRate                int64
}

func migrationFromWire(s wire.MigrationStatus) Migration {
	return Migration{
		ID: s.ID, Batch: s.Batch, Table: s.TableName, Partition: int(s.Partition),
		From: s.From, To: s.To, State: s.State, RateBytes: s.Migration.RateBytes,
		Created: time.UnixMilli(s.Created), Updated: time.UnixMilli(s.Updated),
		Attempts: s.Attempts, Error: s.Error,
		CopiedBytes: s.CopiedBytes, TotalBytes: s.TotalBytes, LagRecords: s.LagRecords, CopyRate: s.RateBytes,
	}
}

// MigrateOption adjusts a Migrate call. Force and CopyRate make them; the
// zero MigrateOption changes nothing.
type MigrateOption struct {
	apply func(*wire.MigrateRequest)
}

// Force moves the replica even onto a node that shares a failure domain
// with another replica of the partition.
func Force() MigrateOption {
	return MigrateOption{func(r *wire.MigrateRequest) { r.Force = true }}
}

// CopyRate bounds the move's copy bandwidth to bytes per second (the
// cluster's default otherwise).
func CopyRate(bytesPerSecond int64) MigrateOption {
	return MigrateOption{func(r *wire.MigrateRequest) { r.RateBytes = bytesPerSecond }}
}

// Migrate queues the move of partition's replica on node from to node to
// and returns the migration's ID; follow it with Migrations or
// WaitMigration. The move loses no write: to copies the partition and
// follows its binlog first, and a moving master hands over its role the
// way SetMaster does. It is refused, with ErrInvalid and nothing changed,
// when to already holds the partition, is unknown, down or being drained,
// shares a failure domain with another replica (unless Force), or when the
// partition is already moving.
func (c *Client) Migrate(ctx context.Context, table string, partition int, from, to placement.NodeID, opts ...MigrateOption) (uint64, error) {
	if partition < 0 {
		return 0, fmt.Errorf("%w: partition %d", ErrInvalid, partition)
	}
	req := wire.MigrateRequest{Table: table, Partition: placement.PartitionID(partition), From: from, To: to}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&req)
		}
	}
	var reply wire.MigrateReply
	if err := c.adminCall(ctx, true, wire.KindMetaMigrate, &req, &reply); err != nil {
		return 0, err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return reply.ID, nil
}

// CancelMigration stops a migration and rolls it back (the target's copy is
// deleted); it returns once that is committed. Cancelling a finished
// migration is refused with ErrInvalid.
func (c *Client) CancelMigration(ctx context.Context, id uint64) error {
	return c.cancel(ctx, wire.CancelMigrationRequest{ID: id})
}

// CancelBatch cancels every unfinished migration of a batch (a rebalance
// or a drain).
func (c *Client) CancelBatch(ctx context.Context, batch uint64) error {
	return c.cancel(ctx, wire.CancelMigrationRequest{Batch: batch})
}

func (c *Client) cancel(ctx context.Context, req wire.CancelMigrationRequest) error {
	var reply wire.EpochReply
	if err := c.adminCall(ctx, true, wire.KindMetaCancel, &req, &reply); err != nil {
		return err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return nil
}

// Migrations lists the migrations in progress and the most recent finished
// ones, oldest first; of one batch only when batch is not 0.
func (c *Client) Migrations(ctx context.Context, batch uint64) ([]Migration, error) {
	var reply wire.MigrationsReply
	if err := c.adminCall(ctx, true, wire.KindMetaMigrations, &wire.MigrationsRequest{Batch: batch}, &reply); err != nil {
		return nil, err
	}
	out := make([]Migration, len(reply.Migrations))
	for i, s := range reply.Migrations {
		out[i] = migrationFromWire(s)
	}
	return out, nil
}

// BatchProgress sums up the migrations of a batch (or of one migration).
type BatchProgress struct {
	// Total migrations; Done, Failed and Cancelled among them.
	Total, Done, Failed, Cancelled int
	// CopiedBytes and TotalBytes sum the copies in progress; LagRecords is
	// the largest lag among them; CopyRate sums their rates.
	CopiedBytes, TotalBytes int64
	LagRecords              uint64
	CopyRate                int64
	// Running lists the migrations not finished yet.
	Running []Migration
}

// Finished reports whether every migration has ended.
func (p BatchProgress) Finished() bool { return p.Done+p.Failed+p.Cancelled == p.Total }

// ETA estimates the time left from the copy rate (0 when unknown).
func (p BatchProgress) ETA() time.Duration {
	if p.CopyRate <= 0 || p.TotalBytes <= p.CopiedBytes {
		return 0
	}
	return time.Duration(float64(p.TotalBytes-p.CopiedBytes) / float64(p.CopyRate) * float64(time.Second))
}

func progressOf(ms []Migration, keep func(Migration) bool) BatchProgress {
	var p BatchProgress
	for _, m := range ms {
		if !keep(m) {
			continue
		}
		p.Total++
		switch m.State {
		case placement.MigrationDone:
			p.Done++
		case placement.MigrationFailed:
			p.Failed++
		case placement.MigrationCancelled:
			p.Cancelled++
		default:
			p.Running = append(p.Running, m)
			p.CopiedBytes += m.CopiedBytes
			p.TotalBytes += m.TotalBytes
			p.LagRecords = max(p.LagRecords, m.LagRecords)
			p.CopyRate += m.CopyRate
		}
	}
	return p
}

// WaitBatch waits until every migration of batch has finished, calling
// progress (when not nil) with each poll's summary, and returns the last
// one. It returns ctx's error if it ends first.
func (c *Client) WaitBatch(ctx context.Context, batch uint64, progress func(BatchProgress)) (BatchProgress, error) {
	var p BatchProgress
	err := c.pollMigrations(ctx, batch, func(ms []Migration) bool {
		p = progressOf(ms, func(m Migration) bool { return m.Batch == batch })
		if progress != nil {
			progress(p)
		}
		return p.Finished()
	})
	return p, err
}

// WaitMigration waits until migration id has finished and returns it as it
// ended. A migration the map no longer lists (finished long ago, or never
// queued) is reported with ErrInvalid.
func (c *Client) WaitMigration(ctx context.Context, id uint64) (Migration, error) {
	var out Migration
	var missing bool
	err := c.pollMigrations(ctx, 0, func(ms []Migration) bool {
		for _, m := range ms {
			if m.ID == id {
				out = m
				return m.State.Finished()
			}
		}
		missing = true
		return true
	})
	if err == nil && missing {
		err = fmt.Errorf("%w: no migration %d in the map", ErrInvalid, id)
	}
	return out, err
}

// pollMigrations lists the migrations (of batch, when not 0) until done
// returns true for a listing, then refreshes the client's map.
func (c *Client) pollMigrations(ctx context.Context, batch uint64, done func([]Migration) bool) error {
	wait := 20 * time.Millisecond
	for {
		ms, err := c.Migrations(ctx, batch)
		if err != nil {
			return err
		}
		if done(ms) {
			_, _ = c.Refresh(ctx)
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// RebalanceOptions adjust Rebalance.
type RebalanceOptions struct {
	// Table limits the rebalance to one table (every table when empty).
	Table string
	// MastersOnly moves master roles only (planned switchovers, no copy).
	MastersOnly bool
	// CopyRate bounds each move's copy bandwidth in bytes per second (the
	// cluster's default when 0).
	CopyRate int64
}

// RebalanceResult says what a rebalance started.
type RebalanceResult struct {
	// Batch names the migrations queued (follow it with WaitBatch); 0 when
	// no replica needed to move.
	Batch uint64
	// Migrations counts them; Switchovers counts the master roles moved
	// (when no replica needed to move, or with MastersOnly).
	Migrations, Switchovers int
}

// Rebalance balances the cluster: it queues the replica moves the placement
// plan calls for (see PlanRebalance) as one batch of migrations, run a few
// at a time with their copy bandwidth bounded, after which masters are
// balanced again; when no replica needs to move (or with MastersOnly) it
// balances master roles at once by planned switchovers and returns when
// they are committed.
func (c *Client) Rebalance(ctx context.Context, o RebalanceOptions) (RebalanceResult, error) {
	var reply wire.RebalanceReply
	req := wire.RebalanceRequest{Table: o.Table, MastersOnly: o.MastersOnly, RateBytes: o.CopyRate}
	if err := c.adminCall(ctx, true, wire.KindMetaRebalance, &req, &reply); err != nil {
		return RebalanceResult{}, err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return RebalanceResult{Batch: reply.Batch, Migrations: reply.Migrations, Switchovers: reply.Switchovers}, nil
}

// DrainNode marks a data node as draining and queues the migrations that
// move every replica it holds elsewhere (respecting failure domains); it
// returns their batch. The node keeps serving until its last replica has
// moved. Draining the last node able to hold some replica is refused with
// ErrInvalid.
func (c *Client) DrainNode(ctx context.Context, node placement.NodeID) (batch uint64, migrations int, err error) {
	reply, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeDrain, Node: node})
	return reply.Batch, reply.Migrations, err
}

// UndrainNode lets a drained node hold replicas again (the next rebalance
// gives it its share).
func (c *Client) UndrainNode(ctx context.Context, node placement.NodeID) error {
	_, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeUndrain, Node: node})
	return err
}

// RemoveNode forgets a data node. It is refused with ErrInvalid while the
// node still holds a replica or takes part in a migration: drain it first.
// A removed node cannot register again with its data directory.
func (c *Client) RemoveNode(ctx context.Context, node placement.NodeID) error {
	_, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeRemove, Node: node})
	return err
}

// SetNodeWeight sets a data node's weight (its relative capacity, 1 to
// 1000); the next rebalance follows it.
func (c *Client) SetNodeWeight(ctx context.Context, node placement.NodeID, weight int) error {
	_, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeWeight, Node: node, Weight: weight})
	return err
}

func (c *Client) nodeAdmin(ctx context.Context, req wire.NodeAdminRequest) (wire.NodeAdminReply, error) {
	var reply wire.NodeAdminReply
	if err := c.adminCall(ctx, true, wire.KindMetaNodeAdmin, &req, &reply); err != nil {
		return reply, err
	}
	c.waitEpoch(ctx, reply.Epoch)
	return reply, nil
}
