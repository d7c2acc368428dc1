package meta

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Event is something the meta group decided: a node declared down or up,
// a failover, a switchover, or this member starting to lead. Time is when
// the decision was taken, before it was committed. Events are kept in
// memory by the member that proposed them, for operators and tests.
type Event struct {
	Time time.Time
	// Kind is "leader", "down", "up", "failover" (a new master),
	// "unavailable" (no replica could be promoted), "in-sync" (a sync
	// partition's in-sync set changed, its master kept), "replicas"
	// (another change that kept the master), "released", "switchover",
	// "migrated" or "migration <state>".
	Kind      string
	Table     placement.TableID
	Partition placement.PartitionID
	Node      placement.NodeID // the node concerned (new master for failover/switchover)
	From      placement.NodeID // previous master
	Gen       uint64
	Epoch     placement.Epoch
}

// eventLog is a bounded in-memory log.
type eventLog struct {
	decisions *prometheus.CounterVec

	mu     sync.Mutex
	events []Event
}

const maxEvents = 4096

func (l *eventLog) add(evs ...Event) {
	for _, e := range evs {
		l.decisions.WithLabelValues(e.Kind).Inc()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, evs...)
	if n := len(l.events); n > maxEvents {
		l.events = append(l.events[:0], l.events[n-maxEvents:]...)
	}
}

// Events returns the decisions this member proposed and saw committed,
// oldest first (at most the last 4096).
func (s *Server) Events() []Event {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return append([]Event(nil), s.events.events...)
}
