// Package wire defines the store's RPC protocol: the frame format, the
// message kinds and the msgpack message bodies every role exchanges.
//
// A frame is
//
//	[u32 length][u8 kind][u64 request id][msgpack body]
//
// where length (big endian) counts the kind, the id and the body. Requests
// and their replies share the request id; a reply carries the request's kind
// on success and KindError with an Error body on failure. Many requests may
// be in flight on one connection and replies may come back in any order.
//
// A connection starts with a Hello request from the dialer, which carries the
// protocol version; a server that does not speak that version answers with an
// Error and closes the connection.
//
// Message bodies are msgpack maps with short field names, so fields can be
// added without breaking older peers: unknown fields are skipped and missing
// ones decode as zero values. Most messages are encoded by msgpack's
// reflection over their struct tags; the data path's (reads, writes and a
// slave's fetches) encode and decode themselves to the same bytes
// (datacodec.go), since reflection was a third of a remote read's CPU.
package wire
