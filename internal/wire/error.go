package wire

import (
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Code classifies an Error.
type Code uint16

// Error codes. A reply with KindError carries one of these.
const (
	CodeInternal          Code = iota + 1 // unexpected server-side failure
	CodeBadRequest                        // undecodable body, unknown kind, protocol violation
	CodeVersion                           // protocol version not supported
	CodeClosed                            // the server is shutting down
	CodeMoved                             // not the master: Addr names the master
	CodeWait                              // retry shortly (no map yet, stuck, lease lapsed)
	CodeTableNotFound                     // no such table
	CodeTableExists                       // create of an existing table
	CodeNotLeader                         // meta: Addr names the leader when known
	CodeUnavailable                       // partition has no master / no quorum
	CodeInvalid                           // invalid argument or limit exceeded
	CodeNotInteger                        // incr on a value that is not an integer
	CodeOverflow                          // incr would overflow int64
	CodeNotEnoughReplicas                 // sync mode: in-sync set below minimum
	CodeRefused                           // replication handshake refused
	CodeNotFound                          // admin: named node/partition not found
	CodeTimeout                           // server-side deadline expired
	CodeStaleEpoch                        // request's epoch is ahead of the server's map
	CodeAmbiguous                         // the write may or may not have been applied
	CodeUnauthenticated                   // the connection did not prove a cluster secret or a user's password
	CodeNoPerm                            // the connection's user may not run this request on this table
)

var codeNames = map[Code]string{
	CodeInternal:          "internal",
	CodeBadRequest:        "bad request",
	CodeVersion:           "version",
	CodeClosed:            "closed",
	CodeMoved:             "moved",
	CodeWait:              "wait",
	CodeTableNotFound:     "table not found",
	CodeTableExists:       "table exists",
	CodeNotLeader:         "not leader",
	CodeUnavailable:       "unavailable",
	CodeInvalid:           "invalid",
	CodeNotInteger:        "not an integer",
	CodeOverflow:          "overflow",
	CodeNotEnoughReplicas: "not enough replicas",
	CodeRefused:           "refused",
	CodeNotFound:          "not found",
	CodeTimeout:           "timeout",
	CodeStaleEpoch:        "stale epoch",
	CodeAmbiguous:         "outcome unknown",
	CodeUnauthenticated:   "authentication failed",
	CodeNoPerm:            "permission denied",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Error is the body of a KindError reply and the error type RPC calls
// return for them.
type Error struct {
	Code Code   `msgpack:"c"`
	Msg  string `msgpack:"m,omitempty"`
	// Addr is the master's (CodeMoved) or the meta leader's (CodeNotLeader)
	// RPC address when known.
	Addr string `msgpack:"a,omitempty"`
	// Epoch is the replier's map epoch.
	Epoch placement.Epoch `msgpack:"e,omitempty"`
}

func (e *Error) Error() string {
	s := e.Code.String()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Addr != "" {
		s += " (at " + e.Addr + ")"
	}
	return s
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err when it is or wraps an *Error, else 0.
func CodeOf(err error) Code {
	var we *Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

// AsError converts err into an *Error for the wire: an *Error in its chain is
// returned as is; anything else becomes CodeInternal with err's text.
func AsError(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	return &Error{Code: CodeInternal, Msg: err.Error()}
}
