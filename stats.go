package zeppelin

import (
	"cmp"
	"context"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// maxStatsEvents bounds the events one ServerStats reply carries.
const maxStatsEvents = 500

// handleServerStats answers wire.KindServerStats, whatever the roles of
// the process.
func (s *Server) handleServerStats(_ context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.ServerStatsRequest](body, 16)
	if err != nil {
		return nil, err
	}
	st := s.serverStats(*req)
	return &st, nil
}

// serverStats describes this process: its data node's recent load, its
// store and memory, and what req asks of its history and events.
func (s *Server) serverStats(req wire.ServerStatsRequest) wire.ServerStatsReply {
	now := time.Now()
	r := wire.ServerStatsReply{NodeID: s.nodeID, Roles: s.wireRoles(), TimeMs: now.UnixMilli(), Goroutines: runtime.NumGoroutine()}
	r.MemBytes = memoryInUse()
	if s.node != nil {
		r.Read, r.Write = s.history.recent(now, recentWindow)
		sf := s.storeFigures()
		r.StoreBytes, r.StoreLSMBytes, r.StoreKeys = sf.diskBytes, sf.lsmBytes, sf.keys
		if req.Series {
			r.Series = s.history.series()
		}
	}
	if n := min(req.Events, maxStatsEvents); n > 0 {
		r.Events = s.recentEvents(n)
	}
	return r
}

// recentEvents returns this process's newest n events, newest first: the
// meta decisions its member proposed and its replicas' full syncs.
func (s *Server) recentEvents(n int) []wire.ServerEvent {
	evs := s.history.localEvents()
	if s.meta != nil {
		for _, e := range s.meta.Events() {
			evs = append(evs, wire.ServerEvent{TimeMs: e.Time.UnixMilli(), Kind: e.Kind, Table: e.Table, Partition: e.Partition,
				Node: e.Node, From: e.From, Gen: e.Gen, Epoch: e.Epoch})
		}
	}
	slices.SortStableFunc(evs, func(a, b wire.ServerEvent) int { return cmp.Compare(b.TimeMs, a.TimeMs) })
	if len(evs) > n {
		evs = evs[:n]
	}
	return evs
}

// memoryInUse is the memory the Go runtime has mapped, less what it
// returned to the system.
func memoryInUse() uint64 {
	ss := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(ss)
	var total, released uint64
	if ss[0].Value.Kind() == metrics.KindUint64 {
		total = ss[0].Value.Uint64()
	}
	if ss[1].Value.Kind() == metrics.KindUint64 {
		released = ss[1].Value.Uint64()
	}
	return total - min(released, total)
}

// storeFigures are a data node's store as Badger sees it.
type storeFigures struct {
	diskBytes int64 // every file of the store, as allocated on disk
	lsmBytes  int64 // the LSM tree's tables
	vlogBytes int64 // the value log's files, as allocated on disk
	keys      int64 // keys in the tables, every version (memtables not counted)
	levels    []levelFigures
}

type levelFigures struct {
	level  int
	tables int
	bytes  int64
}

// storeFigures reads the store's figures: Badger's table index and the
// sizes of the files in its directory, no data.
func (s *Server) storeFigures() storeFigures {
	var f storeFigures
	if s.node == nil || s.group.Stopped() {
		return f
	}
	db := s.node.Store().DB()
	for _, l := range db.Levels() {
		f.lsmBytes += l.Size
		f.levels = append(f.levels, levelFigures{level: l.Level, tables: l.NumTables, bytes: l.Size})
	}
	for _, t := range db.Tables() {
		f.keys += int64(t.KeyCount)
	}
	_ = filepath.WalkDir(db.Opts().Dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n := allocatedBytes(info)
			f.diskBytes += n
			if strings.HasSuffix(d.Name(), ".vlog") {
				f.vlogBytes += n
			}
		}
		return nil
	})
	return f
}

// storeCollector exports a data node's store figures when scraped.
type storeCollector struct{ s *Server }

var (
	descStoreDisk = prometheus.NewDesc("zeppelin_store_disk_bytes",
		"Disk space the data node's store takes (every file, as allocated).", nil, nil)
	descStoreLSM = prometheus.NewDesc("zeppelin_store_lsm_bytes",
		"Bytes in the store's LSM tables (Badger).", nil, nil)
	descStoreVlog = prometheus.NewDesc("zeppelin_store_vlog_bytes",
		"Disk space the store's value log takes (Badger's .vlog files, as allocated).", nil, nil)
	descStoreKeys = prometheus.NewDesc("zeppelin_store_keys_estimate",
		"Keys in the store's LSM tables, every version and internal key counted, memtables not (Badger's table index).", nil, nil)
	descStoreLevelTables = prometheus.NewDesc("zeppelin_store_level_tables",
		"Tables in each level of the store's LSM tree (Badger).", []string{"level"}, nil)
	descStoreLevelBytes = prometheus.NewDesc("zeppelin_store_level_bytes",
		"Bytes in each level of the store's LSM tree (Badger).", []string{"level"}, nil)
	descBlockCacheHits = prometheus.NewDesc("zeppelin_store_block_cache_hits_total",
		"Hits of Badger's block cache.", nil, nil)
	descBlockCacheMisses = prometheus.NewDesc("zeppelin_store_block_cache_misses_total",
		"Misses of Badger's block cache.", nil, nil)
	descIndexCacheHits = prometheus.NewDesc("zeppelin_store_index_cache_hits_total",
		"Hits of Badger's table index cache (absent when indexes stay in memory).", nil, nil)
	descIndexCacheMisses = prometheus.NewDesc("zeppelin_store_index_cache_misses_total",
		"Misses of Badger's table index cache (absent when indexes stay in memory).", nil, nil)
	descReadCacheHits = prometheus.NewDesc("zeppelin_store_read_cache_hits_total",
		"Point reads the store's read cache answered (absent when it is off).", nil, nil)
	descReadCacheMisses = prometheus.NewDesc("zeppelin_store_read_cache_misses_total",
		"Point reads the store's read cache did not answer (absent when it is off).", nil, nil)
	descReadCacheEntries = prometheus.NewDesc("zeppelin_store_read_cache_entries",
		"Answers the store's read cache holds (absent when it is off).", nil, nil)
	descReadCacheBytes = prometheus.NewDesc("zeppelin_store_read_cache_bytes",
		"Memory the store's read cache's answers take, approximately (absent when it is off).", nil, nil)
	descVlogRewrites = prometheus.NewDesc("zeppelin_store_vlog_rewrites_total",
		"Value log files the store rewrote to reclaim the space of overwritten, deleted and purged values.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreDisk, descStoreLSM, descStoreVlog, descStoreKeys, descStoreLevelTables,
		descStoreLevelBytes, descBlockCacheHits, descBlockCacheMisses, descIndexCacheHits, descIndexCacheMisses,
		descReadCacheHits, descReadCacheMisses, descReadCacheEntries, descReadCacheBytes, descVlogRewrites} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.group.Stopped() {
		return // the store may be closing
	}
	f := c.s.storeFigures()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(descStoreDisk, f.diskBytes)
	gauge(descStoreLSM, f.lsmBytes)
	gauge(descStoreVlog, f.vlogBytes)
	gauge(descStoreKeys, f.keys)
	for _, l := range f.levels {
		lv := strconv.Itoa(l.level)
		gauge(descStoreLevelTables, int64(l.tables), lv)
		gauge(descStoreLevelBytes, l.bytes, lv)
	}
	store := c.s.node.Store()
	ch <- prometheus.MustNewConstMetric(descVlogRewrites, prometheus.CounterValue, float64(store.ValueLogRewrites()))
	if rc, ok := store.ReadCacheStats(); ok {
		ch <- prometheus.MustNewConstMetric(descReadCacheHits, prometheus.CounterValue, float64(rc.Hits))
		ch <- prometheus.MustNewConstMetric(descReadCacheMisses, prometheus.CounterValue, float64(rc.Misses))
		gauge(descReadCacheEntries, int64(rc.Entries))
		gauge(descReadCacheBytes, rc.Bytes)
	}
	db := store.DB()
	if m := db.BlockCacheMetrics(); m != nil {
		ch <- prometheus.MustNewConstMetric(descBlockCacheHits, prometheus.CounterValue, float64(m.Hits()))
		ch <- prometheus.MustNewConstMetric(descBlockCacheMisses, prometheus.CounterValue, float64(m.Misses()))
	}
	if m := db.IndexCacheMetrics(); m != nil {
		ch <- prometheus.MustNewConstMetric(descIndexCacheHits, prometheus.CounterValue, float64(m.Hits()))
		ch <- prometheus.MustNewConstMetric(descIndexCacheMisses, prometheus.CounterValue, float64(m.Misses()))
	}
}

// Events returns up to n of this process's newest events, newest first:
// the meta decisions its meta member proposed (on the meta leader: the
// cluster's failovers, switchovers, node state changes and migration
// steps) and its replicas' full syncs. Client.Events asks another process
// for its own.
func (s *Server) Events(n int) []client.Event {
	evs := s.recentEvents(max(n, 0))
	out := make([]client.Event, len(evs))
	for i, e := range evs {
		out[i] = client.Event{Time: time.UnixMilli(e.TimeMs), Kind: e.Kind, TableID: e.Table, Partition: e.Partition,
			Node: e.Node, From: e.From, Gen: e.Gen, Epoch: e.Epoch, Source: s.nodeID}
		if e.Table != 0 {
			out[i].Table, _ = s.tableName(e.Table)
		}
	}
	return out
}
