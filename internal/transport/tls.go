package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// TLS returns a Network over base that serves TLS with server on every
// listener (server may use GetConfigForClient to change certificates
// between handshakes) and dials TLS with the configuration client returns
// for the address dialed. Dial completes the handshake before it returns;
// its failures are *TLSError. Accepted connections handshake on their
// first Read or Write (tls.Server), under whatever deadline their reader
// sets.
func TLS(base Network, server *tls.Config, client func(addr string) *tls.Config) Network {
	return &tlsNetwork{base: OrTCP(base), server: server, client: client}
}

type tlsNetwork struct {
	base   Network
	server *tls.Config
	client func(string) *tls.Config
}

func (n *tlsNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := n.base.Listen(addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, n.server), nil
}

func (n *tlsNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := n.base.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, n.client(addr))
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return nil, &TLSError{Addr: addr, Err: err}
	}
	return tc, nil
}

// TLSError is a TLS dial that failed in its handshake. It says why in
// words an operator can act on.
type TLSError struct {
	// Addr is the address dialed.
	Addr string
	// Err is the handshake's error.
	Err error
}

func (e *TLSError) Error() string { return e.Reason() }

// Unwrap returns the handshake's error.
func (e *TLSError) Unwrap() error { return e.Err }

// Reason explains the failure, naming the server.
func (e *TLSError) Reason() string {
	var (
		rhe  tls.RecordHeaderError
		ve   *tls.CertificateVerificationError
		ie   x509.CertificateInvalidError
		ue   x509.UnknownAuthorityError
		he   x509.HostnameError
		oe   *net.OpError
		what string
	)
	switch {
	case errors.As(e.Err, &rhe):
		what = "does not speak TLS (a plain-text port?)"
	case errors.As(e.Err, &ie) && ie.Reason == x509.Expired:
		what = "presented an expired or not yet valid certificate"
	case errors.As(e.Err, &ue):
		what = "presented a certificate signed by an unknown authority (not the CA configured here)"
	case errors.As(e.Err, &he):
		what = "presented a certificate for another name"
	case errors.As(e.Err, &ve):
		what = "presented a certificate that does not verify"
	case errors.As(e.Err, &oe) && oe.Op == "remote error":
		what = "refused the TLS handshake (it may not accept this process's certificate, or require one)"
	default:
		what = "failed the TLS handshake"
	}
	return fmt.Sprintf("the server at %s %s: %v", e.Addr, what, e.Err)
}

// IsTLSPeerRefusal reports whether err is a TLS alert the peer sent: with
// TLS 1.3 a server that rejects the dialer's certificate says so only
// after the dialer's handshake has completed, at its first read.
func IsTLSPeerRefusal(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}
