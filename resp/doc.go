// Package resp is a Redis-protocol front end for a Zeppelin cluster: it lets
// redis-cli, redis-benchmark, go-redis and every other Redis client read
// and write Zeppelin tables. It speaks RESP2, and RESP3 after HELLO 3, and
// runs every command through a *client.Client.
//
//	srv, err := resp.New(resp.Config{Client: server.Client(), DefaultTable: "users"})
//	if err != nil { ... }
//	ln, err := net.Listen("tcp", "127.0.0.1:6379")
//	if err != nil { ... }
//	go srv.Serve(ln) // returns nil after Close
//	...
//	srv.Close() // closes listeners and connections, waits for goroutines
//
// and then, from a shell:
//
//	$ redis-cli -p 6379
//	127.0.0.1:6379> SET greeting hello
//	OK
//	127.0.0.1:6379> SELECT orders
//	OK
//	127.0.0.1:6379[orders]> GET order:17
//
// # Tables
//
// Redis's numbered databases are Zeppelin's tables. A connection starts on
// Config.DefaultTable; SELECT <name> switches to the table called name,
// after checking that it exists in the client's map (refreshed from the
// meta group when the cached map lacks it). Selecting a missing table
// answers "-ERR table '<name>' does not exist" and keeps the current one.
// Clients send numbers (go-redis Options.DB, redis-cli -n), which are simply
// table names: SELECT 3 selects the table called "3". The one exception is
// SELECT 0, which clients send to mean "the default database": it selects
// the table called "0" if there is one, and DefaultTable otherwise.
//
// # Commands
//
// Strings: GET, SET [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL], SETNX, SETEX,
// PSETEX, GETSET, MGET, MSET, INCR, INCRBY, DECR, DECRBY. Keys: DEL, UNLINK,
// EXISTS, TYPE, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, FLUSHDB (empties the
// selected table), DBSIZE (counts its live keys: each partition's master
// walks its keys, so unlike Redis it takes time in proportion to them). Transactions: MULTI, EXEC, DISCARD, UNWATCH (WATCH is
// answered with an error). Connection: PING, ECHO, SELECT, HELLO, AUTH,
// CLIENT SETNAME|GETNAME|SETINFO|ID|INFO|LIST, RESET, QUIT. Server: INFO,
// COMMAND [COUNT|INFO|DOCS|LIST], CONFIG GET, TIME.
//
// Replies follow Redis 7: the same reply types, the same -2/-1 answers of
// TTL and PTTL (TTL rounds to the nearest second, as Redis does), the same
// counts from DEL and EXISTS (a key named twice counts twice in EXISTS),
// and Redis's error strings: "ERR wrong number of arguments for 'get'
// command", "ERR unknown command 'foo', with args beginning with: ...",
// "ERR syntax error", "ERR value is not an integer or out of range", "ERR
// increment or decrement would overflow", "ERR invalid expire time in 'set'
// command". Values are strings, so WRONGTYPE never occurs. Where Zeppelin
// differs from Redis:
//
//   - MSET, MGET, DEL and EXISTS with several keys are atomic per partition,
//     not across partitions, as the client's MSet and MGet are. Keys that
//     share a hashtag ({user17}:name, {user17}:mail) share a partition.
//   - SET with EXAT or PXAT in the past writes the key with a 1 ms TTL
//     (Redis deletes it); EXPIRE's NX, XX, GT and LT options are rejected.
//   - TTLs longer than about 292 years are rejected as invalid expire times.
//
// # Transactions
//
// MULTI ... EXEC runs as one atomic client Batch: all or nothing,
// replicated as one binlog record. Every key of the transaction must route
// like the first one (the same hashtag, or the very same key when there is
// no hashtag); otherwise EXEC answers "-CROSSSLOT Keys in request don't
// hash to the same slot", as Redis Cluster does, and nothing is written.
//
// Only commands a batch can express may be queued: SET (without GET),
// SETNX, SETEX, PSETEX, MSET, DEL, UNLINK, INCR, INCRBY, DECR, DECRBY,
// EXPIRE, PEXPIRE and PERSIST, plus PING and ECHO, which are answered at
// EXEC. Reads (GET, MGET, EXISTS, TTL, ...), SET ... GET, GETSET, SELECT and
// the server commands are rejected when queued, with an error naming the
// command; like an unknown command or a wrong number of arguments, this
// makes EXEC answer EXECABORT. Syntax errors in queued commands (SET k v
// FOO) are reported when queued too, not at EXEC.
//
// A batch is stricter than Redis at run time: if a queued command fails
// (INCR of a value that is not an integer), nothing is written and EXEC
// answers that command's error instead of an array with one error in it.
//
// # Errors of the cluster
//
// Errors of the client become Redis error replies: a missing key is a nil
// reply; ErrInvalid (a key or value over a limit) is "-ERR <message>";
// ErrTableNotFound is "-ERR table '<name>' does not exist"; ErrUnavailable
// and ErrNoMeta (no master reachable before the deadline, nothing applied)
// are "-TRYAGAIN <message>", which Redis clients retry by themselves;
// ErrNotEnoughReplicas (a write to a sync table whose in-sync set is below
// its minimum, nothing written) is "-NOREPLICAS Not enough good replicas
// to write.", as Redis answers when min-replicas-to-write is not met;
// ErrAmbiguous and a bare timeout, after which a write may or may not have
// been applied, are "-ERR <message>" so that clients do not retry them
// blindly.
//
// # Replication
//
// WAIT numreplicas timeout blocks until numreplicas slaves of every
// partition the connection has written to have acknowledged everything it
// wrote there, or timeout milliseconds pass (0: no limit), and replies
// with the smallest number of slaves that had, as Redis does. A connection
// that has written nothing gets 0 at once. On an async table this bounds
// what a failover can lose; a sync table acknowledges a write only once
// its whole in-sync set has it, so WAIT there returns at once with the
// in-sync slaves counted.
//
// # Protocol
//
// Commands on one connection run one after another, in the order they
// arrive, as in Redis; connections run in parallel. Pipelined requests are
// read in large chunks, every complete command in the buffer is executed,
// and the replies are buffered and written together once the buffer holds
// no further complete command (or 64 KiB of replies are waiting).
// Arguments of multibulk requests are not copied.
//
// Runs save round trips (runs.go): a run of consecutive pipelined GETs,
// plain SETs (SET key value, no options) or increments (INCR, DECR, INCRBY,
// DECRBY) whose keys the client's map places on the same master node is
// sent as one multi-key call (MGet, client.Table.SetEach or IncrEach). The
// replies keep the commands' order and the command after a run runs only
// once the run is answered, so a connection always sees its own writes
// and a key's writes keep their order. GETs of a run are read one after
// another in request order, the same as separate GETs. The writes of a run
// are applied in order per partition, and the partitions' groups commit in
// parallel: other connections may see two keys of different partitions
// change in the other order than sent (as with Redis Cluster across
// shards) until the replies are sent. A key on another node ends a run.
// (While a partition changes master, the client retries the keys that
// failed in a later round, so one of them may take effect after the keys
// that follow it.) With redis-benchmark -P 16 against one node, runs
// answer GETs about four times faster and SETs and INCRs about twice as
// fast; zeppelin_resp_pipeline_runs_total counts them.
//
// Inline commands (PING\r\n, as typed in telnet) are accepted, with Redis's
// quoting rules. A request is waited for until it is complete. Malformed
// input is answered with "-ERR Protocol error: ..." and the connection is
// closed, while the server goes on serving the others: this covers a bulk
// string longer than Config.MaxBulk or a request with more than
// Config.MaxArgs arguments (both rejected as soon as the length is read,
// before any payload is buffered), control bytes in an inline request,
// missing CRLFs, and inline requests or length lines over 64 KiB. A panic
// while serving a connection (a bug) is recovered, logged and counted in
// Stats.Panics, and closes only that connection.
//
// INFO reports the front end (server, clients, stats: uptime, connections,
// commands, errors, bytes) and the cluster behind it, from the meta
// leader's status: replication (partitions, slave replicas, their
// replication states and worst lag), cluster (epoch, meta members and
// leader, data nodes up and down, masters and slaves per node) and keyspace
// (one table_<name> line per table with its partitions, replication factor
// and mode). HELLO and INFO give Config.Name as the server name and report
// Redis 7.2 as the protocol version they follow.
package resp
