package rpc

import (
	"context"
	"crypto/hmac"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// ErrAuth is wrapped by every error of a connection whose authentication
// failed, on either side: a wrong or missing cluster secret, a wrong user
// or password, a server that could not prove it knows the secret.
var ErrAuth = errors.New("zeppelin: authentication failed")

// AuthError is the error Dial returns when authentication fails. It
// matches ErrAuth. It is not a connection error (IsConnError is false):
// trying again will not help.
type AuthError struct {
	// Addr is the address dialed.
	Addr string
	// Reason says what went wrong, naming the server.
	Reason string
}

func (e *AuthError) Error() string { return "zeppelin: authentication failed: " + e.Reason }

// Is makes errors.Is(err, ErrAuth) true.
func (e *AuthError) Is(target error) bool { return target == ErrAuth }

// UserStore verifies users' passwords in the hello's challenge-response
// (*auth.Users implements it).
type UserStore interface {
	// Params returns the salt and iteration count of user's password
	// (made-up ones for an unknown user, the same every time).
	Params(user string) (salt []byte, iterations int)
	// Verify checks a SCRAM client proof over msg; on success it returns
	// the server's signature and the user's access.
	Verify(user string, msg, proof []byte) (serverSig []byte, access *auth.Access, ok bool)
}

// Peer is what a connection proved about its dialer when it opened.
// Handlers find it with PeerFromContext.
type Peer struct {
	// Remote is the dialer's address.
	Remote string
	// From is the name the dialer gave in its Hello.
	From string
	// Node is the node ID the connection speaks for: the Hello's From of
	// a dialer that said it is a node and proved the cluster secret (or,
	// on a server that authenticates nobody, merely said so), or the
	// common name of its client certificate. Empty for clients.
	Node string
	// User is the user the dialer authenticated as, if any; Access holds
	// the user's grants.
	User   string
	Access *auth.Access
	// Authenticated says the server checked the dialer: Node and User
	// are proven, not claimed.
	Authenticated bool

	check checkLevel
}

type peerKey struct{}

// PeerFromContext returns the peer of the connection a request arrived
// on, or nil outside a handler.
func PeerFromContext(ctx context.Context) *Peer {
	p, _ := ctx.Value(peerKey{}).(*Peer)
	return p
}

// authOn reports whether the server authenticates connections.
func (s *Server) authOn() bool {
	return s.cfg.Keyring.Len() > 0 || s.cfg.Users != nil
}

// handshake reads the Hello that opens the connection and, when the
// server authenticates, runs the challenge-response. It returns the
// peer, or nil when the connection failed (it is then being closed, with
// an error frame for the dialer).
func (c *serverConn) handshake(fr *wire.FrameReader) *Peer {
	s := c.s
	f, err := fr.Next()
	if err != nil {
		c.readFailed(err)
		return nil
	}
	if f.Kind != wire.KindHello {
		c.fail(f.ID, wire.Errorf(wire.CodeBadRequest, "expected hello, got %v", f.Kind))
		return nil
	}
	var hello wire.Hello
	if err := wire.Unmarshal(f.Body, &hello); err != nil {
		c.fail(f.ID, wire.Errorf(wire.CodeBadRequest, "bad hello: %v", err))
		return nil
	}
	if hello.Version != wire.ProtocolVersion {
		c.fail(f.ID, wire.Errorf(wire.CodeVersion, "protocol version %d not supported (want %d)", hello.Version, wire.ProtocolVersion))
		return nil
	}
	p := &Peer{Remote: c.remote, From: hello.From}
	cert := c.certName()
	var reply wire.HelloReply
	switch {
	case !s.authOn() && cert == "":
		if hello.Node {
			p.Node = hello.From
		}
		p.check = checkNone
	case !s.authOn():
		// A verified client certificate is the whole proof.
		if !c.bindCert(p, hello, cert) {
			return nil
		}
	default:
		if !c.challenge(fr, f.ID, hello, p, &reply) {
			return nil
		}
		if cert != "" && !c.bindCert(p, hello, cert) {
			return nil
		}
	}
	if s.cfg.Hello != nil {
		r := s.cfg.Hello(hello)
		r.Proof, r.ProofKey = reply.Proof, reply.ProofKey
		reply = r
	}
	reply.Version = wire.ProtocolVersion
	if s.cfg.IdleTimeout > 0 {
		reply.IdleMs = s.cfg.IdleTimeout.Milliseconds()
	}
	buf, err := wire.AppendMessage(nil, wire.KindHello, f.ID, &reply)
	if err != nil {
		c.fail(f.ID, wire.AsError(err))
		return nil
	}
	c.send(buf)
	return p
}

// certName returns the common name of the connection's verified client
// certificate, or "".
func (c *serverConn) certName() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// bindCert makes the connection's identity its client certificate's: a
// node's Hello must name the certificate's common name.
func (c *serverConn) bindCert(p *Peer, hello wire.Hello, cn string) bool {
	if hello.Node && hello.From != cn {
		c.authFailed(0, "node %q presented the certificate of %q", hello.From, cn)
		c.fail(0, wire.Errorf(wire.CodeUnauthenticated, "the hello names node %q but the client certificate is %q's", hello.From, cn))
		return false
	}
	p.Authenticated = true
	if p.check != checkUser {
		if hello.Node {
			p.Node, p.check = cn, checkNode
		} else {
			p.check = checkClient
		}
	}
	return true
}

// challenge runs the challenge-response of an authenticating server.
func (c *serverConn) challenge(fr *wire.FrameReader, id uint64, hello wire.Hello, p *Peer, reply *wire.HelloReply) bool {
	s := c.s
	refuse := func(reason, msg string) bool {
		c.authFailed(id, "%s", reason)
		c.fail(id, wire.Errorf(wire.CodeUnauthenticated, "%s", msg))
		return false
	}
	if len(hello.Nonce) != auth.NonceLen {
		return refuse("no credentials", "this cluster requires a cluster secret (or a user and password) and the dialer presented none")
	}
	if hello.User != "" && s.cfg.Users == nil {
		return refuse("user "+hello.User+" on a server without users", "this server has no users; connect with the cluster secret")
	}
	ch := wire.AuthChallenge{Nonce: auth.Nonce()}
	if hello.User != "" {
		ch.Salt, ch.Iterations = s.cfg.Users.Params(hello.User)
	}
	buf, err := wire.AppendMessage(nil, wire.KindAuth, id, &ch)
	if err != nil {
		c.fail(id, wire.AsError(err))
		return false
	}
	c.send(buf)
	f, err := fr.Next()
	if err != nil {
		c.readFailed(err)
		return false
	}
	if f.Kind != wire.KindAuth || f.ID != id {
		c.authFailed(id, "sent %v instead of its proof", f.Kind)
		c.fail(id, wire.Errorf(wire.CodeBadRequest, "expected auth, got %v", f.Kind))
		return false
	}
	var proof wire.AuthProof
	if err := wire.Unmarshal(f.Body, &proof); err != nil {
		return refuse("undecodable proof", fmt.Sprintf("bad auth: %v", err))
	}
	tr := auth.Transcript{Protocol: "rpc", ServerNonce: ch.Nonce, ClientNonce: hello.Nonce,
		From: hello.From, Node: hello.Node, User: hello.User}
	p.Authenticated = true
	if hello.User != "" {
		if hello.Node {
			return refuse("user "+hello.User+" claimed to be a node", "a user cannot speak for a node")
		}
		sig, access, ok := s.cfg.Users.Verify(hello.User, tr.Message(), proof.User)
		if !ok {
			return refuse("wrong password for user "+hello.User, "invalid username-password pair or user is disabled")
		}
		p.User, p.Access, p.check = hello.User, access, checkUser
		reply.Proof = sig
		return true
	}
	i, k, ok := s.cfg.Keyring.VerifyClient(tr, proof.Proofs)
	if !ok {
		if s.cfg.Keyring.Len() == 0 {
			return refuse("cluster secret on a server without one", "this server accepts users only")
		}
		return refuse("no accepted cluster secret", "no cluster secret of this server matches the dialer's")
	}
	if hello.Node {
		p.Node, p.check = hello.From, checkNode
	} else {
		p.check = checkClient
	}
	reply.Proof, reply.ProofKey = s.cfg.Keyring.ServerProof(tr, k), i
	return true
}

// authFailed counts and logs (rate-limited) a failed authentication.
func (c *serverConn) authFailed(_ uint64, format string, args ...any) {
	c.s.stats.authFailures.Add(1)
	c.s.rlog.log(c.s.log, slog.LevelWarn, "rpc: authentication failed; closing the connection",
		"remote", c.remote, "reason", fmt.Sprintf(format, args...))
}

// dialAuth runs the dialer's side of the handshake: f is the server's
// answer to the Hello.
func (c *Conn) dialAuth(ctx context.Context, cfg DialConfig, hello wire.Hello, f wire.Frame) error {
	authing := len(hello.Nonce) > 0
	fail := func(format string, args ...any) error {
		return &AuthError{Addr: c.addr, Reason: fmt.Sprintf(format, args...)}
	}
	switch f.Kind {
	case wire.KindHello:
		if authing {
			return fail("the server at %s does not authenticate connections (it has no cluster secret or users), so it cannot prove it belongs to this cluster", c.addr)
		}
		return wire.Unmarshal(f.Body, &c.hello)
	case wire.KindAuth:
		if !authing {
			return fail("the server at %s requires a cluster secret (or a user and password), and none is configured here", c.addr)
		}
	default:
		return fmt.Errorf("rpc: %s answered hello with %v", c.addr, f.Kind)
	}
	var ch wire.AuthChallenge
	if err := wire.Unmarshal(f.Body, &ch); err != nil {
		return fmt.Errorf("rpc: %s: bad auth challenge: %w", c.addr, err)
	}
	if len(ch.Nonce) != auth.NonceLen {
		return fail("the server at %s sent a challenge of %d bytes", c.addr, len(ch.Nonce))
	}
	tr := auth.Transcript{Protocol: "rpc", ServerNonce: ch.Nonce, ClientNonce: hello.Nonce,
		From: hello.From, Node: hello.Node, User: hello.User}
	var proof wire.AuthProof
	var wantSig []byte
	if hello.User != "" {
		if ch.Iterations < auth.MinIterations || ch.Iterations > auth.MaxIterations || len(ch.Salt) == 0 {
			return fail("the server at %s asked for %d password iterations", c.addr, ch.Iterations)
		}
		proof.User, wantSig = auth.ClientProof(cfg.Password, ch.Salt, ch.Iterations, tr.Message())
	} else {
		proof.Proofs = cfg.Keyring.ClientProofs(tr)
	}
	rf, err := c.roundTrip(ctx, helloID, wire.KindAuth, &proof)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeUnauthenticated {
			if hello.User != "" {
				return fail("the server at %s refused user %s: %s", c.addr, hello.User, we.Msg)
			}
			if we.Msg == "this server accepts users only" {
				return fail("the server at %s accepts users only, not the cluster secret", c.addr)
			}
			return fail("the server at %s does not accept this cluster secret", c.addr)
		}
		return err
	}
	if rf.Kind != wire.KindHello {
		return fmt.Errorf("rpc: %s answered auth with %v", c.addr, rf.Kind)
	}
	if err := wire.Unmarshal(rf.Body, &c.hello); err != nil {
		return fmt.Errorf("rpc: %s: bad hello reply: %w", c.addr, err)
	}
	ok := false
	if hello.User != "" {
		ok = len(wantSig) > 0 && hmac.Equal(c.hello.Proof, wantSig)
	} else {
		ok = cfg.Keyring.VerifyServer(tr, c.hello.ProofKey, c.hello.Proof)
	}
	if !ok {
		return fail("the server at %s could not prove that it knows the cluster secret (or the user's password)", c.addr)
	}
	return nil
}

// rateLog logs at most one line per interval, counting what it dropped.
type rateLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

const rateLogInterval = time.Second

func (r *rateLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < rateLogInterval {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	l.Log(context.Background(), level, msg, args...)
}

// Handshake defaults.
const (
	// DefaultHelloTimeout is ServerConfig.HelloTimeout's default.
	DefaultHelloTimeout = 5 * time.Second
	// DefaultIdleTimeout is ServerConfig.IdleTimeout's default.
	DefaultIdleTimeout = 5 * time.Minute
)

func isNilUsers(u UserStore) bool {
	p, ok := u.(*auth.Users)
	return ok && p == nil
}
