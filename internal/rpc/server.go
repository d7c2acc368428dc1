package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// helloMaxFrame bounds the first frame of a connection.
const helloMaxFrame = 64 << 10

// HandlerFunc serves one request. body is the request's msgpack body, owned
// by the handler. It returns the reply value (encoded with the request's
// kind) or an error (sent as a KindError reply; errors that are not
// *wire.Error become wire.CodeInternal).
type HandlerFunc func(ctx context.Context, body []byte) (any, error)

// HelloFunc answers a connection's Hello.
type HelloFunc func(wire.Hello) wire.HelloReply

// ServerConfig configures a Server.
type ServerConfig struct {
	// MaxFrame bounds incoming frames (wire.DefaultMaxFrame when 0).
	MaxFrame int
	// MaxInFlight bounds concurrently served requests per connection; the
	// reader stops reading while the bound is reached (default 4096).
	MaxInFlight int
	// Hello answers the Hello that opens each connection.
	Hello HelloFunc
	// Logger receives connection errors at debug level (discarded when nil).
	Logger *slog.Logger

	// Keyring, when it holds secrets, makes every connection prove in its
	// Hello that it knows one of them (or, with Users, a user's
	// password), by a challenge-response in both directions, before
	// anything else is read from it. Nil: connections are not
	// authenticated (peers' claims are taken as they come).
	Keyring *auth.Keyring
	// Users, when set, lets dialers authenticate as users, whose grants
	// bound what they may do.
	Users UserStore
	// TableName resolves a table ID to its name, for users' grants (it
	// reads the server's map). Without it, a user's requests on tables
	// it is not granted by name wait.
	TableName func(placement.TableID) (string, bool)

	// HelloTimeout bounds the time from accepting a connection to the end
	// of its handshake (TLS included); slower connections are closed
	// (default 5s).
	HelloTimeout time.Duration
	// IdleTimeout closes a connection that has had no request in flight
	// and sent none for this long (default 5 minutes; negative: never).
	// Dialers learn it from the Hello and close idle connections first.
	IdleTimeout time.Duration
	// MaxConns and MaxConnsPerIP bound open connections, in total and
	// from one IP address (defaults 10,000 and 1,000; negative: no
	// bound). The total is also kept below what the process's file
	// descriptor limit allows, keeping a reserve for its own files.
	MaxConns, MaxConnsPerIP int
}

// Server serves the wire protocol on any number of listeners.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	hmu      sync.RWMutex
	handlers map[wire.Kind]HandlerFunc

	// group runs the accept loops, every connection's reader and writer
	// and every request being served. It is stopped under mu, so a
	// listener or connection registered under mu before Close is closed
	// by it.
	group run.Group

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}

	limiter *transport.ConnLimiter
	stats   serverStats
	rlog    rateLog // refused connections and failed authentications
}

// NewServer returns a server with no handlers.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Users != nil && isNilUsers(cfg.Users) {
		cfg.Users = nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:       cfg,
		log:       log,
		handlers:  make(map[wire.Kind]HandlerFunc),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
		limiter:   transport.NewConnLimiter(cfg.MaxConns, cfg.MaxConnsPerIP),
	}
}

// Handle registers h for requests of kind k, replacing any previous handler.
// It may be called while serving.
func (s *Server) Handle(k wire.Kind, h HandlerFunc) {
	s.hmu.Lock()
	s.handlers[k] = h
	s.hmu.Unlock()
}

func (s *Server) handler(k wire.Kind) HandlerFunc {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.handlers[k]
}

// Serve accepts connections on ln until Close. It returns nil after Close,
// or the accept error that stopped it. The accept loop runs on a goroutine
// of the server, which Close waits for.
func (s *Server) Serve(ln net.Listener) error {
	errc := make(chan error, 1)
	s.mu.Lock()
	started := s.group.Go(func() { errc <- s.accept(ln) })
	if started {
		s.listeners[ln] = struct{}{}
	}
	s.mu.Unlock()
	if !started {
		_ = ln.Close()
		return ErrClosed
	}
	return <-errc
}

// accept is Serve's accept loop.
func (s *Server) accept(ln net.Listener) error {
	spare := transport.NewSpare()
	defer spare.Close()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.group.Stopped() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			if transport.IsFDExhausted(err) && spare.Shed(ln) {
				// Out of descriptors: the waiting connection was
				// refused with the one kept in reserve.
				s.refused(nil, "out of file descriptors")
				continue
			}
			// Anything else (out of file descriptors, a timeout) passes:
			// back off and accept again rather than stop serving while the
			// process goes on heartbeating as if it were reachable.
			s.rlog.log(s.log, slog.LevelWarn, "rpc: accept failed; retrying", "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-s.group.Done():
				return nil
			}
			continue
		}
		backoff = 0
		release, reason := s.limiter.Admit(nc.RemoteAddr())
		if release == nil {
			s.refuse(nc, reason)
			continue
		}
		s.serveConn(nc, release)
	}
}

// refuse closes nc, refused for reason, after telling the dialer why (an
// error frame it reads as the answer to its Hello). The write is bounded
// and never blocks the accept loop for long.
func (s *Server) refuse(nc net.Conn, reason string) {
	s.refused(nc.RemoteAddr(), reason)
	buf, err := wire.AppendMessage(nil, wire.KindError, 0, wire.Errorf(wire.CodeUnavailable, "connection refused: %s (at most %d)", reason, s.limiter.Max()))
	if err == nil {
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = nc.Write(buf)
	}
	_ = nc.Close()
}

// refused counts and logs (rate-limited) a refused connection.
func (s *Server) refused(remote net.Addr, reason string) {
	s.stats.refused(reason)
	var r string
	if remote != nil {
		r = remote.String()
	}
	s.rlog.log(s.log, slog.LevelWarn, "rpc: connection refused", "remote", r, "reason", reason)
}

// Close stops every listener and connection and waits for every goroutine
// the server started, including running handlers (whose contexts are
// cancelled). It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.group.Stop() {
		s.mu.Unlock()
		s.group.Wait()
		return nil
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.group.Wait()
	return nil
}

type serverConn struct {
	s *Server
	// nc is the connection; done is closed, and cancel cancels the
	// context handlers get, when the connection closes.
	nc      net.Conn
	remote  string
	release func() // gives the connection's slot back to the limiter
	cancel  context.CancelFunc
	out     chan []byte // nil entry: close once everything before it is written
	sem     chan struct{}
	// work hands a request to an idle worker, of which there are
	// idleWorkers (see worker).
	work        chan task
	idleWorkers atomic.Int32
	once        sync.Once
	done        chan struct{}

	// peer is set by the reader once the handshake is done, before any
	// request is served.
	peer *Peer
	idle *idleReader // the reader's, for readFailed
	// lastDone is when a request last finished (UnixNano).
	lastDone atomic.Int64
}

// serveConn starts nc's reader and writer, unless the server is closed.
// Handlers of the connection's requests run under a context cancelled when
// the connection closes.
func (s *Server) serveConn(nc net.Conn, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &serverConn{
		s:       s,
		nc:      nc,
		release: release,
		cancel:  cancel,
		out:     make(chan []byte, 1024),
		sem:     make(chan struct{}, s.cfg.MaxInFlight),
		work:    make(chan task),
		done:    make(chan struct{}),
	}
	if a := nc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Both start or neither: the group stops only under s.mu.
	if !s.group.Go(func() { c.readLoop(ctx) }) {
		cancel()
		_ = nc.Close()
		release()
		return
	}
	s.group.Go(c.writeLoop)
	s.conns[c] = struct{}{}
	s.stats.open.Add(1)
}

func (c *serverConn) close() {
	c.once.Do(func() {
		c.cancel()
		close(c.done)
		_ = c.nc.Close()
		c.release()
		c.s.stats.open.Add(-1)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
}

// fail replies with err to request id and closes the connection once the
// reply is written.
func (c *serverConn) fail(id uint64, err *wire.Error) {
	c.s.log.Debug("rpc: closing connection", "remote", c.nc.RemoteAddr(), "err", err)
	buf, encErr := wire.AppendMessage(nil, wire.KindError, id, err)
	if encErr == nil {
		c.send(buf)
	}
	c.send(nil)
}

func (c *serverConn) send(b []byte) {
	select {
	case c.out <- b:
	case <-c.done:
	}
}

// readLoop reads the connection's requests and hands each to a worker
// goroutine (an idle one, or a new one when all are busy); their handlers
// run under ctx.
func (c *serverConn) readLoop(ctx context.Context) {
	// No request follows once the reader stops: idle workers exit.
	defer close(c.work)
	// The first frame must be a Hello of our version; until it has come,
	// only small frames are accepted, and the handshake (TLS, Hello,
	// challenge-response) must end within HelloTimeout.
	idle := &idleReader{c: c}
	c.idle = idle
	fr := wire.NewFrameReader(idle, helloMaxFrame)
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.HelloTimeout))
	c.peer = c.handshake(fr)
	if c.peer == nil {
		return
	}
	ctx = context.WithValue(ctx, peerKey{}, c.peer)
	_ = c.nc.SetReadDeadline(time.Time{})
	idle.on = c.s.cfg.IdleTimeout > 0

	fr.SetMax(c.s.cfg.MaxFrame)
	fr.SetKindMax(c.frameMax)
	for {
		f, err := fr.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		h := c.s.handler(f.Kind)
		if h == nil {
			c.fail(f.ID, wire.Errorf(wire.CodeBadRequest, "unknown message kind %v", f.Kind))
			return
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.done:
			return
		}
		t := task{h: h, f: f}
		select {
		case c.work <- t:
			continue
		default:
		}
		if !c.s.group.Go(func() { c.worker(ctx, t) }) {
			<-c.sem
			return // the server is closing
		}
	}
}

// task is one request for a worker.
type task struct {
	h HandlerFunc
	f wire.Frame
}

// maxIdleWorkers bounds a connection's workers waiting for a request.
const maxIdleWorkers = 256

// worker serves t, then the requests the reader hands it, until the
// reader stops (the connection is closing) or, after a request,
// maxIdleWorkers others are already waiting. A connection thus has its
// workers serving requests (each holding a slot of c.sem) and at most
// maxIdleWorkers more. Workers outlive their requests so that their stacks
// do too: decoding a request grows a goroutine's stack several times, and
// with a new goroutine per request copying stacks took an eighth of a
// loaded server's CPU. (An idle timer per worker cost more than it saved:
// every request reset it, and the timers' locks were contended.)
func (c *serverConn) worker(ctx context.Context, t task) {
	for {
		c.serve(ctx, t.h, t.f)
		if c.idleWorkers.Add(1) > maxIdleWorkers {
			c.idleWorkers.Add(-1)
			return
		}
		var ok bool
		if t, ok = <-c.work; !ok {
			return // the reader has stopped
		}
		c.idleWorkers.Add(-1)
	}
}

func (c *serverConn) readFailed(err error) {
	var rhe tls.RecordHeaderError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.close()
	case c.peer == nil && isTimeout(err):
		c.s.refused(c.nc.RemoteAddr(), "no hello within "+c.s.cfg.HelloTimeout.String())
		c.fail(0, wire.Errorf(wire.CodeBadRequest, "no hello within %v", c.s.cfg.HelloTimeout))
	case isTimeout(err):
		c.s.stats.idleClosed.Add(1)
		c.s.log.Debug("rpc: closing an idle connection", "remote", c.remote, "idle", c.s.cfg.IdleTimeout)
		c.fail(0, wire.Errorf(wire.CodeClosed, "idle for %v", c.s.cfg.IdleTimeout))
	case errors.As(err, &rhe):
		// A dialer without TLS on a TLS port: tell it in its own terms.
		c.s.refused(c.nc.RemoteAddr(), "plain-text dialer on a TLS port")
		c.failPlain(rhe.Conn, wire.Errorf(wire.CodeUnauthenticated, "this port requires TLS"))
	case c.handshakeFailed(err):
		c.s.refused(c.nc.RemoteAddr(), "TLS handshake failed")
		c.s.rlog.log(c.s.log, slog.LevelWarn, "rpc: TLS handshake failed; closing the connection", "remote", c.remote, "err", err)
		c.close()
	case c.peer == nil && errors.Is(err, wire.ErrFrameTooLarge) && c.idle.tlsHello():
		// A TLS dialer on a plain port: bytes that are no TLS record make
		// its handshake fail with "not a TLS handshake".
		c.s.refused(c.nc.RemoteAddr(), "TLS dialer on a plain-text port")
		c.fail(0, wire.Errorf(wire.CodeUnauthenticated, "this port does not use TLS"))
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrFrameTooShort):
		c.fail(0, wire.Errorf(wire.CodeBadRequest, "%v", err))
	case errors.Is(err, wire.ErrFrameKind):
		c.fail(0, wire.Errorf(wire.CodeBadRequest, "unknown message kind: %v", err))
	default:
		c.s.log.Debug("rpc: read failed", "remote", c.remote, "err", err)
		c.close()
	}
}

// handshakeFailed reports whether err ended the TLS handshake of a TLS
// connection.
func (c *serverConn) handshakeFailed(err error) bool {
	tc, ok := c.nc.(*tls.Conn)
	return ok && !tc.ConnectionState().HandshakeComplete &&
		!errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// failPlain answers a plain-text dialer of a TLS port on the raw
// connection underneath, then closes.
func (c *serverConn) failPlain(raw net.Conn, err *wire.Error) {
	if raw != nil {
		if buf, e := wire.AppendMessage(nil, wire.KindError, 0, err); e == nil {
			_ = raw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = raw.Write(buf)
		}
	}
	c.close()
}

func (c *serverConn) serve(ctx context.Context, h HandlerFunc, f wire.Frame) {
	defer func() {
		if c.idle.on {
			c.lastDone.Store(time.Now().UnixNano())
		}
		<-c.sem
	}()
	if werr := c.authorize(ctx, f); werr != nil {
		c.s.stats.denied.Add(1)
		if buf, err := wire.AppendMessage(nil, wire.KindError, f.ID, werr); err == nil {
			c.send(buf)
		}
		return
	}
	reply, err := c.call(ctx, h, f)
	var buf []byte
	if err == nil {
		buf, err = wire.AppendMessage(nil, f.Kind, f.ID, reply)
	}
	if err != nil {
		buf, err = wire.AppendMessage(nil, wire.KindError, f.ID, wire.AsError(err))
		if err != nil {
			c.s.log.Error("rpc: cannot encode error reply", "err", err)
			return
		}
	}
	c.send(buf)
}

// call runs a handler, turning a panic into an internal error so that no
// request can take the process down.
func (c *serverConn) call(ctx context.Context, h HandlerFunc, f wire.Frame) (reply any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("rpc: handler panic", "kind", f.Kind, "panic", r, "stack", string(debug.Stack()))
			err = wire.Errorf(wire.CodeInternal, "handler for %v failed: %v", f.Kind, r)
		}
	}()
	return h(ctx, f.Body)
}

func (c *serverConn) writeLoop() {
	defer c.close()
	_ = pump(c.out, c.done, newCoalescer(c.nc))
}

// pump writes the frames queued on out until done is closed, a write
// fails, or a nil frame asks to stop (after flushing what came before it).
// Every frame already queued is written before one flush, so concurrent
// replies or requests share system calls.
func pump(out <-chan []byte, done <-chan struct{}, w *coalescer) error {
	for {
		var b []byte
		select {
		case b = <-out:
		case <-done:
			return nil
		}
		yielded := false
	drain:
		for {
			if b == nil {
				return w.flush()
			}
			if err := w.write(b); err != nil {
				return err
			}
			select {
			case b = <-out:
			default:
				if yielded {
					break drain
				}
				// Let goroutines that are about to queue a frame do so,
				// so one system call carries them all.
				yielded = true
				runtime.Gosched()
				select {
				case b = <-out:
				default:
					break drain
				}
			}
		}
		if err := w.flush(); err != nil {
			return err
		}
	}
}

// coalescer batches frames into large writes.
type coalescer struct {
	w   io.Writer
	buf []byte
}

func newCoalescer(w io.Writer) *coalescer {
	return &coalescer{w: w, buf: make([]byte, 0, 64<<10)}
}

func (c *coalescer) write(b []byte) error {
	if len(c.buf)+len(b) > cap(c.buf) && len(c.buf) > 0 {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if len(b) >= cap(c.buf) {
		_, err := c.w.Write(b)
		return err
	}
	c.buf = append(c.buf, b...)
	return nil
}

func (c *coalescer) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("rpc: write: %w", err)
	}
	return nil
}
