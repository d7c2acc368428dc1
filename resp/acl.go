package resp

import (
	"github.com/zeppelin-kv/zeppelin/internal/auth"
)

// preAuth reports whether cmd may run before the connection has
// authenticated: AUTH, HELLO (with AUTH) and QUIT, as in Redis.
func preAuth(cmd *command) bool {
	switch cmd.name {
	case "auth", "hello", "quit":
		return true
	}
	return false
}

// level returns the access cmd needs on the connection's table.
func level(cmd *command) auth.Level {
	switch {
	case cmd.name == "flushdb":
		return auth.LevelAdmin
	case cmd.flags&flagWrite != 0, cmd.name == "wait":
		return auth.LevelWrite
	case cmd.flags&flagReadonly != 0:
		return auth.LevelRead
	}
	return auth.LevelNone
}

// permitted checks cmd against the grants of the connection's user on its
// table, answering Redis's NOPERM errors itself when it fails: the
// command's, when the user may not run such a command on any table, the
// key's otherwise.
func (c *conn) permitted(cmd *command, _ [][]byte) bool {
	need := level(cmd)
	if need == auth.LevelNone || c.access.Can(c.table.Name(), need) {
		return true
	}
	if c.access.Max() < need {
		c.error("NOPERM User " + c.user + " has no permissions to run the '" + cmd.name + "' command")
	} else {
		c.error("NOPERM No permissions to access a key")
	}
	return false
}

// login makes the connection the user's, with its grants.
func (c *conn) login(user string, access *auth.Access) {
	c.authed, c.opened = true, true
	c.user = user
	c.access = access
	if access.Can("", auth.LevelAdmin) {
		c.access = nil // everything is allowed: no checks per command
	}
	c.mu.Lock()
	c.userName = user
	c.mu.Unlock()
}

// authenticate checks user's password, counting a failure.
func (c *conn) authenticate(user, password string) bool {
	access, ok := c.s.cfg.Users.Check(user, password)
	if !ok {
		c.s.authFailed(c, user, "wrong password or unknown user")
		return false
	}
	c.login(user, access)
	return true
}
