package resp

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// redisVersion is the Redis version whose protocol and replies the server
// follows; HELLO and INFO report it as the version, as clients expect.
const redisVersion = "7.2.0"

func (c *conn) cmdPing(ctx context.Context, args [][]byte) {
	switch len(args) {
	case 1:
		c.out.simple("PONG")
	case 2:
		c.out.bulk(args[1])
	default:
		c.error("ERR wrong number of arguments for 'ping' command")
	}
}

func (c *conn) cmdEcho(ctx context.Context, args [][]byte) { c.out.bulk(args[1]) }

func (c *conn) cmdQuit(ctx context.Context, _ [][]byte) {
	c.out.ok()
	c.quit = true
}

// cmdSelect selects a table by name. Redis clients select numbered
// databases and never send SELECT 0 unless they mean the default one, so
// "0" selects DefaultTable unless a table is really called "0"; any other
// name must be an existing table.
func (c *conn) cmdSelect(ctx context.Context, args [][]byte) {
	name := string(args[1])
	ok, err := c.tableExists(ctx, name)
	switch {
	case c.access != nil && ok && !c.access.Can(name, auth.LevelRead):
		c.error("NOPERM this user has no permissions to access table '" + name + "'")
	case err != nil:
		c.clientError(err)
	case ok:
		c.selectTable(name)
		c.out.ok()
	case name == "0":
		c.selectTable(c.s.cfg.DefaultTable)
		c.out.ok()
	default:
		c.error("ERR table '" + name + "' does not exist")
	}
}

// tableExists looks the table up in the client's map, pulling a fresh map
// when the cached one does not have it.
func (c *conn) tableExists(ctx context.Context, name string) (bool, error) {
	m, err := c.s.c.Map(ctx)
	if err != nil {
		return false, err
	}
	if m.Table(name) != nil {
		return true, nil
	}
	if m, err = c.s.c.Refresh(ctx); err != nil {
		return false, err
	}
	return m.Table(name) != nil, nil
}

// validName reports whether s may be a client name or library attribute:
// printable ASCII without spaces, as Redis requires.
func validName(s []byte) bool {
	for _, ch := range s {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

// cmdAuth answers AUTH. With users (Config.Users), AUTH password
// authenticates the user "default" and AUTH user password the user named;
// without, it answers as a Redis server without passwords does: the
// default user has none, every other user is unknown.
func (c *conn) cmdAuth(ctx context.Context, args [][]byte) {
	if c.s.cfg.Users != nil {
		user, pass := "default", args[len(args)-1]
		switch len(args) {
		case 2:
		case 3:
			user = string(args[1])
		default:
			c.error(errSyntax)
			return
		}
		if !c.authenticate(user, string(pass)) {
			c.error("WRONGPASS invalid username-password pair or user is disabled.")
			return
		}
		c.out.ok()
		return
	}
	switch {
	case len(args) == 2:
		c.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case len(args) == 3 && string(args[1]) == "default":
		c.out.ok()
	case len(args) == 3:
		c.error("WRONGPASS invalid username-password pair or user is disabled.")
	default:
		c.error(errSyntax)
	}
}

// cmdHello switches protocols: HELLO [protover [AUTH user pass] [SETNAME
// name]]. After HELLO 3 replies use RESP3 types (maps, sets, nulls,
// doubles, verbatim strings).
func (c *conn) cmdHello(ctx context.Context, args [][]byte) {
	proto := 2
	if c.out.resp3 {
		proto = 3
	}
	if len(args) >= 2 {
		v, ok := wire.ParseInt(args[1])
		if !ok {
			c.error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var setName []byte
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "auth") && i+2 < len(args):
			switch {
			case c.s.cfg.Users != nil:
				if !c.authenticate(string(args[i+1]), string(args[i+2])) {
					c.error("WRONGPASS invalid username-password pair or user is disabled.")
					return
				}
			case string(args[i+1]) != "default":
				c.error("WRONGPASS invalid username-password pair or user is disabled.")
				return
			}
			i += 2
		case equalFold(args[i], "setname") && i+1 < len(args):
			setName = args[i+1]
			if !validName(setName) {
				c.error("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			i++
		default:
			c.error("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if !c.authed {
		c.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	c.out.resp3 = proto == 3
	c.mu.Lock()
	if setName != nil {
		c.name = string(setName)
	}
	c.mu.Unlock()
	c.out.mapHeader(7)
	c.out.kv("server", c.s.cfg.Name)
	c.out.kv("version", redisVersion)
	c.out.kvInt("proto", int64(proto))
	c.out.kvInt("id", c.id)
	c.out.kv("mode", "standalone")
	c.out.kv("role", "master")
	c.out.bulkString("modules")
	c.out.array(0)
}

// cmdReset returns the connection to its initial state: no transaction,
// the default table, RESP2.
func (c *conn) cmdReset(ctx context.Context, _ [][]byte) {
	c.tx = nil
	c.out.resp3 = false
	if c.s.cfg.Users != nil {
		// As in Redis, RESET logs out; there is no password-less default
		// user to fall back on.
		c.authed, c.user, c.access = false, "", nil
		c.mu.Lock()
		c.userName = ""
		c.mu.Unlock()
	}
	c.selectTable(c.s.cfg.DefaultTable)
	c.out.simple("RESET")
}

// subcommand finds the subcommand args[1] of cmd and checks its arity,
// answering the error itself when it fails.
func (c *conn) subcommand(args [][]byte) *command {
	parent := c.s.cmds[string(toLower(args[0]))]
	sub := parent.findSub(args[1])
	if sub == nil {
		c.error("ERR unknown subcommand '" + string(args[1]) + "'. Try " + strings.ToUpper(parent.name) + " HELP.")
		return nil
	}
	if !sub.arityOK(len(args)) {
		c.error("ERR wrong number of arguments for '" + sub.name + "' command")
		return nil
	}
	return sub
}

func (c *conn) help(lines ...string) {
	c.out.array(len(lines))
	for _, l := range lines {
		c.out.simple(l)
	}
}

func (c *conn) cmdClient(ctx context.Context, args [][]byte) {
	sub := c.subcommand(args)
	if sub == nil {
		return
	}
	switch sub.name {
	case "client|setname":
		if !validName(args[2]) {
			c.error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		c.name = string(args[2])
		c.mu.Unlock()
		c.out.ok()
	case "client|getname":
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			c.out.null()
		} else {
			c.out.bulkString(name)
		}
	case "client|id":
		c.out.int(c.id)
	case "client|setinfo":
		if !validName(args[3]) {
			c.error("ERR " + string(args[2]) + " cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case equalFold(args[2], "lib-name"):
			c.libName = string(args[3])
		case equalFold(args[2], "lib-ver"):
			c.libVer = string(args[3])
		default:
			c.error("ERR Unrecognized option '" + string(args[2]) + "'")
			return
		}
		c.out.ok()
	case "client|info":
		c.out.verbatim("txt", c.describe()+"\n")
	case "client|list":
		c.s.mu.Lock()
		conns := make([]*conn, 0, len(c.s.conns))
		for o := range c.s.conns {
			conns = append(conns, o)
		}
		c.s.mu.Unlock()
		var b strings.Builder
		for _, o := range conns {
			b.WriteString(o.describe())
			b.WriteByte('\n')
		}
		c.out.verbatim("txt", b.String())
	case "client|help":
		c.help("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current client connection.",
			"LIST", "    Return information about client connections.",
			"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"HELP", "    Print this help.")
	}
}

// describe returns the connection's line of CLIENT LIST.
func (c *conn) describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s age=%d table=%s user=default lib-name=%s lib-ver=%s",
		c.id, c.addr, c.laddr, c.name, int64(time.Since(c.created).Seconds()), c.tableName, c.libName, c.libVer)
}

// configParams are the parameters CONFIG GET reports. They describe the
// store in Redis's terms: every write is logged to a partition binlog
// before it is acknowledged (appendonly yes); there are no RDB snapshots
// (save "") and no memory limit. min-replicas-to-write is the selected
// table's: the slaves a sync table's writes need beyond the master
// (MinInSync-1), 0 for an async table.
func (c *conn) configParams(ctx context.Context) [][2]string {
	minReplicas := 0
	if m, err := c.s.c.Map(ctx); err == nil {
		if t := m.Table(c.table.Name()); t != nil && t.Mode == placement.ModeSync {
			minReplicas = max(t.MinInSync-1, 0)
		}
	}
	return [][2]string{
		{"appendonly", "yes"},
		{"cluster-enabled", "no"},
		{"databases", "1"},
		{"maxmemory", "0"},
		{"min-replicas-to-write", strconv.Itoa(minReplicas)},
		{"save", ""},
		{"timeout", "0"},
	}
}

func (c *conn) cmdConfig(ctx context.Context, args [][]byte) {
	sub := c.subcommand(args)
	if sub == nil {
		return
	}
	switch sub.name {
	case "config|get":
		var found [][2]string
		for _, p := range c.configParams(ctx) {
			for _, pat := range args[2:] {
				if ok, _ := path.Match(string(toLower(pat)), p[0]); ok {
					found = append(found, p)
					break
				}
			}
		}
		c.out.mapHeader(len(found))
		for _, p := range found {
			c.out.kv(p[0], p[1])
		}
	case "config|help":
		c.help("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"HELP", "    Print this help.")
	}
}

func (c *conn) cmdCommand(ctx context.Context, args [][]byte) {
	if len(args) == 1 {
		c.out.array(len(c.s.cmdList))
		for _, cmd := range c.s.cmdList {
			c.commandInfo(cmd)
		}
		return
	}
	sub := c.subcommand(args)
	if sub == nil {
		return
	}
	switch sub.name {
	case "command|count":
		c.out.int(int64(len(c.s.cmdList)))
	case "command|list":
		if len(args) > 2 {
			c.error("ERR COMMAND LIST FILTERBY is not supported")
			return
		}
		c.out.array(len(c.s.cmdList))
		for _, cmd := range c.s.cmdList {
			c.out.bulkString(cmd.name)
		}
	case "command|info":
		if len(args) == 2 {
			c.out.array(len(c.s.cmdList))
			for _, cmd := range c.s.cmdList {
				c.commandInfo(cmd)
			}
			return
		}
		c.out.array(len(args) - 2)
		for _, a := range args[2:] {
			if cmd := c.s.lookup(a); cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.out.nullArray()
			}
		}
	case "command|docs":
		var cmds []*command
		if len(args) == 2 {
			cmds = c.s.cmdList
		} else {
			for _, a := range args[2:] {
				if cmd := c.s.lookup(a); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		c.out.mapHeader(len(cmds))
		for _, cmd := range cmds {
			c.out.bulkString(cmd.name)
			c.commandDocs(cmd)
		}
	case "command|help":
		c.help("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all commands.",
			"COUNT", "    Return the total number of commands in this server.",
			"LIST", "    Return a list of all commands in this server.",
			"INFO [<command-name> ...]", "    Return details about multiple commands.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
			"HELP", "    Print this help.")
	}
}

// commandInfo appends a command's entry of COMMAND, in Redis 7's ten-field
// shape.
func (c *conn) commandInfo(cmd *command) {
	w := &c.out
	w.array(10)
	w.bulkString(cmd.name)
	w.int(int64(cmd.arity))
	flags := cmd.flags.names()
	w.set(len(flags))
	for _, f := range flags {
		w.simple(f)
	}
	w.int(int64(cmd.firstKey))
	w.int(int64(cmd.lastKey))
	w.int(int64(cmd.step))
	w.set(len(cmd.acl))
	for _, a := range cmd.acl {
		w.simple("@" + a)
	}
	w.array(0) // tips
	w.array(0) // key specifications
	w.array(len(cmd.subs))
	for _, s := range cmd.subs {
		c.commandInfo(s)
	}
}

// commandDocs appends a command's map of COMMAND DOCS.
func (c *conn) commandDocs(cmd *command) {
	w := &c.out
	n := 4
	if len(cmd.subs) > 0 {
		n++
	}
	w.mapHeader(n)
	w.kv("summary", cmd.summary)
	w.kv("since", cmd.since)
	w.kv("group", cmd.group)
	w.kv("complexity", cmd.complexity)
	if len(cmd.subs) > 0 {
		w.bulkString("subcommands")
		w.mapHeader(len(cmd.subs))
		for _, s := range cmd.subs {
			w.bulkString(s.name)
			c.commandDocs(s)
		}
	}
}

// clusterContext bounds the cluster calls of INFO.
func (c *conn) clusterContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Second)
}
