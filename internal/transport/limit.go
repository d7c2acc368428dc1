package transport

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// Connection limit defaults.
const (
	// DefaultMaxConns bounds the open connections of one listener's
	// server.
	DefaultMaxConns = 10_000
	// DefaultMaxConnsPerIP bounds the open connections from one IP
	// address.
	DefaultMaxConnsPerIP = 1_000
	// FDReserve is how many file descriptors a server keeps for itself
	// (its store's files, Raft, outgoing connections) below the process's
	// limit: client connections beyond the limit minus the reserve are
	// refused.
	FDReserve = 256
)

// Reasons a connection is refused, as ConnLimiter.Admit reports them.
const (
	RefusedTotal = "too many connections"
	RefusedPerIP = "too many connections from one address"
)

// ConnLimiter bounds open connections, in total and per remote IP
// address. It is safe for concurrent use.
type ConnLimiter struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// NewConnLimiter returns a limiter of total open connections and perIP
// from one address: 0 takes the default (DefaultMaxConns,
// DefaultMaxConnsPerIP), negative means no bound. However large total is,
// it is kept to half of what the process's file descriptor limit leaves
// after FDReserve.
func NewConnLimiter(total, perIP int) *ConnLimiter {
	if total == 0 {
		total = DefaultMaxConns
	}
	if perIP == 0 {
		perIP = DefaultMaxConnsPerIP
	}
	if soft := FDLimit(); soft > 0 {
		// Half of what the reserve leaves: a process has two listeners
		// (RPC and RESP) and its own outgoing connections.
		fdMax := max((soft-FDReserve)/2, 16)
		if total < 0 || total > fdMax {
			total = fdMax
		}
	}
	return &ConnLimiter{max: total, perIP: perIP, byIP: make(map[string]int)}
}

// Max returns the bound on open connections in total (negative: none).
func (l *ConnLimiter) Max() int { return l.max }

// Admit counts a new connection from remote. It returns the function that
// releases it (call it once, when the connection closes), or nil and the
// reason it is refused.
func (l *ConnLimiter) Admit(remote net.Addr) (release func(), refused string) {
	ip := hostOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max >= 0 && l.total >= l.max {
		return nil, RefusedTotal
	}
	if l.perIP >= 0 && ip != "" && l.byIP[ip] >= l.perIP {
		return nil, RefusedPerIP
	}
	l.total++
	if ip != "" {
		l.byIP[ip]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			if ip != "" {
				if l.byIP[ip]--; l.byIP[ip] <= 0 {
					delete(l.byIP, ip)
				}
			}
			l.mu.Unlock()
		})
	}, ""
}

// Open returns the number of connections admitted and not released.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	switch ta := a.(type) {
	case *net.TCPAddr:
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// IsFDExhausted reports whether err says the process (or the system) is
// out of file descriptors.
func IsFDExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// Spare holds one file descriptor in reserve for an accept loop. When
// accepting fails because the process is out of descriptors, the loop
// calls Shed: it gives the spare descriptor back, accepts the waiting
// connection and closes it at once, and takes the spare again, so a
// flood of connections is refused promptly instead of piling up in the
// kernel's backlog while the loop spins. A Spare is used by one
// goroutine.
type Spare struct {
	f *os.File
}

// NewSpare takes the spare descriptor (on /dev/null).
func NewSpare() *Spare {
	f, _ := os.Open(os.DevNull)
	return &Spare{f: f}
}

// Shed refuses one waiting connection of ln as described on Spare. It
// reports whether it refused one.
func (s *Spare) Shed(ln net.Listener) bool {
	if s.f == nil {
		s.f, _ = os.Open(os.DevNull)
		return false
	}
	_ = s.f.Close()
	s.f = nil
	refused := false
	if nc, err := acceptNow(ln); err == nil {
		_ = nc.Close()
		refused = true
	}
	s.f, _ = os.Open(os.DevNull)
	return refused
}

// Close releases the spare descriptor.
func (s *Spare) Close() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// acceptNow accepts from ln. Listeners are blocking: after EMFILE the
// connection that caused it is still waiting, so this returns at once.
func acceptNow(ln net.Listener) (net.Conn, error) {
	return ln.Accept()
}
