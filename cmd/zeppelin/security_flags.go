package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/resp"
)

// securityOptions are the security flags of "zeppelin serve". Secrets and
// passwords are read from files, never taken from the command line, where
// other users of the machine could read them.
type securityOptions struct {
	secretFile string
	usersFile  string
	respIdle   time.Duration

	tlsCert, tlsKey, tlsCA string
	tlsClientAuth          bool
	nodeAdmission          string
	httpTokenFile          string
	httpProtectMetrics     bool

	maxConns      int
	maxConnsPerIP int
	helloTimeout  time.Duration
	rpcIdle       time.Duration
}

func (o *securityOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.secretFile, "secret-file", "", "read the cluster secrets from this `file`, one per line, the first in use (rotate with \"new, old\" then \"new\"); every RPC, Raft and gossip connection must prove it knows one (default: no secret, nothing authenticated)")
	fs.StringVar(&o.usersFile, "users-file", "", "read the cluster's users from this JSON `file`: [{\"name\": \"alice\", \"password_hash\": \"(zeppelin user hash)\", \"grants\": [{\"tables\": [\"users\"], \"access\": \"write\"}]}]; clients (--user, RESP AUTH) then need a user's password and may do what its grants allow (needs --secret-file)")
	fs.DurationVar(&o.respIdle, "resp-idle-timeout", 0, "close RESP connections idle for this long, as Redis's timeout (0: never)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve TLS on every listener (RPC, RESP, HTTP) and dial peers with TLS, presenting this PEM certificate `file` (reloaded when it changes or on SIGHUP)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM `file` of the CA certificates peers must chain to (required for a meta member: the Raft transport uses mutual TLS)")
	fs.BoolVar(&o.tlsClientAuth, "tls-client-auth", false, "require every RPC dialer (nodes, clients, the CLI) to present a certificate of --tls-ca; a node's certificate common name must be its node ID")
	fs.StringVar(&o.nodeAdmission, "node-admission", "open", "how the meta group admits a data node ID it does not know: open (place it when it registers) or admin-approved (refuse it until \"zeppelin node approve NODE\"; \"zeppelin node pending\" lists the waiting ones)")
	fs.StringVar(&o.httpTokenFile, "http-token-file", "", "bearer tokens (one per line) that open the HTTP endpoint's dashboard, /status and /debug/pprof when the cluster authenticates (users may log in with their passwords too)")
	fs.BoolVar(&o.httpProtectMetrics, "http-protect-metrics", false, "make /metrics need a token or a user too when the cluster authenticates (default: open)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "most open connections of each listener (RPC and RESP; 0: 10000, kept below what the file descriptor limit allows)")
	fs.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", 0, "most open connections from one IP address to each listener (0: 1000; -1: no bound)")
	fs.DurationVar(&o.helloTimeout, "hello-timeout", 0, "close connections that have not finished their handshake (TLS, RPC hello, RESP AUTH when users are configured) this long after they were accepted (0: 5s)")
	fs.DurationVar(&o.rpcIdle, "rpc-idle-timeout", 0, "close RPC connections with nothing in flight for this long (0: 5m; -1ns: never)")
}

// apply sets cfg's security fields from the flags.
func (o *securityOptions) apply(cfg *zeppelin.Config) []error {
	var errs []error
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--secret-file: %w", err))
		} else if cfg.Secret = auth.ParseSecrets(string(b)); len(cfg.Secret) == 0 {
			errs = append(errs, fmt.Errorf("--secret-file %s holds no secret", o.secretFile))
		}
	}
	if o.usersFile != "" {
		users, err := readUsers(o.usersFile)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.Users = users
	}
	cfg.TLS = zeppelin.TLSConfig{CertFile: o.tlsCert, KeyFile: o.tlsKey, CAFile: o.tlsCA, ClientAuth: o.tlsClientAuth}
	if o.httpTokenFile != "" {
		b, err := os.ReadFile(o.httpTokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--http-token-file: %w", err))
		}
		cfg.HTTPAuth.Tokens = auth.ParseSecrets(string(b))
	}
	cfg.HTTPAuth.ProtectMetrics = o.httpProtectMetrics
	cfg.NodeAdmission = o.nodeAdmission
	cfg.RPCConns = zeppelin.ConnLimits{Max: o.maxConns, PerIP: o.maxConnsPerIP, HelloTimeout: o.helloTimeout, IdleTimeout: o.rpcIdle}
	return errs
}

// settings returns the security settings for --dry-run, under their flag
// names; files are named, their contents never shown.
func (o *securityOptions) settings() map[string]any {
	m := map[string]any{}
	if o.secretFile != "" {
		m["secret-file"] = o.secretFile
	}
	if o.usersFile != "" {
		m["users-file"] = o.usersFile
	}
	for k, v := range map[string]string{"tls-cert": o.tlsCert, "tls-key": o.tlsKey, "tls-ca": o.tlsCA, "http-token-file": o.httpTokenFile} {
		if v != "" {
			m[k] = v
		}
	}
	if o.tlsClientAuth {
		m["tls-client-auth"] = true
	}
	if o.nodeAdmission != "open" {
		m["node-admission"] = o.nodeAdmission
	}
	if o.httpProtectMetrics {
		m["http-protect-metrics"] = true
	}
	if o.respIdle != 0 {
		m["resp-idle-timeout"] = o.respIdle.String()
	}
	if o.maxConns != 0 {
		m["max-conns"] = o.maxConns
	}
	if o.maxConnsPerIP != 0 {
		m["max-conns-per-ip"] = o.maxConnsPerIP
	}
	if o.helloTimeout != 0 {
		m["hello-timeout"] = o.helloTimeout.String()
	}
	if o.rpcIdle != 0 {
		m["rpc-idle-timeout"] = o.rpcIdle.String()
	}
	return m
}

// withSettings merges the security settings into the --dry-run output.
func (o *securityOptions) withSettings(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, s := range o.settings() {
		m[k] = s
	}
	return m, nil
}

// readPassword returns the password of the CLI's --user: the first line of
// --password-file, or else $ZEPPELIN_PASSWORD.
func readPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", fmt.Errorf("--password-file %s is empty", file)
		}
		return line, nil
	}
	if p := os.Getenv("ZEPPELIN_PASSWORD"); p != "" {
		return p, nil
	}
	return "", errors.New("--user needs a password: give --password-file or set ZEPPELIN_PASSWORD")
}

// clientAuth are the credentials flags of the commands that talk to a
// cluster.
type clientAuth struct {
	secretFile             string
	user                   string
	passwordFile           string
	tlsCA, tlsCert, tlsKey string
}

func (o *clientAuth) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.secretFile, "secret-file", "", "authenticate with the cluster secrets in this `file` (one per line, as for serve)")
	fs.StringVar(&o.user, "user", "", "authenticate as this `user`; the password comes from --password-file or $ZEPPELIN_PASSWORD")
	fs.StringVar(&o.passwordFile, "password-file", "", "read --user's password from the first line of this `file`")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "dial the cluster with TLS, verifying its certificates against this PEM CA `file`")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "present this PEM certificate `file` (a cluster with --tls-client-auth requires one)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
}

// apply sets the credentials of cfg.
func (o *clientAuth) apply(cfg *client.Config) error {
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return fmt.Errorf("--secret-file: %w", err)
		}
		if cfg.Secret = auth.ParseSecrets(string(b)); len(cfg.Secret) == 0 {
			return fmt.Errorf("--secret-file %s holds no secret", o.secretFile)
		}
	}
	if o.tlsCA != "" || o.tlsCert != "" {
		tc, err := clientTLS(o.tlsCA, o.tlsCert, o.tlsKey)
		if err != nil {
			return err
		}
		cfg.TLS = tc
	}
	if o.user == "" {
		if o.passwordFile != "" {
			return errors.New("--password-file needs --user")
		}
		return nil
	}
	pw, err := readPassword(o.passwordFile)
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = o.user, pw
	return nil
}

// readUsers reads a --users-file.
func readUsers(path string) ([]zeppelin.User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--users-file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var users []zeppelin.User
	if err := dec.Decode(&users); err != nil {
		return nil, fmt.Errorf("--users-file %s: %w", path, err)
	}
	if err := auth.CheckUsers(users); err != nil {
		return nil, fmt.Errorf("--users-file %s: %w", path, err)
	}
	return users, nil
}

// respConfig adds the security settings to the RESP front end's
// configuration.
func (o *securityOptions) respConfig(cfg resp.Config, users []zeppelin.User) (resp.Config, error) {
	u, err := auth.NewUsers(users)
	if err != nil {
		return cfg, err
	}
	cfg.Users = u
	cfg.MaxConns, cfg.MaxConnsPerIP = o.maxConns, o.maxConnsPerIP
	cfg.AuthTimeout = o.helloTimeout
	cfg.IdleTimeout = o.respIdle
	return cfg, nil
}

// watchSIGHUP reloads srv's TLS certificates on SIGHUP until the returned
// function is called.
func (o *securityOptions) watchSIGHUP(srv *zeppelin.Server, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := srv.ReloadCertificates(); err != nil {
					log.Error("zeppelin: SIGHUP: keeping the previous certificates", "err", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// startRESP starts the RESP front end with the security settings: users,
// limits, timeouts, and the server's TLS.
func (o *securityOptions) startRESP(ln net.Listener, srv *zeppelin.Server, table string, log *slog.Logger, users []zeppelin.User) (*respFront, error) {
	cfg, err := o.respConfig(resp.Config{Client: srv.Client(), DefaultTable: table, Logger: log, TLS: srv.TLSConfig()}, users)
	if err != nil {
		return nil, fmt.Errorf("RESP front end: %w", err)
	}
	return startRESP(ln, srv, cfg)
}

// newUserCmd is "zeppelin user": tools for --users-file.
func newUserCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Make password hashes for --users-file",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{cmd: c.CommandPath(), err: errors.New("missing subcommand: hash")}
		},
	}
	var passwordFile string
	hash := &cobra.Command{
		Use:   "hash",
		Short: "Print the password_hash of a password (read from --password-file, $ZEPPELIN_PASSWORD or standard input)",
		Long: `Print the SCRAM-SHA-256 verifier of a password, for the "password_hash" of a
user in --users-file. The verifier lets the cluster check the password but
not log in with it. The password is read from the first line of
--password-file, from $ZEPPELIN_PASSWORD, or else from the first line of
standard input; never from the command line.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			pw, err := readPassword(passwordFile)
			if err != nil {
				line, rerr := bufio.NewReader(c.InOrStdin()).ReadString('\n')
				if pw = strings.TrimRight(line, "\r\n"); pw == "" {
					return usageError{cmd: c.CommandPath(), err: errors.Join(errors.New("no password: give --password-file, set ZEPPELIN_PASSWORD or write it on standard input"), rerr)}
				}
			}
			h, err := zeppelin.HashPassword(pw)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, h)
			return err
		},
	}
	hash.Flags().StringVar(&passwordFile, "password-file", "", "read the password from the first line of this `file`")
	cmd.AddCommand(hash)
	return cmd
}

// clientTLS builds the CLI's TLS configuration.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}
