package partition

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// gcBatchKeys bounds the keys one collector transaction deletes.
const gcBatchKeys = 1024

// wakeGC asks the collector to run; it never blocks.
func (s *Store) wakeGC() {
	select {
	case s.gcWake <- struct{}{}:
	default:
	}
}

// runGC is the store's garbage collector: on every wake-up it deletes the
// keys under each garbage marker in bounded transactions, then the marker.
func (s *Store) runGC() {
	for {
		select {
		case <-s.quit:
			return
		case <-s.gcWake:
		}
		if err := s.collect(); err != nil && !errors.Is(err, ErrClosed) {
			s.logger.Warn("partition: garbage collection failed", "err", err)
		}
	}
}

func (s *Store) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// collect deletes everything condemned by the markers present now.
func (s *Store) collect() error {
	markers, err := s.markers()
	if err != nil {
		return err
	}
	for _, m := range markers {
		if s.stopping() {
			return ErrClosed
		}
		// A marker commits in the same transaction that moves its replica
		// to a new incarnation, but readers learn of the move a moment
		// later; leave the incarnation alone until they have. The replica
		// wakes the collector again then.
		if s.incInUse(m) {
			continue
		}
		if err := s.collectMarker(m); err != nil {
			return fmt.Errorf("partition: collect %v: %w", m, err)
		}
	}
	return nil
}

func (s *Store) markers() ([]marker, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	var ms []marker
	err := s.db.View(func(txn *badger.Txn) error {
		return iterKeys(txn, []byte{prefixGarbage}, nil, func(k []byte) (bool, error) {
			if m, ok := parseGarbageKey(k); ok {
				ms = append(ms, m)
			}
			return true, nil
		})
	})
	return ms, err
}

// incInUse reports whether an open replica still serves the marker's
// incarnation from memory.
func (s *Store) incInUse(m marker) bool {
	s.mu.Lock()
	r := s.replicas[ReplicaID{m.table, m.part}]
	s.mu.Unlock()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if m.kind == garbageData {
		return r.st.DataInc == m.inc
	}
	return r.st.LogInc == m.inc
}

func (s *Store) collectMarker(m marker) error {
	for _, p := range m.prefixes() {
		if err := s.deletePrefix(p, nil); err != nil {
			return err
		}
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(m.key()) })
}

// deletePrefix deletes every key under prefix that sorts before end (all of
// them when end is nil), at most gcBatchKeys per transaction. It returns
// ErrClosed when the store stops meanwhile.
func (s *Store) deletePrefix(prefix, end []byte) error {
	return s.deleteRange(prefix, prefix, end)
}

// deleteRange is deletePrefix for the keys under prefix from start on.
func (s *Store) deleteRange(prefix, start, end []byte) error {
	for {
		if s.stopping() {
			return ErrClosed
		}
		n, next, err := s.deleteBatch(prefix, start, end)
		if err != nil || n == 0 {
			return err
		}
		start = next
	}
}

// deleteBatch deletes up to gcBatchKeys keys under prefix from start (and
// before end) in one transaction; it returns how many and where to go on.
func (s *Store) deleteBatch(prefix, start, end []byte) (int, []byte, error) {
	if err := s.acquire(); err != nil {
		return 0, nil, err
	}
	defer s.release()
	var keys [][]byte
	var size int64
	err := s.db.View(func(txn *badger.Txn) error {
		return iterKeys(txn, prefix, start, func(k []byte) (bool, error) {
			if end != nil && bytes.Compare(k, end) >= 0 {
				return false, nil
			}
			keys = append(keys, bytes.Clone(k))
			size += int64(len(k)) + 32
			return len(keys) < gcBatchKeys && size < s.txnBytes/2, nil
		})
	})
	if err != nil || len(keys) == 0 {
		return 0, nil, err
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	last := keys[len(keys)-1]
	return len(keys), append(last, 0), nil
}

// Value log collection: values of valueLogMin bytes and more live in
// Badger's value log, where a value overwritten, deleted or purged with
// its binlog record stays until its file is rewritten. Badger learns how
// much of each file is garbage as compactions drop the entries pointing
// there; RunValueLogGC rewrites the live entries of the file with the most
// garbage, if that is at least valueLogDiscardRatio of it, and deletes the
// file.
const (
	valueLogGCInterval   = time.Minute
	valueLogDiscardRatio = 0.5
	// valueLogMaxRewrites bounds the files one round rewrites, so that a
	// round's I/O is bounded too.
	valueLogMaxRewrites = 8
)

// runValueLogGC collects the value log every valueLogGCInterval until the
// store closes.
func (s *Store) runValueLogGC() {
	s.every(valueLogGCInterval, func() bool {
		if n, err := s.collectValueLog(); err != nil && !errors.Is(err, ErrClosed) {
			s.logger.Warn("partition: value log collection failed", "err", err, "files_rewritten", n)
		}
		return true
	})
}

// collectValueLog rewrites value log files while one is worth it, at most
// valueLogMaxRewrites, and returns how many it rewrote.
func (s *Store) collectValueLog() (int, error) {
	n := 0
	for ; n < valueLogMaxRewrites && !s.stopping(); n++ {
		if err := s.acquire(); err != nil {
			return n, err
		}
		err := s.db.RunValueLogGC(valueLogDiscardRatio)
		s.release()
		switch {
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return n, nil // nothing worth rewriting, or closing
		case err != nil:
			return n, fmt.Errorf("partition: value log GC: %w", err)
		}
		s.vlogRewrites.Add(1)
	}
	return n, nil
}

// ValueLogRewrites returns how many value log files the store has
// rewritten to reclaim their garbage since it opened.
func (s *Store) ValueLogRewrites() uint64 { return s.vlogRewrites.Load() }
