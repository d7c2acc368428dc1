package zeppelin

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/meta"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The security settings of Config and what Start does with them. See
// docs/security.md for the model.

// ConnLimits bound the connections of a listener; zero fields take the
// defaults.
type ConnLimits struct {
	// Max bounds the open connections (default 10,000; it is also kept
	// to half of what the process's file descriptor limit allows after a
	// reserve of 256). Negative: only the descriptor bound.
	Max int
	// PerIP bounds the open connections from one IP address (default
	// 1,000; negative: none).
	PerIP int
	// HelloTimeout closes a connection that has not finished its
	// handshake (TLS and the RPC hello) this long after it was accepted
	// (default 5 s).
	HelloTimeout time.Duration
	// IdleTimeout closes an RPC connection with nothing in flight for
	// this long (default 5 minutes; negative: never). Dialers learn it
	// and close idle connections first.
	IdleTimeout time.Duration
}

// User is one user of the cluster: a name, a password (or a verifier made
// by HashPassword) and grants of read, write or admin access on tables.
// Users authenticate the smart client (client.Config.User) and RESP
// connections (AUTH).
type User = auth.User

// Grant gives a user access at one level to some tables (or, with no
// tables or "*", to all of them and, for admin, to the cluster).
type Grant = auth.Grant

// Access levels of a Grant; each includes the ones below it.
const (
	AccessRead  = auth.LevelRead
	AccessWrite = auth.LevelWrite
	AccessAdmin = auth.LevelAdmin
)

// HashPassword returns a verifier of password for User.PasswordHash
// (SCRAM-SHA-256: neither the password nor a value that lets one log in).
func HashPassword(password string) (string, error) { return auth.HashPassword(password) }

// TLSConfig configures TLS on every listener of a process (RPC, HTTP, and
// the RESP front end of "zeppelin serve") and on every connection it
// dials. Certificates are read from PEM files and reloaded when the files
// change or on Server.ReloadCertificates (SIGHUP for "zeppelin serve").
type TLSConfig struct {
	// CertFile and KeyFile hold this process's certificate (chain) and
	// key. Setting them turns TLS on.
	CertFile, KeyFile string
	// CAFile holds the CA certificates peers' certificates must chain to
	// (default: the system's roots). The meta group's Raft transport
	// needs it.
	CAFile string
	// ClientAuth requires every RPC dialer (nodes, clients, the CLI) to
	// present a certificate that chains to CAFile: mutual TLS. A node's
	// identity is then its certificate's common name, which must be its
	// node ID. The Raft transport always uses mutual TLS.
	ClientAuth bool
	// ServerName is the name checked in the certificates of the servers
	// this process dials (default: the host of the address dialed, so
	// certificates need that address as a DNS or IP SAN).
	ServerName string
	// ReloadInterval is how often the files are checked for changes
	// (default 10 s; negative: only on ReloadCertificates).
	ReloadInterval time.Duration
}

// validateSecurity reports the problems of c's security settings.
func (c Config) validateSecurity() []error {
	var errs []error
	if err := auth.CheckSecrets(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("zeppelin: Secret: %w", err))
	}
	if err := auth.CheckUsers(c.Users); err != nil {
		errs = append(errs, fmt.Errorf("zeppelin: Users: %w", err))
	}
	if t := c.TLS; t != (TLSConfig{}) {
		if t.CertFile == "" || t.KeyFile == "" {
			errs = append(errs, fmt.Errorf("zeppelin: TLS needs both CertFile and KeyFile"))
		}
		if t.ClientAuth && t.CAFile == "" {
			errs = append(errs, fmt.Errorf("zeppelin: TLS.ClientAuth needs a CAFile to verify client certificates against"))
		}
		if c.Roles&RoleMeta != 0 && t.CAFile == "" {
			errs = append(errs, fmt.Errorf("zeppelin: TLS for a meta member needs a CAFile: the Raft transport uses mutual TLS"))
		}
	}
	for i, tok := range c.HTTPAuth.Tokens {
		if len(tok) < auth.MinSecretLen {
			errs = append(errs, fmt.Errorf("zeppelin: HTTPAuth.Tokens[%d] is shorter than %d bytes", i, auth.MinSecretLen))
		}
	}
	if len(c.Users) > 0 && len(c.Secret) == 0 {
		errs = append(errs, fmt.Errorf("zeppelin: Users need a cluster Secret: the nodes authenticate one another with it"))
	}
	if c.RPCConns.HelloTimeout < 0 {
		errs = append(errs, fmt.Errorf("zeppelin: RPCConns.HelloTimeout must not be negative"))
	}
	return errs
}

// security is what Start builds from the security settings.
type security struct {
	keyring *auth.Keyring
	users   *auth.Users
	certs   *auth.CertSource // nil without TLS
}

func newSecurity(cfg Config) (*security, error) {
	ring, err := auth.NewKeyring(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("zeppelin: Secret: %w", err)
	}
	users, err := auth.NewUsers(cfg.Users)
	if err != nil {
		return nil, fmt.Errorf("zeppelin: Users: %w", err)
	}
	if _, err := transport.RaiseFDLimit(); err != nil {
		cfg.Logger.Warn("zeppelin: cannot raise the file descriptor limit", "err", err)
	}
	sec := &security{keyring: ring, users: users}
	if cfg.TLS.CertFile != "" {
		if sec.certs, err = auth.NewCertSource(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CAFile); err != nil {
			return nil, fmt.Errorf("zeppelin: %w", err)
		}
	}
	return sec, nil
}

// secureNetwork returns the network RPC runs over: base, with TLS when it
// is configured.
func (s *Server) secureNetwork(base transport.Network) transport.Network {
	if s.sec.certs == nil {
		return base
	}
	return transport.TLS(base, s.sec.certs.ServerConfig(s.cfg.TLS.ClientAuth), s.clientTLS)
}

// clientTLS is the TLS configuration of a dial to addr.
func (s *Server) clientTLS(addr string) *tls.Config {
	name := s.cfg.TLS.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(addr)
	}
	return s.sec.certs.ClientConfig(name)
}

// TLSConfig returns the server side TLS configuration of this process's
// certificates (reloaded as they change), without client certificates,
// for front ends in the same process such as a RESP listener; nil without
// TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.sec.certs == nil {
		return nil
	}
	return s.sec.certs.ServerConfig(false)
}

// ReloadCertificates reads the TLS certificate, key and CA files again
// ("zeppelin serve" calls it on SIGHUP). New connections use them; on
// error the previous ones stay in use. Without TLS it does nothing.
func (s *Server) ReloadCertificates() error {
	if s.sec.certs == nil {
		return nil
	}
	if err := s.sec.certs.Reload(); err != nil {
		return fmt.Errorf("zeppelin: %w", err)
	}
	s.log.Info("zeppelin: TLS certificates reloaded", "expires", s.sec.certs.Leaf().NotAfter)
	return nil
}

// watchCertificates reloads the certificates when their files change,
// until the server closes.
func (s *Server) watchCertificates() {
	every := s.cfg.TLS.ReloadInterval
	if every == 0 {
		every = 10 * time.Second
	}
	if every < 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.group.Done():
			return
		case <-t.C:
		}
		switch ok, err := s.sec.certs.Refresh(); {
		case err != nil:
			s.log.Error("zeppelin: TLS files changed but cannot be loaded; keeping the previous certificates", "err", err)
		case ok:
			s.log.Info("zeppelin: TLS certificates reloaded", "expires", s.sec.certs.Leaf().NotAfter)
		}
	}
}

// raftTLS returns the files of dragonboat's mutual TLS, when the Raft
// traffic runs over dragonboat's transport.
func (s *Server) raftTLS() meta.RaftTLS {
	if s.sec.certs == nil || s.cfg.Expert.Network != nil {
		return meta.RaftTLS{}
	}
	t := s.cfg.TLS
	return meta.RaftTLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
}

// dialConfig is how this process dials as a node: data node, meta member
// and the server's own calls (handoff, gossip join).
func (s *Server) dialConfig() rpc.DialConfig {
	return rpc.DialConfig{
		Network:  s.network,
		From:     s.nodeID,
		MaxFrame: frameLimit(s.cfg.Limits),
		Node:     true,
		Keyring:  s.sec.keyring,
	}
}

// rpcServerConfig adds the security settings to the RPC server's.
func (s *Server) rpcServerConfig(rc rpc.ServerConfig) rpc.ServerConfig {
	l := s.cfg.RPCConns
	rc.Keyring = s.sec.keyring
	if s.sec.users != nil {
		rc.Users = s.sec.users
		rc.TableName = s.tableName
	}
	rc.HelloTimeout = l.HelloTimeout
	rc.IdleTimeout = l.IdleTimeout
	rc.MaxConns, rc.MaxConnsPerIP = l.Max, l.PerIP
	return rc
}

// tableName resolves a table ID for users' grants, from the freshest map
// this process has.
func (s *Server) tableName(id placement.TableID) (string, bool) {
	var m *placement.Map
	if s.node != nil {
		m = s.node.Map()
	}
	if s.meta != nil {
		if mm := s.meta.Map(); mm != nil && (m == nil || mm.Epoch > m.Epoch) {
			m = mm
		}
	}
	if m == nil {
		return "", false
	}
	t := m.TableByID(id)
	if t == nil {
		return "", false
	}
	return t.Name, true
}

// raftNetwork returns the network the meta group's Raft traffic runs
// over: the test network, or, with a cluster secret, TCP whose
// connections prove the secret first (nil: dragonboat's own transport).
func (s *Server) raftNetwork() transport.Network {
	n := s.cfg.Expert.Network
	if s.sec.certs != nil {
		if n == nil {
			return nil // dragonboat's transport, with its mutual TLS (raftTLS)
		}
		// Mutual TLS whatever ClientAuth says: certificates authenticate
		// both ends.
		return transport.TLS(n, s.sec.certs.ServerConfig(true), s.clientTLS)
	}
	if s.sec.keyring == nil {
		return n
	}
	return auth.Network(n, s.sec.keyring, "raft", func(remote net.Addr, err error) {
		s.raftAuthFailures.Add(1)
		s.log.Warn("zeppelin: Raft connection failed to authenticate", "remote", remote, "err", err)
	})
}

var (
	descRPCConns = prometheus.NewDesc("zeppelin_rpc_connections",
		"Open RPC connections.", nil, nil)
	descAuthFailures = prometheus.NewDesc("zeppelin_auth_failures_total",
		`Connections (and HTTP requests) refused because their authentication failed, by listener ("rpc", "raft", "http").`, []string{"listener"}, nil)
	descRefused = prometheus.NewDesc("zeppelin_rpc_connections_refused_total",
		"RPC connections refused or closed before their handshake ended, by reason.", []string{"reason"}, nil)
	descIdleClosed = prometheus.NewDesc("zeppelin_rpc_idle_closed_total",
		"RPC connections closed for being idle.", nil, nil)
	descDenied = prometheus.NewDesc("zeppelin_rpc_requests_denied_total",
		"RPC requests refused for the identity of their connection (a node speaking for another, a client sending node-only requests, a user without the grant).", nil, nil)
)

// securityCollector reports the RPC listener's connection and
// authentication counters.
type securityCollector struct{ s *Server }

func (c securityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRPCConns, descAuthFailures, descRefused, descIdleClosed, descDenied} {
		ch <- d
	}
}

func (c securityCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.rpc.Stats()
	ch <- prometheus.MustNewConstMetric(descRPCConns, prometheus.GaugeValue, float64(st.Connections))
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(st.AuthFailures), "rpc")
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(c.s.raftAuthFailures.Load()), "raft")
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(c.s.httpAuthFailures.Load()), "http")
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descIdleClosed, prometheus.CounterValue, float64(st.IdleClosed))
	ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(st.Denied))
}
