package transport

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Hub wraps a base Network and injects faults between named hosts. Each
// host gets its own Network view through Host; the hub remembers which host
// listens on which address, so a dial from host a to an address of host b
// can be refused, and live connections between them severed, while the two
// are partitioned. Traffic itself runs over the base network (real TCP in
// the test harness).
//
// A Hub is safe for concurrent use. It is meant for tests; one hub per test,
// never shared through a global.
type Hub struct {
	base Network

	mu      sync.Mutex
	owner   map[string]string          // listen address → host
	blocked map[[2]string]bool         // ordered pair (from, to)
	conns   map[*hubConn]struct{}      // live dialed connections
	hosts   map[string]*hubHostNetwork // host views, by name
	paused  map[string]chan struct{}   // paused host → closed on Resume
}

// NewHub returns a hub over base (TCP when nil).
func NewHub(base Network) *Hub {
	return &Hub{
		base:    OrTCP(base),
		owner:   make(map[string]string),
		blocked: make(map[[2]string]bool),
		conns:   make(map[*hubConn]struct{}),
		hosts:   make(map[string]*hubHostNetwork),
		paused:  make(map[string]chan struct{}),
	}
}

// Host returns the Network seen by the host called name. Calling it again
// with the same name returns an equivalent view.
func (h *Hub) Host(name string) Network {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n, ok := h.hosts[name]; ok {
		return n
	}
	n := &hubHostNetwork{hub: h, name: name}
	h.hosts[name] = n
	return n
}

// Block cuts traffic from host a to host b and from b to a: new dials in
// either direction fail with ErrPartitioned and existing connections
// between them are closed.
func (h *Hub) Block(a, b string) {
	h.mu.Lock()
	h.blocked[[2]string{a, b}] = true
	h.blocked[[2]string{b, a}] = true
	var doomed []*hubConn
	for c := range h.conns {
		if (c.from == a && c.to == b) || (c.from == b && c.to == a) {
			doomed = append(doomed, c)
		}
	}
	h.mu.Unlock()
	for _, c := range doomed {
		_ = c.Close()
	}
}

// Unblock restores traffic between hosts a and b.
func (h *Hub) Unblock(a, b string) {
	h.mu.Lock()
	delete(h.blocked, [2]string{a, b})
	delete(h.blocked, [2]string{b, a})
	h.mu.Unlock()
}

// Isolate cuts host a off from every host in others.
func (h *Hub) Isolate(a string, others ...string) {
	for _, b := range others {
		if b != a {
			h.Block(a, b)
		}
	}
}

// Partition splits the named hosts into groups: hosts in different groups
// cannot reach each other. Hosts not named in any group are unaffected.
func (h *Hub) Partition(groups ...[]string) {
	for i, g := range groups {
		for _, other := range groups[i+1:] {
			for _, a := range g {
				for _, b := range other {
					h.Block(a, b)
				}
			}
		}
	}
}

// Heal removes every block.
func (h *Hub) Heal() {
	h.mu.Lock()
	clear(h.blocked)
	h.mu.Unlock()
}

// Pause stops every byte to and from host a, as a stopped process (SIGSTOP,
// a VM freeze, a long GC pause) looks to its peers: connections stay open,
// but what either side writes is held, and delivered in order once Resume
// is called; dials from a wait until then. Dials to a succeed (the kernel
// of a stopped process still accepts connections) and stall likewise.
// Writes held past their deadline fail with a timeout, as they would on a
// socket whose peer stopped reading. Pausing a paused host does nothing.
func (h *Hub) Pause(a string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.paused[a]; !ok {
		h.paused[a] = make(chan struct{})
	}
}

// Resume ends a Pause of host a: held bytes flow again.
func (h *Hub) Resume(a string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.paused[a]; ok {
		close(ch)
		delete(h.paused, a)
	}
}

// Paused reports whether host a is paused.
func (h *Hub) Paused(a string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.paused[a]
	return ok
}

// gate returns a channel that is closed when neither host a nor host b is
// paused any more, or nil when neither is paused now.
func (h *Hub) gate(a, b string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.paused[a]; ok {
		return ch
	}
	if ch, ok := h.paused[b]; ok {
		return ch
	}
	return nil
}

// hold waits while host a or host b is paused. It returns early with the
// error of done when done is closed, or with a timeout once deadline (if
// set) has passed.
func (h *Hub) hold(a, b string, done <-chan struct{}, deadline time.Time) error {
	for {
		ch := h.gate(a, b)
		if ch == nil {
			return nil
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		var err error
		select {
		case <-ch:
		case <-done:
			err = net.ErrClosed
		case <-timeout:
			err = os.ErrDeadlineExceeded
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// Blocked reports whether traffic from host a to host b is cut.
func (h *Hub) Blocked(a, b string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blocked[[2]string{a, b}]
}

type hubHostNetwork struct {
	hub  *Hub
	name string
}

func (n *hubHostNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := n.hub.base.Listen(addr)
	if err != nil {
		return nil, err
	}
	n.hub.mu.Lock()
	n.hub.owner[ln.Addr().String()] = n.name
	if addr != ln.Addr().String() {
		n.hub.owner[addr] = n.name
	}
	n.hub.mu.Unlock()
	return ln, nil
}

func (n *hubHostNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	h := n.hub
	h.mu.Lock()
	to, known := h.owner[addr]
	blocked := known && h.blocked[[2]string{n.name, to}]
	h.mu.Unlock()
	if blocked {
		return nil, fmt.Errorf("dial %s (host %s) from host %s: %w", addr, to, n.name, ErrPartitioned)
	}
	if ch := h.gate(n.name, ""); ch != nil {
		// A paused host dials nothing until it resumes.
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := h.base.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	hc := &hubConn{Conn: c, hub: h, from: n.name, to: to, closed: make(chan struct{})}
	h.mu.Lock()
	// The link may have been cut while dialing.
	if known && h.blocked[[2]string{n.name, to}] {
		h.mu.Unlock()
		_ = c.Close()
		return nil, fmt.Errorf("dial %s (host %s) from host %s: %w", addr, to, n.name, ErrPartitioned)
	}
	h.conns[hc] = struct{}{}
	h.mu.Unlock()
	return hc, nil
}

// hubConn is the dialing end of a connection between two hosts. Pauses
// act on both directions here: writes wait before they reach the network,
// and bytes read wait before they reach the reader.
type hubConn struct {
	net.Conn
	hub      *Hub
	from, to string
	once     sync.Once
	closed   chan struct{}
	wdl      atomic.Int64 // write deadline, Unix ns (0: none)
}

func (c *hubConn) Write(b []byte) (int, error) {
	var dl time.Time
	if ns := c.wdl.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	if err := c.hub.hold(c.from, c.to, c.closed, dl); err != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Addr: c.RemoteAddr(), Err: err}
	}
	return c.Conn.Write(b)
}

func (c *hubConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// Bytes that arrived while a side is paused are delivered after it
		// resumes (or dropped with the connection).
		if herr := c.hub.hold(c.from, c.to, c.closed, time.Time{}); herr != nil {
			return 0, &net.OpError{Op: "read", Net: "tcp", Addr: c.RemoteAddr(), Err: herr}
		}
	}
	return n, err
}

func (c *hubConn) SetDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *hubConn) SetWriteDeadline(t time.Time) error {
	c.storeWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *hubConn) storeWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.wdl.Store(0)
	} else {
		c.wdl.Store(t.UnixNano())
	}
}

func (c *hubConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.hub.mu.Lock()
		delete(c.hub.conns, c)
		c.hub.mu.Unlock()
	})
	return c.Conn.Close()
}
