package partition

import (
	"errors"
	"runtime"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Limits of one commit round, over all the replicas it takes groups from.
const (
	// maxRoundGroups bounds the write groups of one round.
	maxRoundGroups = 1024
)

// The store's committers are its writers of master records; each replica
// belongs to one of them (its lane). Replicas with queued write groups line
// up in their lane's ready list (Submit puts them there); each round takes
// the ready replicas' groups, up to a budget, and commits them all in one
// Badger transaction: every replica's records, data and state, each
// replica's groups in the order they were queued.
//
// One transaction a round, rather than one per replica, is what makes
// writes to many partitions cheap: a Badger transaction has a fixed cost
// (its read timestamp waits for every commit in flight, and its commit is
// a hop to Badger's writer and back) that a commit per partition paid
// once per partition, and sixteen partitions committing at once queued
// behind each other's timestamps. With it, pipelined SETs spread over 16
// partitions cost what they cost in one (docs/performance.md).
//
// A replica's writeMu is held from the moment its groups are taken until
// they are committed and answered, so Demote and Close, which wait for
// writeMu after they stop the replica taking groups, return only once its
// commit in progress is over. A committer is the only holder of more than
// one writeMu, of replicas of its own lane only, and no holder of one
// waits for a committer.

// budget bounds what one round takes.
type budget struct {
	bytes, ops, groups int
	maxBytes, maxOps   int
}

func (b *budget) fits(req *request) bool {
	return b.bytes+req.size <= b.maxBytes && b.ops+len(req.ops) <= b.maxOps && b.groups < maxRoundGroups
}

func (b *budget) take(req *request) {
	b.bytes += req.size
	b.ops += len(req.ops)
	b.groups++
}

func (b *budget) full() bool {
	return b.bytes >= b.maxBytes || b.ops >= b.maxOps || b.groups >= maxRoundGroups
}

// lane is one committer's ready list: the replicas with write groups
// queued for it.
type lane struct {
	mu   sync.Mutex // guards list and its replicas' lined flags
	list []*Replica
	kick chan struct{}
}

// committerLanes returns how many committers a store runs: a few, so that
// while one waits for Badger's writer the others evaluate their rounds,
// and not many more than the cores, which would split the rounds too thin
// to share their commits (docs/performance.md has the measurements).
func committerLanes() int { return min(max(runtime.GOMAXPROCS(0), 4), 8) }

// laneOf assigns replica id to one of n lanes; its groups always go
// through the same committer, which keeps them in order.
func laneOf(id ReplicaID, n int) int {
	return int((uint64(id.Table)*0x9E3779B1 + uint64(id.Partition)) % uint64(n))
}

// ready lines r up for its committer; Submit calls it after queuing a
// group.
func (s *Store) ready(r *Replica) {
	l := s.lanes[r.lane]
	l.mu.Lock()
	if !r.lined {
		r.lined = true
		l.list = append(l.list, r)
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// take empties the lane's ready list. A replica that gets a group after
// this lines up again.
func (l *lane) take() []*Replica {
	l.mu.Lock()
	defer l.mu.Unlock()
	reps := l.list
	l.list = nil
	for _, r := range reps {
		r.lined = false
	}
	return reps
}

// runCommitter runs commit rounds for lane l while its replicas are
// ready, until the store closes.
func (s *Store) runCommitter(l *lane) {
	for {
		select {
		case <-s.quit:
			return
		case <-l.kick:
		}
		for {
			reps := l.take()
			if len(reps) == 0 {
				break
			}
			for len(reps) > 0 {
				reps = s.commitRound(reps)
			}
		}
	}
}

// roundPart is one replica's share of a round.
type roundPart struct {
	r     *Replica
	batch []*request
	gen   uint64
	a     appender
	outs  []outcome
	err   error // the part's own failure (closed, incomplete, stale generation)
}

// commitRound takes groups from reps in order until the round's budget is
// full, commits them, answers them and returns the replicas it did not
// get to.
func (s *Store) commitRound(reps []*Replica) []*Replica {
	b := budget{maxBytes: s.batchBytes, maxOps: int(s.txnEntries / 4)}
	var parts []roundPart
	i := 0
	for ; i < len(reps) && !b.full(); i++ {
		r := reps[i]
		r.writeMu.Lock()
		batch, gen, more := r.take(&b)
		if len(batch) == 0 {
			r.writeMu.Unlock()
			continue
		}
		if more {
			s.ready(r)
		}
		if r.testHookCommit != nil {
			r.testHookCommit()
		}
		parts = append(parts, roundPart{r: r, batch: batch, gen: gen})
	}
	if len(parts) > 0 {
		s.commitParts(parts)
		for j := range parts {
			parts[j].r.writeMu.Unlock()
		}
	}
	return reps[i:]
}

// commitParts commits the parts' groups in one transaction and answers
// them. When that transaction fails (it grew past Badger's limits, or a
// read failed), each part is committed on its own, as commitBatch does.
func (s *Store) commitParts(parts []roundPart) {
	if len(parts) == 1 {
		p := &parts[0]
		p.r.commitBatch(p.batch, p.gen)
		return
	}
	err := s.commitShared(parts)
	for j := range parts {
		p := &parts[j]
		switch {
		case err != nil:
			p.r.commitBatch(p.batch, p.gen)
		case p.err != nil:
			answer(p.batch, nil, p.r.commitError(p.err))
		default:
			answer(p.batch, p.outs, nil)
		}
	}
}

// commitShared evaluates every part's groups into one transaction and
// commits it. A part whose replica cannot take writes (closed, incomplete,
// or past the part's generation) gets its err and takes no part. A
// non-nil error means nothing was committed.
func (s *Store) commitShared(parts []roundPart) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	now := s.now()
	for j := range parts {
		p := &parts[j]
		ws, err := p.r.writableState(p.gen)
		if err != nil {
			p.err = err
			continue
		}
		p.a = appender{r: p.r, txn: txn, ws: ws}
		if p.outs, err = p.r.evalGroups(&p.a, p.batch, p.gen, now); err != nil {
			return err
		}
	}
	prepared := 0
	var err error
	for j := range parts {
		if p := &parts[j]; p.err == nil && p.a.n > 0 {
			if err = p.a.prepare(); err != nil {
				break
			}
			prepared = j + 1
		}
	}
	if err == nil {
		err = txn.Commit()
	}
	for j := range parts[:prepared] {
		if p := &parts[j]; p.err == nil && p.a.n > 0 {
			p.a.finish(err == nil)
		}
	}
	if err != nil && !errors.Is(err, badger.ErrTxnTooBig) {
		s.logger.Debug("partition: shared commit failed; committing replica by replica", "replicas", len(parts), "err", err)
	}
	return err
}
