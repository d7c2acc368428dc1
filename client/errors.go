package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// Sentinel errors. Match them with errors.Is: the errors the client returns
// wrap them with detail.
var (
	// ErrNotFound is returned by Get and TTL when the key does not exist
	// (or has expired).
	ErrNotFound = errors.New("zeppelin: key not found")
	// ErrTableNotFound is returned when the named table does not exist.
	ErrTableNotFound = errors.New("zeppelin: table not found")
	// ErrTableExists is returned by CreateTable for an existing name.
	ErrTableExists = errors.New("zeppelin: table already exists")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("zeppelin: client closed")
	// ErrUnavailable means a partition has no reachable master (all its
	// replicas are down, or a failover has not finished) until the deadline.
	ErrUnavailable = errors.New("zeppelin: partition unavailable")
	// ErrInvalid is returned for invalid arguments and exceeded limits; the
	// message names the limit.
	ErrInvalid = errors.New("zeppelin: invalid argument")
	// ErrNotInteger is returned by Incr when the value is not a base-10
	// 64-bit integer. The value is left untouched.
	ErrNotInteger = errors.New("zeppelin: value is not an integer")
	// ErrOverflow is returned by Incr when the result would overflow int64.
	// The value is left untouched.
	ErrOverflow = errors.New("zeppelin: increment would overflow")
	// ErrCrossSlot is returned by Batch.Commit when the keys of a batch do
	// not share one hashtag. Nothing is written.
	ErrCrossSlot = errors.New("zeppelin: keys in a batch must share one hashtag")
	// ErrNotEnoughReplicas means a sync-mode partition has fewer in-sync
	// replicas than its minimum; the write was not applied. Retryable.
	ErrNotEnoughReplicas = errors.New("zeppelin: not enough in-sync replicas")
	// ErrAmbiguous means a request that may not be repeated (Incr, a
	// conditional set, a batch with either, and every write to a sync
	// table) may or may not have been applied: the connection failed
	// after it was sent, its master was replaced while it waited, or the
	// master's lease lapsed while it was applied. Plain writes to other
	// tables are sent again instead.
	ErrAmbiguous = errors.New("zeppelin: outcome unknown")
	// ErrUnknownName is returned by admin calls that name a node, a meta
	// member or a migration the cluster does not know. Such errors are
	// ErrInvalid too.
	ErrUnknownName = errors.New("zeppelin: unknown name")
	// ErrNoMeta means the meta group could not be reached: none of the
	// seeds led to a meta member within about a second (a wrong address,
	// say, or a cluster that is not running), or the meta members known did
	// not answer before the deadline while the call needed the map.
	ErrNoMeta = errors.New("zeppelin: meta group unreachable")
)

// KeyError reports the failure of one key of a multi-key operation.
type KeyError struct {
	Key []byte
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }

// Unwrap returns the key's error.
func (e *KeyError) Unwrap() error { return e.Err }

// MultiError is returned by MGet, MSet and MDelete when some keys failed.
// Operations are atomic per partition, not across partitions: the keys in
// Succeeded were applied (or read), those in Failed were not.
type MultiError struct {
	Failed    []KeyError
	Succeeded [][]byte

	// byIndex holds each item's error in request order (nil when it
	// succeeded).
	byIndex []error
}

func (e *MultiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "zeppelin: %d of %d keys failed", len(e.Failed), len(e.Failed)+len(e.Succeeded))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; ...")
			break
		}
		fmt.Fprintf(&b, "; %v", &f)
	}
	return b.String()
}

// Unwrap returns the distinct causes, so errors.Is(err, ErrUnavailable)
// works on a MultiError.
func (e *MultiError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for i := range e.Failed {
		out = append(out, e.Failed[i].Err)
	}
	return out
}

// fromWire maps a server error to the client's error vocabulary.
func fromWire(we *wire.Error) error {
	switch we.Code {
	case wire.CodeTableNotFound:
		return restated(ErrTableNotFound, we.Msg)
	case wire.CodeTableExists:
		return restated(ErrTableExists, we.Msg)
	case wire.CodeInvalid, wire.CodeBadRequest:
		return fmt.Errorf("%w: %s", ErrInvalid, we.Msg)
	case wire.CodeNotFound:
		return unknownErr{we.Msg}
	case wire.CodeNotInteger:
		return ErrNotInteger
	case wire.CodeOverflow:
		return ErrOverflow
	case wire.CodeUnavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, we.Msg)
	case wire.CodeNotEnoughReplicas:
		return fmt.Errorf("%w: %s", ErrNotEnoughReplicas, we.Msg)
	case wire.CodeAmbiguous:
		return fmt.Errorf("%w: %s", ErrAmbiguous, we.Msg)
	case wire.CodeNoPerm:
		return fmt.Errorf("%w: %s", ErrNoPerm, we.Msg)
	}
	return fmt.Errorf("zeppelin: %w", we)
}

// restated returns the error of a server message that says what sentinel
// says ("table \"users\" already exists"): it reads as the message alone,
// and errors.Is matches sentinel.
func restated(sentinel error, msg string) error {
	if msg == "" {
		return sentinel
	}
	return restatedErr{sentinel, msg}
}

type restatedErr struct {
	sentinel error
	msg      string
}

func (e restatedErr) Error() string { return "zeppelin: " + e.msg }

func (e restatedErr) Unwrap() error { return e.sentinel }

// unknownErr is an admin call's "no such node, member or migration": both
// ErrUnknownName and ErrInvalid.
type unknownErr struct{ msg string }

func (e unknownErr) Error() string { return "zeppelin: " + e.msg }

func (e unknownErr) Is(target error) bool { return target == ErrUnknownName || target == ErrInvalid }
