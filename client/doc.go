// Package client is the smart client of a Zeppelin cluster. It bootstraps
// from the RPC address of any member, pulls and caches the cluster map,
// computes each key's partition itself and talks straight to that
// partition's master over one multiplexed connection per node.
//
//	c, err := client.New(client.DefaultConfig("127.0.0.1:7001"))
//	if err != nil { ... }
//	defer c.Close()
//	users := c.Table("users")
//	if err := users.Set(ctx, []byte("alice"), []byte("42")); err != nil { ... }
//	v, err := users.Get(ctx, []byte("alice")) // []byte("42"), or ErrNotFound
//
//	// Strings for keys and values, here with an expiry.
//	err = users.SetString(ctx, "bob", "7", client.WithTTL(time.Hour))
//	s, err := users.GetString(ctx, "bob") // "7"
//
//	// A conditional write reports whether its condition held.
//	written, err := users.SetIf(ctx, []byte("carol"), []byte("1"), client.IfAbsent())
//
// Keys and values are bytes; SetString and GetString save the conversions
// when they are text. Set writes unconditionally: with IfAbsent or
// IfPresent use SetIf, which says whether it wrote (Set refuses them with
// ErrInvalid rather than hide the answer).
//
// Routing is hidden: when a node answers that a partition moved, the client
// refreshes its map and retries at once; when a node asks it to wait (no map
// yet, a handover in progress, a lapsed master lease) it backs off briefly
// and retries; when a connection dies it refreshes the map and retries. All
// of this happens within the caller's context deadline (Config.Timeout when
// the context has none), except that a client none of whose seeds leads to
// the meta group fails with ErrNoMeta after about a second: waiting would
// not mend a wrong address. Only terminal errors reach the caller, as the
// sentinel and typed errors of this package (ErrNotFound, ErrTableNotFound,
// ErrUnavailable, *MultiError, ...), matched with errors.Is and errors.As.
//
// A Client is safe for concurrent use by many goroutines; create one per
// process and share it. It never imports the storage engine or the Raft
// library, so it is cheap to embed in any program.
package client
