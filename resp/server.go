package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
)

// Config configures a Server. Only Client is required.
type Config struct {
	// Client runs every command. It is required; the server does not
	// close it.
	Client *client.Client
	// DefaultTable is the table a connection uses before SELECT (default
	// "default").
	DefaultTable string
	// MaxBulk is the largest bulk string accepted (default: the client's
	// MaxValueSize + 1 KiB). A request that declares a longer one is a
	// protocol error: the connection gets an error and is closed before
	// any of the payload is read.
	MaxBulk int
	// MaxArgs is the most arguments one command may have (default:
	// max(2×MaxMultiKeys+1, 1024) from the client's limits). More is a
	// protocol error, like an oversized bulk string.
	MaxArgs int
	// Name is the server name reported by INFO and HELLO (default
	// "zeppelin").
	Name string
	// Logger receives connection errors and recovered panics (discarded
	// when nil).
	Logger *slog.Logger

	// Users, when set, requires every connection to authenticate (AUTH,
	// or HELLO with AUTH) before anything but AUTH, HELLO and QUIT, and
	// bounds what each user may do by its grants. Nil: no
	// authentication, as a Redis server without passwords.
	Users *auth.Users
	// TLS, when set, serves TLS on every listener (Serve wraps them).
	TLS *tls.Config
	// MaxConns and MaxConnsPerIP bound open connections, in total and
	// from one IP address (defaults 10,000 and 1,000, kept below what the
	// file descriptor limit allows; negative: no bound). Connections
	// beyond are answered "-ERR max number of clients reached" and
	// closed.
	MaxConns, MaxConnsPerIP int
	// AuthTimeout closes a connection that has not authenticated this
	// long after it was accepted, when Users is set (default 5s); it also
	// bounds the TLS handshake.
	AuthTimeout time.Duration
	// IdleTimeout closes a connection idle for this long, as Redis's
	// timeout setting (default 0: never).
	IdleTimeout time.Duration
	// MaxRunBytes bounds what one run of pipelined GETs answered together
	// may return: a run holds at most MaxRunBytes / MaxValueSize keys (at
	// least two, or GETs are answered one by one). Default 256 MiB: 16
	// keys with the default 16 MiB value limit.
	MaxRunBytes int
}

// Stats are a Server's counters since New.
type Stats struct {
	// Connections is the number of open connections.
	Connections int64
	// TotalConnections is the number of connections accepted.
	TotalConnections uint64
	// Commands is the number of commands processed (queued commands of a
	// transaction count once when queued; EXEC counts too).
	Commands uint64
	// Errors is the number of error replies sent, protocol errors
	// included.
	Errors uint64
	// ProtocolErrors is the number of connections closed for malformed
	// input or exceeded request limits.
	ProtocolErrors uint64
	// Panics is the number of connections closed because a command
	// panicked (a bug; each one is logged).
	Panics uint64
	// NetInputBytes and NetOutputBytes count the bytes read from and
	// written to clients.
	NetInputBytes, NetOutputBytes uint64
	// Runs counts runs of pipelined commands answered by one multi-key
	// call, and RunCommands the commands they answered.
	Runs, RunCommands uint64
	// AuthFailures counts failed AUTH and HELLO AUTH attempts and
	// connections closed before they authenticated.
	AuthFailures uint64
	// Refused counts connections refused (too many, from one address or
	// in all; out of file descriptors; a failed TLS handshake), by
	// reason.
	Refused map[string]uint64
	// IdleClosed counts connections closed by IdleTimeout.
	IdleClosed uint64
}

// Server serves the Redis protocol on any number of listeners. Create it
// with New, call Serve for each listener, and Close it when done. It is
// safe for concurrent use.
type Server struct {
	cfg      Config
	c        *client.Client
	log      *slog.Logger
	cmds     map[string]*command
	cmdList  []*command // sorted by name
	started  time.Time
	maxQuery int // largest request buffered, all arguments together

	// group runs the accept loops and the connections' goroutines. It is
	// stopped under mu, so a listener or connection registered under mu
	// before Close is closed by it.
	group run.Group

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}

	nextID         atomic.Int64
	connections    atomic.Int64
	totalConns     atomic.Uint64
	commands       atomic.Uint64
	errorReplies   atomic.Uint64
	protocolErrors atomic.Uint64
	panics         atomic.Uint64
	netIn, netOut  atomic.Uint64
	runs, runCmds  atomic.Uint64
	cmdCounts      sync.Map // *command (nil: unknown) → *cmdCount; see metrics.go

	sec security // security.go
}

// queryLimit is the most bytes one request may occupy, all arguments
// together: Redis's client-query-buffer-limit default.
const queryLimit = 1 << 30

// New validates cfg, fills in its defaults and returns a Server. It does
// not contact the cluster.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("resp: Config.Client is required"))
	}
	if cfg.MaxBulk < 0 {
		errs = append(errs, fmt.Errorf("resp: negative MaxBulk %d", cfg.MaxBulk))
	}
	if cfg.MaxArgs < 0 {
		errs = append(errs, fmt.Errorf("resp: negative MaxArgs %d", cfg.MaxArgs))
	}
	if cfg.AuthTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxRunBytes < 0 {
		errs = append(errs, errors.New("resp: negative AuthTimeout, IdleTimeout or MaxRunBytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	lim := cfg.Client.Limits()
	if cfg.DefaultTable == "" {
		cfg.DefaultTable = "default"
	}
	if cfg.MaxBulk == 0 {
		cfg.MaxBulk = lim.MaxValueSize + 1<<10
	}
	if cfg.MaxArgs == 0 {
		cfg.MaxArgs = max(lim.MaxMultiKeys*2+1, 1024)
	}
	if cfg.Name == "" {
		cfg.Name = "zeppelin"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		c:         cfg.Client,
		log:       log,
		started:   time.Now(),
		maxQuery:  max(queryLimit, cfg.MaxBulk+inlineMax),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	s.cmds, s.cmdList = commandTable()
	s.initSecurity()
	return s, nil
}

// Serve accepts connections on ln and serves each one in its own
// goroutine. It blocks until Close, then returns nil; it returns an error
// only when accepting fails for good. Serve may be called for several
// listeners at once; Close closes them all. A Serve called after Close
// closes ln and returns nil. The accept loop runs on a goroutine of the
// server, which Close waits for.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	errc := make(chan error, 1)
	s.mu.Lock()
	started := s.group.Go(func() { errc <- s.accept(ln) })
	if started {
		s.listeners[ln] = struct{}{}
	}
	s.mu.Unlock()
	if !started {
		ln.Close()
		return nil
	}
	return <-errc
}

// accept is Serve's accept loop.
func (s *Server) accept(ln net.Listener) error {
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	spare := transport.NewSpare()
	defer spare.Close()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.group.Stopped() {
				return nil
			}
			if transport.IsFDExhausted(err) && spare.Shed(ln) {
				s.refused(nil, "out of file descriptors")
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait and retry, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("resp: accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.group.Done():
					return nil
				}
				continue
			}
			ln.Close()
			return fmt.Errorf("resp: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		release, reason := s.sec.limiter.Admit(nc.RemoteAddr())
		if release == nil {
			s.refuse(nc, reason)
			continue
		}
		s.startConn(nc, release)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// startConn registers nc and starts its goroutine, unless the server is
// closed.
func (s *Server) startConn(nc net.Conn, release func()) {
	c := newConn(s, nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Registered and counted before it runs.
	s.conns[c] = struct{}{}
	s.connections.Add(1)
	s.totalConns.Add(1)
	if !s.group.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.connections.Add(-1)
			release()
		}()
		// The connection's commands run under a context Close cancels,
		// which records the connection's writes for WAIT.
		ctx, cancel := s.group.Context(context.Background())
		defer cancel()
		c.serve(client.TrackWrites(ctx, c.writes))
	}) {
		delete(s.conns, c)
		s.connections.Add(-1)
		s.totalConns.Add(^uint64(0))
		nc.Close()
		release()
		return
	}
}

// Close stops the server: it closes every listener and connection,
// aborts commands in flight and waits for every goroutine it started (and
// for running Serve calls to return). It is idempotent and always returns
// nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.group.Stop() {
		s.mu.Unlock()
		s.group.Wait()
		return nil
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.group.Wait()
	return nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:      s.connections.Load(),
		TotalConnections: s.totalConns.Load(),
		Commands:         s.commands.Load(),
		Errors:           s.errorReplies.Load(),
		ProtocolErrors:   s.protocolErrors.Load(),
		Panics:           s.panics.Load(),
		NetInputBytes:    s.netIn.Load(),
		NetOutputBytes:   s.netOut.Load(),
		Runs:             s.runs.Load(),
		RunCommands:      s.runCmds.Load(),
		AuthFailures:     s.sec.authFailures.Load(),
		Refused:          s.sec.refusals(),
		IdleClosed:       s.sec.idleClosed.Load(),
	}
}
