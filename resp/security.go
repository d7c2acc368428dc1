package resp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/internal/transport"
)

// Security defaults.
const (
	// DefaultAuthTimeout is Config.AuthTimeout's default.
	DefaultAuthTimeout = 5 * time.Second
	// DefaultMaxRunBytes is Config.MaxRunBytes' default.
	DefaultMaxRunBytes = 256 << 20
)

// security is a Server's connection limits and counters.
type security struct {
	limiter *transport.ConnLimiter

	authFailures atomic.Uint64
	idleClosed   atomic.Uint64

	mu      sync.Mutex
	refusal map[string]uint64
	// lastLog and dropped rate-limit the warnings about refused
	// connections and failed authentications.
	lastLog time.Time
	dropped int
}

func (s *Server) initSecurity() {
	if s.cfg.AuthTimeout == 0 {
		s.cfg.AuthTimeout = DefaultAuthTimeout
	}
	if s.cfg.MaxRunBytes == 0 {
		s.cfg.MaxRunBytes = DefaultMaxRunBytes
	}
	s.sec.limiter = transport.NewConnLimiter(s.cfg.MaxConns, s.cfg.MaxConnsPerIP)
	s.sec.refusal = make(map[string]uint64)
}

// warn logs a security event, at most once a second.
func (s *Server) warn(msg string, args ...any) {
	s.sec.mu.Lock()
	now := time.Now()
	if now.Sub(s.sec.lastLog) < time.Second {
		s.sec.dropped++
		s.sec.mu.Unlock()
		return
	}
	if s.sec.dropped > 0 {
		args = append(args, "suppressed", s.sec.dropped)
	}
	s.sec.lastLog, s.sec.dropped = now, 0
	s.sec.mu.Unlock()
	s.log.Warn(msg, args...)
}

// refused counts and logs a refused connection.
func (s *Server) refused(remote net.Addr, reason string) {
	s.sec.mu.Lock()
	s.sec.refusal[reason]++
	s.sec.mu.Unlock()
	r := ""
	if remote != nil {
		r = remote.String()
	}
	s.warn("resp: connection refused", "remote", r, "reason", reason)
}

func (s *security) refusals() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.refusal))
	for k, v := range s.refusal {
		out[k] = v
	}
	return out
}

// authFailed counts and logs a failed authentication.
func (s *Server) authFailed(c *conn, user, reason string) {
	s.sec.authFailures.Add(1)
	s.warn("resp: authentication failed", "remote", c.addr, "user", user, "reason", reason)
}

// refuse answers a connection beyond the limits as Redis does, and closes
// it. The write is bounded so a client that does not read cannot hold up
// the accept loop.
func (s *Server) refuse(nc net.Conn, reason string) {
	s.refused(nc.RemoteAddr(), reason)
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		raw = tc.NetConn() // no handshake for a refused connection
	}
	_ = raw.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	if _, ok := nc.(*tls.Conn); !ok {
		_, _ = raw.Write([]byte("-ERR max number of clients reached\r\n"))
	}
	_ = raw.Close()
}

// readDeadline returns the deadline of the connection's next read: the
// end of its handshake window until it has authenticated (with users) or
// finished its TLS handshake, then the idle timeout; zero for none.
func (c *conn) readDeadline() time.Time {
	if !c.opened {
		return c.created.Add(c.s.cfg.AuthTimeout)
	}
	if d := c.s.cfg.IdleTimeout; d > 0 {
		return time.Now().Add(d)
	}
	return time.Time{}
}

// readFailed accounts for the error that ended a connection's reads; it
// reports whether it handled it (and so nothing more is to be logged).
func (c *conn) readFailed(err error) bool {
	var ne net.Error
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &rhe):
		c.s.refused(c.nc.RemoteAddr(), "plain-text client on a TLS port")
		if rhe.Conn != nil {
			_ = rhe.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = rhe.Conn.Write([]byte("-ERR this port requires TLS\r\n"))
		}
		return true
	case errors.As(err, &ne) && ne.Timeout() && !c.opened && c.s.cfg.Users != nil && !c.authed:
		c.s.authFailed(c, "", "no AUTH within "+c.s.cfg.AuthTimeout.String())
		return true
	case errors.As(err, &ne) && ne.Timeout() && !c.opened:
		c.s.refused(c.nc.RemoteAddr(), "no TLS handshake within "+c.s.cfg.AuthTimeout.String())
		return true
	case errors.As(err, &ne) && ne.Timeout():
		c.s.sec.idleClosed.Add(1)
		return true
	}
	if tc, ok := c.nc.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete &&
		!errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.s.refused(c.nc.RemoteAddr(), "TLS handshake failed")
		c.s.warn("resp: TLS handshake failed", "remote", c.addr, "err", err)
		return true
	}
	return false
}

// looksLikeTLS reports whether a connection's first bytes are a TLS
// ClientHello.
func looksLikeTLS(b []byte) bool {
	return len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04
}

var (
	descAuthFailures = prometheus.NewDesc("zeppelin_resp_auth_failures_total",
		"RESP authentications that failed (wrong user or password, or none within the timeout).", nil, nil)
	descRefused = prometheus.NewDesc("zeppelin_resp_connections_refused_total",
		"RESP connections refused, by reason.", []string{"reason"}, nil)
	descIdleClosed = prometheus.NewDesc("zeppelin_resp_idle_closed_total",
		"RESP connections closed for being idle.", nil, nil)
)

// securityCollector reports the server's security counters.
type securityCollector struct{ s *Server }

// SecurityCollector returns a Prometheus collector of the server's
// security counters: failed authentications, refused connections by
// reason, connections closed for idling. Register it with the registry
// of the process, beside Collector.
func (s *Server) SecurityCollector() prometheus.Collector { return securityCollector{s} }

func (c securityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAuthFailures
	ch <- descRefused
	ch <- descIdleClosed
}

func (c securityCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(s.sec.authFailures.Load()))
	for reason, n := range s.sec.refusals() {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descIdleClosed, prometheus.CounterValue, float64(s.sec.idleClosed.Load()))
}
