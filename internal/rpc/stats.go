package rpc

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a Server's security and connection counters since
// NewServer.
type Stats struct {
	// Connections is the number of open connections.
	Connections int64
	// AuthFailures counts connections closed because their
	// authentication failed (no, a wrong or an unknown credential).
	AuthFailures uint64
	// Refused counts connections refused or closed before their
	// handshake ended, by reason ("too many connections", "no hello
	// within 5s", "plain-text dialer on a TLS port", ...).
	Refused map[string]uint64
	// IdleClosed counts connections closed for being idle.
	IdleClosed uint64
	// Denied counts requests refused for the connection's identity: a
	// node speaking for another, a client sending node-only requests, a
	// user without the grant.
	Denied uint64
}

type serverStats struct {
	open         atomic.Int64
	authFailures atomic.Uint64
	idleClosed   atomic.Uint64
	denied       atomic.Uint64

	mu      sync.Mutex
	refusal map[string]uint64
}

func (st *serverStats) refused(reason string) {
	st.mu.Lock()
	if st.refusal == nil {
		st.refusal = make(map[string]uint64)
	}
	st.refusal[reason]++
	st.mu.Unlock()
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{
		Connections:  st.open.Load(),
		AuthFailures: st.authFailures.Load(),
		IdleClosed:   st.idleClosed.Load(),
		Denied:       st.denied.Load(),
		Refused:      make(map[string]uint64),
	}
	st.mu.Lock()
	for k, v := range st.refusal {
		out.Refused[k] = v
	}
	st.mu.Unlock()
	return out
}

// idleReader reads a server connection: it captures the first bytes (to
// tell a TLS dialer on a plain port), and once on, closes the connection
// after IdleTimeout without a frame, unless requests are in flight (a
// long-poll, a slow handler): those keep it open however long they take.
type idleReader struct {
	c  *serverConn
	on bool
	// until is the read deadline last set; it is moved on lazily, not at
	// every read.
	until time.Time

	first  [8]byte
	nfirst int
}

func (r *idleReader) Read(p []byte) (int, error) {
	for {
		if r.on {
			idle := r.c.s.cfg.IdleTimeout
			if now := time.Now(); r.until.Sub(now) < idle-idle/8 {
				r.until = now.Add(idle)
				_ = r.c.nc.SetReadDeadline(r.until)
			}
		}
		n, err := r.c.nc.Read(p)
		if r.nfirst < len(r.first) && n > 0 {
			r.nfirst += copy(r.first[r.nfirst:], p[:n])
		}
		if n == 0 && err != nil && r.on && isTimeout(err) {
			if len(r.c.sem) > 0 {
				r.until = time.Time{}
				continue // busy, not idle
			}
			if last := time.Unix(0, r.c.lastDone.Load()); time.Since(last) < r.c.s.cfg.IdleTimeout {
				// A request ended since: idle counts from then.
				r.until = last.Add(r.c.s.cfg.IdleTimeout)
				_ = r.c.nc.SetReadDeadline(r.until)
				continue
			}
		}
		return n, err
	}
}

// tlsHello reports whether the connection began like a TLS ClientHello.
func (r *idleReader) tlsHello() bool {
	return r.nfirst >= 3 && r.first[0] == 0x16 && r.first[1] == 0x03 && r.first[2] <= 0x04
}
