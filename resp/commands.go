package resp

import (
	"context"
	"sort"
	"strings"
)

// cmdFlag are a command's properties, reported by COMMAND under Redis's
// flag names.
type cmdFlag uint32

const (
	flagWrite cmdFlag = 1 << iota
	flagReadonly
	flagDenyOOM
	flagAdmin
	flagFast
	flagNoScript
	flagLoading
	flagStale
	flagNoMulti // rejected between MULTI and EXEC
	// flagTxControl runs at once between MULTI and EXEC instead of being
	// queued (MULTI, EXEC, DISCARD, QUIT, RESET, WATCH, UNWATCH).
	flagTxControl
)

func (f cmdFlag) names() []string {
	// In the order of the flag constants.
	all := [...]string{"write", "readonly", "denyoom", "admin", "fast", "noscript", "loading", "stale", "no_multi"}
	var out []string
	for i, n := range all {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// command describes one command: what COMMAND and COMMAND DOCS report, and
// how to run it.
type command struct {
	name                    string // lower case; "client|setname" for a subcommand
	arity                   int    // Redis convention: n exact, -n at least n
	flags                   cmdFlag
	firstKey, lastKey, step int
	acl                     []string // ACL categories, without '@'
	group                   string
	since                   string
	summary                 string
	complexity              string

	// run executes the command outside MULTI.
	run func(c *conn, ctx context.Context, args [][]byte)
	// tx prepares the command for a transaction; nil when it cannot be
	// part of one (it is then rejected when queued).
	tx func(c *conn, args [][]byte) (txOp, string)
	// subs are the subcommands of a container command, for COMMAND.
	subs []*command
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// commandTable builds the table of every command the server knows.
func commandTable() (map[string]*command, []*command) {
	const (
		str = "string"
		gen = "generic"
		cng = "connection"
		srv = "server"
		txg = "transactions"
	)
	rw := flagWrite | flagDenyOOM
	list := []*command{
		// Strings.
		{name: "get", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"read", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Returns the string value of a key.", run: (*conn).cmdGet},
		{name: "set", arity: -3, flags: rw, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "slow"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
			run:     (*conn).cmdSet, tx: txSet},
		{name: "setnx", arity: 3, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Set the string value of a key only when the key doesn't exist.",
			run:     (*conn).cmdSetNX, tx: txSetNX},
		{name: "setex", arity: 4, flags: rw, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "slow"}, group: str, since: "2.0.0", complexity: "O(1)",
			summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
			run:     (*conn).cmdSetEX, tx: txSetEX},
		{name: "psetex", arity: 4, flags: rw, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "slow"}, group: str, since: "2.6.0", complexity: "O(1)",
			summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
			run:     (*conn).cmdSetEX, tx: txSetEX},
		{name: "getset", arity: 3, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Returns the previous string value of a key after setting it to a new value.",
			run:     (*conn).cmdGetSet},
		{name: "mget", arity: -2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"read", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(N) where N is the number of keys to retrieve.",
			summary: "Atomically returns the string values of one or more keys.", run: (*conn).cmdMGet},
		{name: "mset", arity: -3, flags: rw, firstKey: 1, lastKey: -1, step: 2,
			acl: []string{"write", "string", "slow"}, group: str, since: "1.0.1", complexity: "O(N) where N is the number of keys to set.",
			summary: "Atomically creates or modifies the string values of one or more keys.",
			run:     (*conn).cmdMSet, tx: txMSet},
		{name: "incr", arity: 2, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
			run:     (*conn).cmdIncr, tx: txIncr},
		{name: "decr", arity: 2, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
			run:     (*conn).cmdIncr, tx: txIncr},
		{name: "incrby", arity: 3, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
			run:     (*conn).cmdIncr, tx: txIncr},
		{name: "decrby", arity: 3, flags: rw | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"write", "string", "fast"}, group: str, since: "1.0.0", complexity: "O(1)",
			summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
			run:     (*conn).cmdIncr, tx: txIncr},

		// Keys.
		{name: "del", arity: -2, flags: flagWrite, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"keyspace", "write", "slow"}, group: gen, since: "1.0.0", complexity: "O(N) where N is the number of keys that will be removed.",
			summary: "Deletes one or more keys.", run: (*conn).cmdDel, tx: txDel},
		{name: "unlink", arity: -2, flags: flagWrite | flagFast, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"keyspace", "write", "fast"}, group: gen, since: "4.0.0", complexity: "O(1) for each key removed regardless of its size.",
			summary: "Asynchronously deletes one or more keys.", run: (*conn).cmdDel, tx: txDel},
		{name: "exists", arity: -2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"keyspace", "read", "fast"}, group: gen, since: "1.0.0", complexity: "O(N) where N is the number of keys to check.",
			summary: "Determines whether one or more keys exist.", run: (*conn).cmdExists},
		{name: "type", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "read", "fast"}, group: gen, since: "1.0.0", complexity: "O(1)",
			summary: "Determines the type of value stored at a key.", run: (*conn).cmdType},
		{name: "expire", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "write", "fast"}, group: gen, since: "1.0.0", complexity: "O(1)",
			summary: "Sets the expiration time of a key in seconds.", run: (*conn).cmdExpire, tx: txExpire},
		{name: "pexpire", arity: -3, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "write", "fast"}, group: gen, since: "2.6.0", complexity: "O(1)",
			summary: "Sets the expiration time of a key in milliseconds.", run: (*conn).cmdExpire, tx: txExpire},
		{name: "ttl", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "read", "fast"}, group: gen, since: "1.0.0", complexity: "O(1)",
			summary: "Returns the expiration time in seconds of a key.", run: (*conn).cmdTTL},
		{name: "pttl", arity: 2, flags: flagReadonly | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "read", "fast"}, group: gen, since: "2.6.0", complexity: "O(1)",
			summary: "Returns the expiration time in milliseconds of a key.", run: (*conn).cmdTTL},
		{name: "persist", arity: 2, flags: flagWrite | flagFast, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"keyspace", "write", "fast"}, group: gen, since: "2.2.0", complexity: "O(1)",
			summary: "Removes the expiration time of a key.", run: (*conn).cmdPersist, tx: txPersist},

		// Transactions.
		{name: "multi", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			acl: []string{"fast", "transaction"}, group: txg, since: "1.2.0", complexity: "O(1)",
			summary: "Starts a transaction.", run: (*conn).cmdMulti},
		{name: "exec", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagTxControl,
			acl: []string{"slow", "transaction"}, group: txg, since: "1.2.0", complexity: "Depends on commands in the transaction",
			summary: "Executes all commands in a transaction.", run: (*conn).cmdExec},
		{name: "discard", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			acl: []string{"fast", "transaction"}, group: txg, since: "2.0.0", complexity: "O(N), when N is the number of queued commands",
			summary: "Discards a transaction.", run: (*conn).cmdDiscard},
		{name: "watch", arity: -2, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"fast", "transaction"}, group: txg, since: "2.2.0", complexity: "O(1) for every key.",
			summary: "Monitors changes to keys to determine the execution of a transaction (not supported).", run: (*conn).cmdWatch},
		{name: "unwatch", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			acl: []string{"fast", "transaction"}, group: txg, since: "2.2.0", complexity: "O(1)",
			summary: "Forgets about watched keys of a transaction.", run: (*conn).cmdUnwatch},

		// Connection.
		{name: "ping", arity: -1, flags: flagFast,
			acl: []string{"fast", "connection"}, group: cng, since: "1.0.0", complexity: "O(1)",
			summary: "Returns the server's liveliness response.", run: (*conn).cmdPing, tx: txPing},
		{name: "echo", arity: 2, flags: flagFast,
			acl: []string{"fast", "connection"}, group: cng, since: "1.0.0", complexity: "O(1)",
			summary: "Returns the given string.", run: (*conn).cmdEcho, tx: txEcho},
		{name: "select", arity: 2, flags: flagLoading | flagStale | flagFast | flagNoMulti,
			acl: []string{"fast", "connection"}, group: cng, since: "1.0.0", complexity: "O(1)",
			summary: "Changes the selected table (Redis: database) by name.", run: (*conn).cmdSelect},
		{name: "hello", arity: -1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagNoMulti,
			acl: []string{"fast", "connection"}, group: cng, since: "6.0.0", complexity: "O(1)",
			summary: "Handshakes with the Redis server.", run: (*conn).cmdHello},
		{name: "auth", arity: -2, flags: flagNoScript | flagLoading | flagStale | flagFast | flagNoMulti,
			acl: []string{"fast", "connection"}, group: cng, since: "1.0.0", complexity: "O(N) where N is the number of passwords defined for the user",
			summary: "Authenticates the connection.", run: (*conn).cmdAuth},
		{name: "quit", arity: -1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			acl: []string{"fast", "connection"}, group: cng, since: "1.0.0", complexity: "O(1)",
			summary: "Closes the connection.", run: (*conn).cmdQuit},
		{name: "reset", arity: 1, flags: flagNoScript | flagLoading | flagStale | flagFast | flagTxControl,
			acl: []string{"fast", "connection"}, group: cng, since: "6.2.0", complexity: "O(1)",
			summary: "Resets the connection.", run: (*conn).cmdReset},
		{name: "client", arity: -2, flags: flagNoMulti,
			acl: []string{"slow", "connection"}, group: cng, since: "2.4.0", complexity: "Depends on subcommand.",
			summary: "A container for client connection commands.", run: (*conn).cmdClient, subs: clientSubcommands()},

		// Server.
		{name: "info", arity: -1, flags: flagLoading | flagStale | flagNoMulti,
			acl: []string{"slow", "dangerous"}, group: srv, since: "1.0.0", complexity: "O(1)",
			summary: "Returns information and statistics about the server and the cluster.", run: (*conn).cmdInfo},
		{name: "command", arity: -1, flags: flagLoading | flagStale | flagNoMulti,
			acl: []string{"slow", "connection"}, group: srv, since: "2.8.13", complexity: "O(N) where N is the total number of commands",
			summary: "Returns detailed information about all commands.", run: (*conn).cmdCommand, subs: commandSubcommands()},
		{name: "config", arity: -2, flags: flagNoMulti,
			acl: []string{"slow"}, group: srv, since: "2.0.0", complexity: "Depends on subcommand.",
			summary: "A container for server configuration commands.", run: (*conn).cmdConfig, subs: configSubcommands()},
		{name: "dbsize", arity: 1, flags: flagReadonly,
			acl: []string{"keyspace", "read", "slow"}, group: srv, since: "1.0.0", complexity: "O(N) where N is the number of keys in the selected table (each partition's master counts its keys)",
			summary: "Returns the number of keys in the selected table.", run: (*conn).cmdDBSize},
		{name: "flushdb", arity: -1, flags: flagWrite | flagNoMulti,
			acl: []string{"keyspace", "write", "slow", "dangerous"}, group: srv, since: "1.0.0", complexity: "O(N) where N is the number of keys in the selected database",
			summary: "Removes all keys of the selected table.", run: (*conn).cmdFlushDB},
		{name: "wait", arity: 3, flags: flagNoScript,
			acl: []string{"slow", "connection"}, group: gen, since: "3.0.0", complexity: "O(1)",
			summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", run: (*conn).cmdWait},
		{name: "time", arity: 1, flags: flagLoading | flagStale | flagFast,
			acl: []string{"fast"}, group: srv, since: "2.6.0", complexity: "O(1)",
			summary: "Returns the server time.", run: (*conn).cmdTime},
	}
	m := make(map[string]*command, len(list))
	for _, cmd := range list {
		m[cmd.name] = cmd
		for _, s := range cmd.subs {
			s.group = cmd.group
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return m, list
}

func sub(parent, name string, arity int, flags cmdFlag, since, summary string) *command {
	return &command{name: parent + "|" + name, arity: arity, flags: flags, since: since, summary: summary,
		acl: []string{"slow", "connection"}, complexity: "O(1)"}
}

func clientSubcommands() []*command {
	return []*command{
		sub("client", "getname", 2, flagNoScript|flagLoading|flagStale, "2.6.9", "Returns the name of the connection."),
		sub("client", "id", 2, flagNoScript|flagLoading|flagStale, "5.0.0", "Returns the unique client ID of the connection."),
		sub("client", "info", 2, flagNoScript|flagLoading|flagStale, "6.2.0", "Returns information about the connection."),
		sub("client", "list", -2, flagAdmin|flagNoScript|flagLoading|flagStale, "2.4.0", "Lists open connections."),
		sub("client", "setinfo", 4, flagNoScript|flagLoading|flagStale, "7.2.0", "Sets information specific to the client or connection."),
		sub("client", "setname", 3, flagNoScript|flagLoading|flagStale, "2.6.9", "Sets the connection name."),
		sub("client", "help", 2, flagLoading|flagStale, "5.0.0", "Returns helpful text about the different subcommands."),
	}
}

func commandSubcommands() []*command {
	return []*command{
		sub("command", "count", 2, flagLoading|flagStale, "2.8.13", "Returns a count of commands."),
		sub("command", "docs", -2, flagLoading|flagStale, "7.0.0", "Returns documentary information about one, multiple or all commands."),
		sub("command", "info", -2, flagLoading|flagStale, "2.8.13", "Returns information about one, multiple or all commands."),
		sub("command", "list", -2, flagLoading|flagStale, "7.0.0", "Returns a list of command names."),
		sub("command", "help", 2, flagLoading|flagStale, "5.0.0", "Returns helpful text about the different subcommands."),
	}
}

func configSubcommands() []*command {
	return []*command{
		sub("config", "get", -3, flagAdmin|flagNoScript|flagLoading|flagStale, "2.0.0", "Returns the effective values of configuration parameters."),
		sub("config", "help", 2, flagLoading|flagStale, "5.0.0", "Returns helpful text about the different subcommands."),
	}
}

// findSub returns the subcommand of cmd named name (case-insensitively).
func (cmd *command) findSub(name []byte) *command {
	want := cmd.name + "|" + strings.ToLower(string(name))
	for _, s := range cmd.subs {
		if s.name == want {
			return s
		}
	}
	return nil
}
