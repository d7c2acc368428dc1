package transport

import (
	"context"
	"errors"
	"net"
	"time"
)

// Network listens and dials stream connections.
type Network interface {
	// Listen announces on the local address addr ("host:port"; port 0 picks
	// a free port).
	Listen(addr string) (net.Listener, error)
	// Dial connects to addr, honouring ctx's deadline and cancellation.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// ErrPartitioned is returned by a Hub host's Dial when the hub has cut the
// link between the dialing host and the host that listens on the address.
var ErrPartitioned = errors.New("transport: network partitioned")

// TCP is the default Network: plain TCP with keep-alives and TCP_NODELAY.
type TCP struct {
	// DialTimeout bounds a dial when ctx has no earlier deadline. Zero means
	// 5 seconds.
	DialTimeout time.Duration
}

var _ Network = TCP{}

// Listen implements Network.
func (TCP) Listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// Dial implements Network.
func (t TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

// OrTCP returns n, or TCP{} when n is nil.
func OrTCP(n Network) Network {
	if n == nil {
		return TCP{}
	}
	return n
}
