package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Writes remembers, per partition, the last write made through a client
// (or through the calls given a context carrying it, see TrackWrites), so
// that WaitReplicas knows what to wait for. It is safe for concurrent use.
type Writes struct {
	mu   sync.Mutex
	seqs map[writeKey]uint64
}

type writeKey struct {
	table placement.TableID
	part  placement.PartitionID
}

// NewWrites returns an empty write tracker.
func NewWrites() *Writes { return &Writes{seqs: make(map[writeKey]uint64)} }

// noteLocked records a write of seq on a partition; w.mu is held.
func (w *Writes) noteLocked(table placement.TableID, part placement.PartitionID, seq uint64) {
	if seq == 0 {
		return
	}
	k := writeKey{table, part}
	if seq > w.seqs[k] {
		w.seqs[k] = seq
	}
}

func (w *Writes) snapshot() map[writeKey]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[writeKey]uint64, len(w.seqs))
	for k, v := range w.seqs {
		out[k] = v
	}
	return out
}

// Len returns the number of partitions with a tracked write.
func (w *Writes) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

type writesKey struct{}

// TrackWrites returns a copy of ctx under which the client records the
// writes it makes in w instead of in its own tracker: a RESP connection
// keeps one per connection, so WAIT waits for that connection's writes.
func TrackWrites(ctx context.Context, w *Writes) context.Context {
	return context.WithValue(ctx, writesKey{}, w)
}

func (c *Client) writesOf(ctx context.Context) *Writes {
	if w, ok := ctx.Value(writesKey{}).(*Writes); ok && w != nil {
		return w
	}
	return c.writes
}

// noteWrite records the seqs a write reply reports.
func (c *Client) noteWrite(ctx context.Context, req *wire.WriteRequest, reply *wire.WriteReply) {
	w := c.writesOf(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, g := range reply.Groups {
		if g.Err == nil && i < len(req.Groups) {
			w.noteLocked(req.Table, req.Groups[i].Partition, g.Seq)
		}
	}
}

// WaitReplicas waits until at least n slaves of every partition written
// through the client (or through ctx's tracker, see TrackWrites) have
// acknowledged everything written there, or timeout passes (0: until ctx
// ends), and returns the smallest number of slaves that had on any of those
// partitions — Redis WAIT. With nothing written it returns 0. On an async
// table this bounds what a failover could lose; a sync table needs no
// waiting (its writes are acknowledged by the in-sync set already).
func (c *Client) WaitReplicas(ctx context.Context, n int, timeout time.Duration) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: %d replicas", ErrInvalid, n)
	}
	seqs := c.writesOf(ctx).snapshot()
	if len(seqs) == 0 {
		return 0, nil
	}
	ctx, call := c.withTimeout(ctx)
	defer call.release()
	if timeout > 0 {
		// The reply must make it back before the caller's deadline.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl) * 9 / 10
		}
	}
	least := -1
	err := c.do(ctx, true, func(m *placement.Map) error {
		type batch struct {
			table placement.TableID
			addr  string
		}
		batches := map[batch][]wire.WaitSeq{}
		for k, seq := range seqs {
			t := m.TableByID(k.table)
			if t == nil || int(k.part) >= len(t.Partitions) {
				continue // dropped meanwhile: nothing left to wait for
			}
			_, addr, err := route(m, t.Name, k.part)
			if err != nil {
				return err
			}
			b := batch{k.table, addr}
			batches[b] = append(batches[b], wire.WaitSeq{Partition: k.part, Seq: seq})
		}
		least = -1
		for b, ws := range batches {
			req := wire.WaitReplicasRequest{Table: b.table, Epoch: m.Epoch, Seqs: ws, Replicas: n, TimeoutMs: timeout.Milliseconds()}
			var reply wire.WaitReplicasReply
			if err := c.call(ctx, b.addr, wire.KindWaitRepl, &req, &reply); err != nil {
				return err
			}
			for _, a := range reply.Acked {
				if least < 0 || a < least {
					least = a
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return max(least, 0), nil
}
