package resp

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth"
)

const (
	readBufSize = 16 << 10 // initial read buffer
	keepBufSize = 64 << 10 // larger buffers are dropped once empty
	flushSize   = 64 << 10 // replies are written once this many are buffered
)

// conn is one client connection. Its fields are owned by its goroutine,
// except those under mu, which CLIENT LIST on other connections reads.
type conn struct {
	s       *Server
	nc      net.Conn
	id      int64
	addr    string
	laddr   string
	created time.Time

	rbuf []byte
	r, w int // rbuf[r:w] is read but not yet executed
	args [][]byte
	out  writer

	// Scratch space of getRun.
	peek [][]byte
	// Scratch space of the runs (runs.go).
	runKeys  [][]byte
	runVals  [][]byte
	runCmds  []*command
	runKVs   []client.KV
	runDelta []int64
	runEnds  []int

	table  *client.Table
	tx     *txState       // non-nil between MULTI and EXEC/DISCARD
	writes *client.Writes // what WAIT waits for: this connection's writes
	quit   bool           // close once the replies are written

	// Counters not yet added to the server's.
	cmds, errs uint64

	// opened is set once the connection's handshake window is over: it
	// has authenticated (when the server has users) and finished its TLS
	// handshake (on a TLS listener). authed says it may run commands;
	// user and access are what it authenticated as (access nil: every
	// grant).
	opened, authed bool
	deadlineSet    bool // a read deadline is set
	user           string
	access         *auth.Access

	mu        sync.Mutex
	userName  string // user, for CLIENT LIST
	name      string
	libName   string
	libVer    string
	tableName string
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:       s,
		nc:      nc,
		id:      s.nextID.Add(1),
		created: time.Now(),
		rbuf:    make([]byte, readBufSize),
		args:    make([][]byte, 0, 8),
		out:     writer{buf: make([]byte, 0, 4<<10)},
		writes:  client.NewWrites(),
		authed:  s.cfg.Users == nil,
	}
	c.opened = c.authed && s.cfg.TLS == nil
	c.out.sink = c.writeDirect
	if a := nc.RemoteAddr(); a != nil {
		c.addr = a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		c.laddr = a.String()
	}
	c.selectTable(s.cfg.DefaultTable)
	return c
}

func (c *conn) selectTable(name string) {
	c.table = c.s.c.Table(name)
	c.mu.Lock()
	c.tableName = name
	c.mu.Unlock()
}

// serve runs the connection until the peer leaves, a protocol error, QUIT
// or Close, each command under ctx. Commands run in the order they arrive; their replies are
// buffered and written when every complete command read so far has run.
func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	defer c.settle()
	defer func() {
		if r := recover(); r != nil {
			c.s.panics.Add(1)
			c.s.log.Error("resp: panic serving a connection; closing it",
				"remote", c.addr, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	need := 1 // bytes rbuf[r:] must hold before parsing again
	for {
		for c.w-c.r >= need {
			args, n, nd, err := parse(c.rbuf[c.r:c.w], c.args, c.s.cfg.MaxBulk, c.s.cfg.MaxArgs)
			c.args = args
			if err != nil {
				c.protocolError(err)
				return
			}
			if n == 0 {
				need = nd
				break
			}
			c.r += n
			need = 1
			if len(args) > 0 {
				c.exec(ctx, args)
			}
			if c.out.err != nil {
				return // the client is gone
			}
			if c.quit {
				c.flush()
				return
			}
			if len(c.out.buf) >= flushSize {
				if c.flush() != nil {
					return
				}
			}
		}
		if c.flush() != nil {
			return
		}
		if need > c.s.maxQuery {
			c.protocolError(protoErrorf("request larger than %d bytes", c.s.maxQuery))
			return
		}
		if err := c.fill(need); err != nil {
			if !c.readFailed(err) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("resp: read failed", "remote", c.addr, "err", err)
			}
			return
		}
		if !c.opened {
			if c.s.cfg.TLS == nil && looksLikeTLS(c.rbuf[c.r:c.w]) {
				c.s.refused(c.nc.RemoteAddr(), "TLS client on a plain-text port")
				return
			}
			c.opened = c.authed // TLS (if any) is done: something was read
		}
	}
}

// writeDirect writes the buffered replies and then value, in one system
// call, without copying value.
func (c *conn) writeDirect(buf, value []byte) error {
	bufs := net.Buffers{buf, value}
	n, err := bufs.WriteTo(c.nc)
	c.s.netOut.Add(uint64(n))
	return err
}

// fill reads at least once, making room for need bytes after c.r first.
func (c *conn) fill(need int) error {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if len(c.rbuf) > keepBufSize {
			c.rbuf = make([]byte, readBufSize)
		}
	}
	need = max(need, c.w-c.r+1)
	if len(c.rbuf)-c.r < need {
		if need <= len(c.rbuf) {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		} else {
			// Grow geometrically, but to no more than the request needs.
			size := min(max(need, 2*len(c.rbuf)), max(need, c.s.maxQuery))
			nb := make([]byte, size)
			c.w = copy(nb, c.rbuf[c.r:c.w])
			c.r = 0
			c.rbuf = nb
		}
	}
	if d := c.readDeadline(); !d.IsZero() || c.deadlineSet {
		_ = c.nc.SetReadDeadline(d)
		c.deadlineSet = !d.IsZero()
	}
	n, err := c.nc.Read(c.rbuf[c.w:])
	c.w += n
	if n > 0 {
		c.s.netIn.Add(uint64(n))
	}
	if n > 0 && err != nil && c.w-c.r > 0 {
		// Execute what arrived; the error comes back on the next read.
		return nil
	}
	return err
}

// flush writes the buffered replies.
func (c *conn) flush() error {
	c.settle()
	if c.out.err != nil {
		return c.out.err
	}
	if len(c.out.buf) == 0 {
		return nil
	}
	n, err := c.nc.Write(c.out.buf)
	c.s.netOut.Add(uint64(n))
	if cap(c.out.buf) > keepBufSize {
		c.out.buf = make([]byte, 0, 4<<10)
	} else {
		c.out.buf = c.out.buf[:0]
	}
	return err
}

// settle adds the connection's counters to the server's.
func (c *conn) settle() {
	if c.cmds > 0 {
		c.s.commands.Add(c.cmds)
		c.cmds = 0
	}
	if c.errs > 0 {
		c.s.errorReplies.Add(c.errs)
		c.errs = 0
	}
}

func (c *conn) protocolError(err error) {
	c.s.protocolErrors.Add(1)
	c.s.log.Debug("resp: protocol error; closing the connection", "remote", c.addr, "err", err)
	c.error("ERR " + err.Error())
	c.flush()
}

// error appends an error reply and counts it.
func (c *conn) error(msg string) {
	c.errs++
	c.out.error(msg)
}

// clientError appends the reply for an error of the client.
func (c *conn) clientError(err error) {
	c.error(errReply(err, c.table.Name()))
}

// exec runs (or, inside MULTI, queues) one command.
func (c *conn) exec(ctx context.Context, args [][]byte) {
	c.cmds++
	cmd := c.s.lookup(args[0])
	defer c.s.countCommand(cmd, c, c.errs)
	if cmd == nil {
		c.error(unknownCommand(args))
		c.abortTx()
		return
	}
	if !cmd.arityOK(len(args)) {
		c.error("ERR wrong number of arguments for '" + cmd.name + "' command")
		c.abortTx()
		return
	}
	if !c.authed && !preAuth(cmd) {
		c.error("NOAUTH Authentication required.")
		c.abortTx()
		return
	}
	if c.access != nil && !c.permitted(cmd, args) {
		c.abortTx()
		return
	}
	if c.tx != nil && cmd.flags&flagTxControl == 0 {
		c.queue(cmd, args)
		return
	}
	cmd.run(c, ctx, args)
}

// unknownCommand is Redis's reply to an unknown command.
func unknownCommand(args [][]byte) string {
	b := make([]byte, 0, 128)
	b = append(b, "ERR unknown command '"...)
	b = append(b, args[0][:min(len(args[0]), 128)]...)
	b = append(b, "', with args beginning with: "...)
	for _, a := range args[1:] {
		if len(b) >= 256 {
			break
		}
		b = append(b, '\'')
		b = append(b, a[:min(len(a), 128)]...)
		b = append(b, "' "...)
	}
	return string(b)
}

// lookup finds the command named name, case-insensitively, without
// allocating.
func (s *Server) lookup(name []byte) *command {
	var lower [24]byte
	if len(name) > len(lower) {
		return nil
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	return s.cmds[string(lower[:len(name)])]
}
