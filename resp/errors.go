package resp

import (
	"context"
	"errors"
	"strings"

	"github.com/zeppelin-kv/zeppelin/client"
)

// Redis's error replies, word for word where Redis has one.
const (
	errSyntax        = "ERR syntax error"
	errNotInteger    = "ERR value is not an integer or out of range"
	errOverflow      = "ERR increment or decrement would overflow"
	errCrossSlot     = "CROSSSLOT Keys in request don't hash to the same slot"
	errExecAbort     = "EXECABORT Transaction discarded because of previous errors."
	errNested        = "ERR MULTI calls can not be nested"
	errExecNoMulti   = "ERR EXEC without MULTI"
	errDiscardNoMult = "ERR DISCARD without MULTI"
	errNoReplicas    = "NOREPLICAS Not enough good replicas to write."
)

// errReply maps an error of the client to a Redis error reply (without the
// leading '-'):
//
//   - ErrCrossSlot → CROSSSLOT, as Redis Cluster answers;
//   - ErrNotInteger, ErrOverflow → Redis's INCR errors;
//   - ErrNotEnoughReplicas → NOREPLICAS, as Redis answers when
//     min-replicas-to-write is not met: nothing was written;
//   - ErrUnavailable, ErrNoMeta → TRYAGAIN: nothing
//     was applied and the same command may succeed later (after a
//     failover); go-redis and other clients retry TRYAGAIN by themselves;
//   - ErrTableNotFound → ERR naming the table;
//   - ErrAmbiguous, a deadline without one of the causes above, and
//     everything else → ERR with the client's message. A timed-out write
//     may or may not have been applied, so it is not reported as
//     TRYAGAIN, which clients retry blindly.
func errReply(err error, table string) string {
	switch {
	case errors.Is(err, client.ErrCrossSlot):
		return errCrossSlot
	case errors.Is(err, client.ErrNotInteger):
		return errNotInteger
	case errors.Is(err, client.ErrOverflow):
		return errOverflow
	case errors.Is(err, client.ErrTableNotFound):
		return "ERR table '" + table + "' does not exist"
	case errors.Is(err, client.ErrAmbiguous):
		return "ERR " + cleanMsg(err)
	case errors.Is(err, client.ErrNotEnoughReplicas):
		return errNoReplicas
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrNoMeta):
		return "TRYAGAIN " + cleanMsg(err)
	case errors.Is(err, context.Canceled):
		return "ERR server is shutting down"
	case errors.Is(err, context.DeadlineExceeded):
		return "ERR timeout, the command may or may not have been applied: " + cleanMsg(err)
	}
	return "ERR " + cleanMsg(err)
}

// cleanMsg returns err's message without the package prefixes of the
// client's errors, which say nothing to a Redis user.
func cleanMsg(err error) string {
	return strings.ReplaceAll(err.Error(), "zeppelin: ", "")
}
