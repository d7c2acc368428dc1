package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
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
}

// NewServer returns a server with no handlers.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
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
			// Anything else (out of file descriptors, a timeout) passes:
			// back off and accept again rather than stop serving while the
			// process goes on heartbeating as if it were reachable.
			s.log.Warn("rpc: accept failed; retrying", "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.serveConn(nc)
	}
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
	nc     net.Conn
	cancel context.CancelFunc
	out    chan []byte // nil entry: close once everything before it is written
	sem    chan struct{}
	once   sync.Once
	done   chan struct{}
}

// serveConn starts nc's reader and writer, unless the server is closed.
// Handlers of the connection's requests run under a context cancelled when
// the connection closes.
func (s *Server) serveConn(nc net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &serverConn{
		s:      s,
		nc:     nc,
		cancel: cancel,
		out:    make(chan []byte, 1024),
		sem:    make(chan struct{}, s.cfg.MaxInFlight),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Both start or neither: the group stops only under s.mu.
	if !s.group.Go(func() { c.readLoop(ctx) }) {
		cancel()
		_ = nc.Close()
		return
	}
	s.group.Go(c.writeLoop)
	s.conns[c] = struct{}{}
}

func (c *serverConn) close() {
	c.once.Do(func() {
		c.cancel()
		close(c.done)
		_ = c.nc.Close()
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

// readLoop reads the connection's requests and starts a goroutine for
// each; their handlers run under ctx.
func (c *serverConn) readLoop(ctx context.Context) {
	// The first frame must be a Hello of our version; until it has come,
	// only small frames are accepted.
	fr := wire.NewFrameReader(c.nc, helloMaxFrame)
	f, err := fr.Next()
	if err != nil {
		c.readFailed(err)
		return
	}
	if f.Kind != wire.KindHello {
		c.fail(f.ID, wire.Errorf(wire.CodeBadRequest, "expected hello, got %v", f.Kind))
		return
	}
	var hello wire.Hello
	if err := wire.Unmarshal(f.Body, &hello); err != nil {
		c.fail(f.ID, wire.Errorf(wire.CodeBadRequest, "bad hello: %v", err))
		return
	}
	if hello.Version != wire.ProtocolVersion {
		c.fail(f.ID, wire.Errorf(wire.CodeVersion, "protocol version %d not supported (want %d)", hello.Version, wire.ProtocolVersion))
		return
	}
	reply := wire.HelloReply{Version: wire.ProtocolVersion}
	if c.s.cfg.Hello != nil {
		reply = c.s.cfg.Hello(hello)
		reply.Version = wire.ProtocolVersion
	}
	buf, err := wire.AppendMessage(nil, wire.KindHello, f.ID, &reply)
	if err != nil {
		c.fail(f.ID, wire.AsError(err))
		return
	}
	c.send(buf)

	fr.SetMax(c.s.cfg.MaxFrame)
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
		if !c.s.group.Go(func() { c.serve(ctx, h, f) }) {
			<-c.sem
			return // the server is closing
		}
	}
}

func (c *serverConn) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.close()
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrFrameTooShort):
		c.fail(0, wire.Errorf(wire.CodeBadRequest, "%v", err))
	default:
		c.s.log.Debug("rpc: read failed", "remote", c.nc.RemoteAddr(), "err", err)
		c.close()
	}
}

func (c *serverConn) serve(ctx context.Context, h HandlerFunc, f wire.Frame) {
	defer func() { <-c.sem }()
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
