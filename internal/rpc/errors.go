package rpc

import "errors"

// Connection errors returned by Conn.Call and Pool.Call. They wrap the
// underlying network error.
var (
	// ErrNotSent means the request was not written to the peer.
	ErrNotSent = errors.New("rpc: request not sent")
	// ErrConnLost means the connection failed after the request was
	// written; the peer may have executed it.
	ErrConnLost = errors.New("rpc: connection lost")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("rpc: closed")
	// ErrAborted means the caller abandoned the call (CallWithAbort)
	// before its reply came; the peer may have executed it.
	ErrAborted = errors.New("rpc: call abandoned")
)

// IsConnError reports whether err is a connection-level failure (not a reply
// from the peer).
func IsConnError(err error) bool {
	return errors.Is(err, ErrNotSent) || errors.Is(err, ErrConnLost)
}
