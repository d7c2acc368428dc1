package partition

import "errors"

var (
	// ErrNotMaster is returned by Write when the replica is not (or no
	// longer) promoted, and to queued writes that Demote discarded.
	ErrNotMaster = errors.New("partition: not master")

	// ErrClosed is returned by every Store and Replica method after Close
	// (or, for a Replica, after Store.Drop).
	ErrClosed = errors.New("partition: closed")

	// ErrPurged is wrapped by ReadLog when the requested records are older
	// than the retained log: the reader needs a full sync.
	ErrPurged = errors.New("partition: records purged")

	// ErrGap is wrapped by Apply when a record does not follow the
	// replica's last seq.
	ErrGap = errors.New("partition: gap in records")

	// ErrStaleGen is wrapped by Apply when a record comes from an older
	// generation than the replica's, and by Promote for a generation below
	// the replica's.
	ErrStaleGen = errors.New("partition: stale generation")

	// ErrIncomplete is returned by reads, writes, Apply, Snapshot and
	// Promote on a replica whose full sync has not finished.
	ErrIncomplete = errors.New("partition: replica incomplete (full sync not finished)")
)
