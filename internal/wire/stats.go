package wire

import "github.com/zeppelin-kv/zeppelin/placement"

// ServerStatsRequest asks a process, whatever its roles, for its recent
// load and events: what a dashboard shows about the other processes.
type ServerStatsRequest struct {
	// Series asks for the per-second history the process keeps too.
	Series bool `msgpack:"s,omitempty"`
	// Events asks for up to this many of the process's newest events.
	Events int `msgpack:"e,omitempty"`
}

// LoadFigures are the requests of one class (reads or writes) a data node
// served over an interval: their rate and latency percentiles.
type LoadFigures struct {
	OpsPerSec float64 `msgpack:"o"`
	P50Ms     float64 `msgpack:"p5"`
	P99Ms     float64 `msgpack:"p9"`
}

// LoadSample is one second of a data node's load.
type LoadSample struct {
	UnixSec int64       `msgpack:"t"`
	Read    LoadFigures `msgpack:"r"`
	Write   LoadFigures `msgpack:"w"`
}

// ServerEvent is something a process saw happen: a decision of the meta
// group its meta member proposed (Kind as in meta.Event), or a full sync
// of one of its replicas ("full sync", "full sync done").
type ServerEvent struct {
	TimeMs    int64                 `msgpack:"t"`
	Kind      string                `msgpack:"k"`
	Table     placement.TableID     `msgpack:"tb,omitempty"`
	Partition placement.PartitionID `msgpack:"p,omitempty"`
	Node      placement.NodeID      `msgpack:"n,omitempty"`
	From      placement.NodeID      `msgpack:"f,omitempty"`
	Gen       uint64                `msgpack:"g,omitempty"`
	Epoch     placement.Epoch       `msgpack:"e,omitempty"`
}

// ServerStatsReply describes a process: its data node's recent load
// (Read and Write over the last few seconds), its store and memory, and
// what it was asked for of its history and events.
type ServerStatsReply struct {
	NodeID string `msgpack:"n"`
	Roles  Roles  `msgpack:"r"`
	TimeMs int64  `msgpack:"t"`
	// Read and Write cover the last few seconds (data role only).
	Read  LoadFigures `msgpack:"rd"`
	Write LoadFigures `msgpack:"wr"`
	// StoreBytes is the disk space the data store takes, StoreLSMBytes
	// the part in Badger's LSM tree, StoreKeys an estimate of the keys in
	// its tables (every version and internal key counts).
	StoreBytes    int64 `msgpack:"sb,omitempty"`
	StoreLSMBytes int64 `msgpack:"sl,omitempty"`
	StoreKeys     int64 `msgpack:"sk,omitempty"`
	// MemBytes is the memory the Go runtime holds from the system, less
	// what it returned; Goroutines counts the process's goroutines.
	MemBytes   uint64 `msgpack:"mb"`
	Goroutines int    `msgpack:"g"`
	// Series is the per-second history, oldest first.
	Series []LoadSample `msgpack:"ser,omitempty"`
	// Events are the newest events, newest first.
	Events []ServerEvent `msgpack:"ev,omitempty"`
}
