package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/transport"
)

// The authenticated stream: before any byte of its own protocol, each
// connection runs a challenge-response in both directions with the keys
// of a Keyring, as the RPC hello does, for protocols that have no hello of
// their own (the meta group's Raft traffic):
//
//	dialer → server  magic "ZPA1", dialer nonce (32)
//	server → dialer  magic "ZPA1", server nonce (32)
//	dialer → server  n (1 byte, ≤ MaxSecrets), n proofs (32 each)
//	server → dialer  status (1 byte: 0 accepted), key index (1), proof (32)
//
// A server that accepts none of the proofs answers status 1 and closes.

var streamMagic = []byte("ZPA1")

// ErrStreamAuth is wrapped by the errors of connections whose stream
// authentication failed.
var ErrStreamAuth = errors.New("auth: stream authentication failed")

// streamTimeout bounds a stream handshake.
const streamTimeout = 5 * time.Second

// Network returns a transport.Network over base whose connections start
// with the stream challenge-response under ring, for a protocol named
// protocol (a proof for one protocol is no proof for another).
// Dial authenticates before it returns; accepted connections authenticate
// on their first Read or Write, within 5 seconds, so one slow dialer never
// holds up an accept loop. OnFailure, when set, is told about every
// accepted connection that failed to authenticate.
func Network(base transport.Network, ring *Keyring, protocol string, onFailure func(remote net.Addr, err error)) transport.Network {
	return &authNetwork{base: transport.OrTCP(base), ring: ring, protocol: protocol, onFailure: onFailure}
}

type authNetwork struct {
	base      transport.Network
	ring      *Keyring
	protocol  string
	onFailure func(net.Addr, error)
}

func (n *authNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := n.base.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &authListener{Listener: ln, n: n}, nil
}

func (n *authNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := n.base.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	if err := n.dialHandshake(nc); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%w with %s: %w", ErrStreamAuth, addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

func (n *authNetwork) transcript(sn, cn []byte) Transcript {
	return Transcript{Protocol: n.protocol, ServerNonce: sn, ClientNonce: cn}
}

func (n *authNetwork) dialHandshake(nc net.Conn) error {
	cn := Nonce()
	if _, err := nc.Write(append(bytes.Clone(streamMagic), cn...)); err != nil {
		return err
	}
	hdr := make([]byte, len(streamMagic)+NonceLen)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		return fmt.Errorf("no challenge: %w", err)
	}
	if !bytes.Equal(hdr[:len(streamMagic)], streamMagic) {
		return errors.New("the peer does not run the authenticated stream protocol (no cluster secret there?)")
	}
	tr := n.transcript(hdr[len(streamMagic):], cn)
	proofs := n.ring.ClientProofs(tr)
	msg := []byte{byte(len(proofs))}
	for _, p := range proofs {
		msg = append(msg, p...)
	}
	if _, err := nc.Write(msg); err != nil {
		return err
	}
	ans := make([]byte, 2+ProofLen)
	if _, err := io.ReadFull(nc, ans[:1]); err != nil {
		return fmt.Errorf("no answer to the proof: %w", err)
	}
	if ans[0] != 0 {
		return errors.New("the peer does not accept this cluster secret")
	}
	if _, err := io.ReadFull(nc, ans[1:]); err != nil {
		return fmt.Errorf("no answer to the proof: %w", err)
	}
	if !n.ring.VerifyServer(tr, int(ans[1]), ans[2:]) {
		return errors.New("the peer could not prove that it knows the cluster secret")
	}
	return nil
}

// serverHandshake runs the server's side on an accepted connection.
func (n *authNetwork) serverHandshake(nc net.Conn) error {
	_ = nc.SetDeadline(time.Now().Add(streamTimeout))
	defer nc.SetDeadline(time.Time{})
	hdr := make([]byte, len(streamMagic)+NonceLen)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	if !bytes.Equal(hdr[:len(streamMagic)], streamMagic) {
		return errors.New("the dialer does not run the authenticated stream protocol (no cluster secret there?)")
	}
	sn := Nonce()
	if _, err := nc.Write(append(bytes.Clone(streamMagic), sn...)); err != nil {
		return err
	}
	var cnt [1]byte
	if _, err := io.ReadFull(nc, cnt[:]); err != nil {
		return err
	}
	if cnt[0] == 0 || int(cnt[0]) > MaxSecrets {
		return fmt.Errorf("%d proofs", cnt[0])
	}
	buf := make([]byte, int(cnt[0])*ProofLen)
	if _, err := io.ReadFull(nc, buf); err != nil {
		return err
	}
	proofs := make([][]byte, cnt[0])
	for i := range proofs {
		proofs[i] = buf[i*ProofLen : (i+1)*ProofLen]
	}
	tr := n.transcript(sn, hdr[len(streamMagic):])
	i, k, ok := n.ring.VerifyClient(tr, proofs)
	if !ok {
		_, _ = nc.Write([]byte{1})
		return errors.New("the dialer's cluster secret is not accepted")
	}
	_, err := nc.Write(append([]byte{0, byte(i)}, n.ring.ServerProof(tr, k)...))
	return err
}

type authListener struct {
	net.Listener
	n *authNetwork
}

func (l *authListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &authConn{Conn: nc, n: l.n}, nil
}

// authConn authenticates on its first Read or Write.
type authConn struct {
	net.Conn
	n    *authNetwork
	once sync.Once
	err  error
}

func (c *authConn) handshake() error {
	c.once.Do(func() {
		if err := c.n.serverHandshake(c.Conn); err != nil {
			c.err = fmt.Errorf("%w from %s: %w", ErrStreamAuth, c.RemoteAddr(), err)
			_ = c.Conn.Close()
			if c.n.onFailure != nil {
				c.n.onFailure(c.RemoteAddr(), err)
			}
		}
	})
	return c.err
}

func (c *authConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *authConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
