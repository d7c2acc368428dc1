// Package rpc runs the wire protocol over stream connections: a Server that
// accepts connections and dispatches each request to the handler registered
// for its kind, a Conn that multiplexes many concurrent calls over one
// connection, and a Pool that keeps one Conn per peer address.
//
// Both sides pipeline: a connection carries many requests in flight, each
// request is served on its own goroutine, and replies are written back in
// completion order. Writes are coalesced: a writer goroutine drains every
// queued frame into one buffered write before flushing.
//
// Errors a peer returns arrive as *wire.Error. Failures of the connection
// itself are ErrNotSent (the request never left this process, so it is safe
// to retry anywhere) or ErrConnLost (the connection failed after the request
// was written: it may or may not have been applied).
package rpc
