package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
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
}

// NewHub returns a hub over base (TCP when nil).
func NewHub(base Network) *Hub {
	return &Hub{
		base:    OrTCP(base),
		owner:   make(map[string]string),
		blocked: make(map[[2]string]bool),
		conns:   make(map[*hubConn]struct{}),
		hosts:   make(map[string]*hubHostNetwork),
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
	c, err := h.base.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	hc := &hubConn{Conn: c, hub: h, from: n.name, to: to}
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

type hubConn struct {
	net.Conn
	hub      *Hub
	from, to string
	once     sync.Once
}

func (c *hubConn) Close() error {
	c.once.Do(func() {
		c.hub.mu.Lock()
		delete(c.hub.conns, c)
		c.hub.mu.Unlock()
	})
	return c.Conn.Close()
}
