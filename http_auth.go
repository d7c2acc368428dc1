package zeppelin

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
)

// HTTPAuthConfig says who may use the HTTP status endpoint (Config.HTTPAddr)
// when the cluster authenticates (it has a Secret, Users or Tokens here).
type HTTPAuthConfig struct {
	// Tokens are bearer tokens ("Authorization: Bearer TOKEN") that open
	// every path. They are kept as SHA-256 hashes once the server has
	// started. Users can also log in with HTTP basic authentication: the
	// dashboard and /status need read access on every table, /debug/pprof
	// admin.
	Tokens []string
	// ProtectMetrics makes /metrics need a token or a user too (default:
	// open, for Prometheus scrapers on a trusted network). /healthz and
	// /readyz stay open.
	ProtectMetrics bool
}

// httpAuth holds the compiled HTTP credentials.
type httpAuth struct {
	on      bool
	tokens  [][sha256.Size]byte
	users   *auth.Users
	metrics bool // /metrics needs credentials

	// logMu rate-limits the warnings about refused requests.
	logMu   sync.Mutex
	lastLog time.Time
}

func (s *Server) newHTTPAuth() *httpAuth {
	cfg := s.cfg.HTTPAuth
	a := &httpAuth{
		on:      len(s.cfg.Secret) > 0 || s.sec.users != nil || len(cfg.Tokens) > 0,
		users:   s.sec.users,
		metrics: cfg.ProtectMetrics,
	}
	for _, t := range cfg.Tokens {
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	return a
}

// httpHandler wraps the HTTP endpoint's handler with the authentication
// check: with authentication on, every path but /healthz, /readyz and
// (unless ProtectMetrics) /metrics needs a bearer token or a user's
// password.
func (s *Server) httpHandler(h http.Handler) http.Handler {
	a := s.newHTTPAuth()
	if !a.on {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need, open := httpNeed(r.URL.Path, a.metrics)
		if open || a.allowed(r, need) {
			h.ServeHTTP(w, r)
			return
		}
		s.httpAuthFailures.Add(1)
		a.logMu.Lock()
		if time.Since(a.lastLog) >= time.Second {
			a.lastLog = time.Now()
			a.logMu.Unlock()
			s.log.Warn("zeppelin: HTTP request refused: no valid token or password", "remote", r.RemoteAddr, "path", r.URL.Path)
		} else {
			a.logMu.Unlock()
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="zeppelin", Basic realm="zeppelin"`)
		http.Error(w, "zeppelin: authentication required: send Authorization: Bearer <token> (HTTPAuth.Tokens) or a user's name and password (basic)", http.StatusUnauthorized)
	})
}

// httpNeed returns the access a path needs, or open for the paths every
// caller may read.
func httpNeed(path string, protectMetrics bool) (auth.Level, bool) {
	switch {
	case path == "/healthz", path == "/readyz":
		return auth.LevelNone, true
	case path == "/metrics":
		return auth.LevelRead, !protectMetrics
	case strings.HasPrefix(path, "/debug/"):
		return auth.LevelAdmin, false
	}
	return auth.LevelRead, false
}

// allowed checks r's credentials.
func (a *httpAuth) allowed(r *http.Request, need auth.Level) bool {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		found := 0
		for _, t := range a.tokens {
			found |= subtle.ConstantTimeCompare(sum[:], t[:])
		}
		return found == 1
	}
	if user, pass, ok := r.BasicAuth(); ok && a.users != nil {
		access, ok := a.users.Check(user, pass)
		return ok && access.Can("", need)
	}
	return false
}

// httpListener returns ln with TLS when it is configured.
func (s *Server) httpListener(ln net.Listener) net.Listener {
	if s.sec.certs == nil {
		return ln
	}
	return tls.NewListener(ln, s.sec.certs.ServerConfig(false))
}
