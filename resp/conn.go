package resp

import (
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
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
	peek, runKeys [][]byte

	table *client.Table
	tx    *txState // non-nil between MULTI and EXEC/DISCARD
	quit  bool     // close once the replies are written

	// Counters not yet added to the server's.
	cmds, errs uint64

	mu        sync.Mutex
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
	}
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
// or Close. Commands run in the order they arrive; their replies are
// buffered and written when every complete command read so far has run.
func (c *conn) serve() {
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
				c.exec(args)
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
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("resp: read failed", "remote", c.addr, "err", err)
			}
			return
		}
	}
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
func (c *conn) exec(args [][]byte) {
	c.cmds++
	cmd := c.s.lookup(args[0])
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
	if c.tx != nil && cmd.flags&flagTxControl == 0 {
		c.queue(cmd, args)
		return
	}
	cmd.run(c, args)
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
