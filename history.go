package zeppelin

import (
	"math"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/node"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The load history: once a second the server samples its data node's
// request histograms and keeps the difference with the previous sample,
// for the last historyLen seconds. Dashboards chart it; the recent
// seconds give the node's current rate and percentiles.
const (
	historyLen     = 300 // samples (seconds) kept
	sampleInterval = time.Second
	// recentWindow is what "current" load figures average over.
	recentWindow = 10 * time.Second
	// maxLocalEvents bounds the full-sync events a server keeps.
	maxLocalEvents = 256
)

// loadSample is what the node served between two samples.
type loadSample struct {
	at          time.Time
	span        time.Duration // since the previous sample
	read, write histDelta
}

// histDelta is the difference of two cumulative histograms.
type histDelta struct {
	count   uint64
	buckets []uint64 // cumulative, per node.LatencyBuckets bound
}

func delta(now, prev node.Histogram) histDelta {
	d := histDelta{count: now.Count - prev.Count, buckets: make([]uint64, len(now.Buckets))}
	for i := range now.Buckets {
		if i < len(prev.Buckets) {
			d.buckets[i] = now.Buckets[i] - prev.Buckets[i]
		}
	}
	return d
}

// add sums o into d.
func (d *histDelta) add(o histDelta) {
	d.count += o.count
	if d.buckets == nil {
		d.buckets = make([]uint64, len(o.buckets))
	}
	for i := range o.buckets {
		if i < len(d.buckets) {
			d.buckets[i] += o.buckets[i]
		}
	}
}

// quantile estimates the q-quantile in milliseconds by linear
// interpolation within its bucket, as Prometheus's histogram_quantile
// does; 0 without samples.
func (d histDelta) quantile(q float64) float64 {
	if d.count == 0 {
		return 0
	}
	rank := q * float64(d.count)
	lower, below := 0.0, uint64(0)
	for i, c := range d.buckets {
		upper := node.LatencyBuckets[i]
		if float64(c) >= rank {
			in := c - below
			if in == 0 {
				return upper * 1000
			}
			return (lower + (upper-lower)*(rank-float64(below))/float64(in)) * 1000
		}
		lower, below = upper, c
	}
	// In the +Inf bucket: the largest bound is all one can say.
	return node.LatencyBuckets[len(node.LatencyBuckets)-1] * 1000
}

func (d histDelta) figures(span time.Duration) wire.LoadFigures {
	f := wire.LoadFigures{P50Ms: round3(d.quantile(0.5)), P99Ms: round3(d.quantile(0.99))}
	if span > 0 {
		f.OpsPerSec = round3(float64(d.count) / span.Seconds())
	}
	return f
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// loadHistory is the ring of samples plus the full-sync events seen while
// sampling. It is safe for concurrent use.
type loadHistory struct {
	mu      sync.Mutex
	samples []loadSample // ring of historyLen, next is the oldest once full
	next    int
	prev    node.RequestTotals
	prevAt  time.Time
	// syncs remembers every replica's replication state and full-sync
	// count at the previous sample.
	syncs  map[replicaRef]syncState
	events []wire.ServerEvent // oldest first, at most maxLocalEvents
}

type replicaRef struct {
	table placement.TableID
	part  placement.PartitionID
}

type syncState struct {
	syncing bool
	done    uint64
}

// record adds the sample taken at now.
func (h *loadHistory) record(now time.Time, t node.RequestTotals) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.prevAt.IsZero() {
		s := loadSample{at: now, span: now.Sub(h.prevAt), read: delta(t.Read, h.prev.Read), write: delta(t.Write, h.prev.Write)}
		if len(h.samples) < historyLen {
			h.samples = append(h.samples, s)
		} else {
			h.samples[h.next] = s
			h.next = (h.next + 1) % historyLen
		}
	}
	h.prev, h.prevAt = t, now
}

// ordered returns the samples oldest first; h.mu must be held.
func (h *loadHistory) ordered() []loadSample {
	out := make([]loadSample, 0, len(h.samples))
	out = append(out, h.samples[h.next:]...)
	return append(out, h.samples[:h.next]...)
}

// recent returns the read and write figures over the samples of the last
// window.
func (h *loadHistory) recent(now time.Time, window time.Duration) (read, write wire.LoadFigures) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r, w histDelta
	var span time.Duration
	for _, s := range h.ordered() {
		if now.Sub(s.at) <= window {
			r.add(s.read)
			w.add(s.write)
			span += s.span
		}
	}
	return r.figures(span), w.figures(span)
}

// series returns every sample's figures, oldest first.
func (h *loadHistory) series() []wire.LoadSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := h.ordered()
	out := make([]wire.LoadSample, len(all))
	for i, s := range all {
		out[i] = wire.LoadSample{UnixSec: s.at.Unix(), Read: s.read.figures(s.span), Write: s.write.figures(s.span)}
	}
	return out
}

// noteReplicas compares the replicas' states with the previous sample's
// and records the full syncs that began or completed.
func (h *loadHistory) noteReplicas(now time.Time, self placement.NodeID, rs []wire.ReplicaStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.syncs == nil
	next := make(map[replicaRef]syncState, len(rs))
	for _, r := range rs {
		ref := replicaRef{r.Table, r.Partition}
		cur := syncState{syncing: r.State == wire.ReplFullSyncing, done: r.FullSyncs}
		next[ref] = cur
		old, seen := h.syncs[ref]
		if first {
			continue
		}
		ev := wire.ServerEvent{TimeMs: now.UnixMilli(), Table: r.Table, Partition: r.Partition, Node: self, Gen: r.Gen}
		switch {
		case cur.done > old.done && seen || !seen && cur.done > 0:
			ev.Kind = "full sync done"
		case cur.syncing && (!seen || !old.syncing):
			ev.Kind = "full sync"
		default:
			continue
		}
		h.events = append(h.events, ev)
	}
	if n := len(h.events); n > maxLocalEvents {
		h.events = append(h.events[:0], h.events[n-maxLocalEvents:]...)
	}
	h.syncs = next
}

// localEvents returns the full-sync events, oldest first.
func (h *loadHistory) localEvents() []wire.ServerEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wire.ServerEvent(nil), h.events...)
}

// sampleLoad samples the data node every sampleInterval until the server
// closes; it runs on the server's group and closes sampled when it
// returns.
func (s *Server) sampleLoad() {
	defer close(s.sampled)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	s.history.record(time.Now(), s.node.RequestTotals())
	for {
		select {
		case <-s.group.Done():
			return
		case now := <-t.C:
			s.history.record(now, s.node.RequestTotals())
			s.history.noteReplicas(now, s.node.ID(), s.node.Status().Replicas)
		}
	}
}
