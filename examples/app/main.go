// Command app is a small HTTP service that keeps its sessions in an
// embedded Zeppelin store.
//
// The service runs a Zeppelin server in its own process: by default a
// cluster of one (a meta member and a data node) in -dir, or, with -join,
// a data node of an existing cluster. Each session is one key of the
// sessions table, written with a TTL so that the store forgets expired
// sessions by itself:
//
//	POST /login   user=NAME (form)             201 {"token": ..., "user": ..., "expires_in": seconds}
//	GET  /me      Authorization: Bearer TOKEN  200 {"user": ..., "expires_in": seconds}; 401 once expired
//	POST /logout  Authorization: Bearer TOKEN  204; the token is no longer valid
//
// Try it:
//
//	go run ./examples/app -http 127.0.0.1:8080
//	TOKEN=$(curl -s -d user=alice 127.0.0.1:8080/login | jq -r .token)
//	curl -s -H "Authorization: Bearer $TOKEN" 127.0.0.1:8080/me
//	curl -s -X POST -H "Authorization: Bearer $TOKEN" 127.0.0.1:8080/logout
//
// A second instance joins the first one's cluster as a data node with
// -join and the RPC address the first prints; both then serve the same
// sessions. With -dir the sessions outlive a restart; without it the
// store lives in a temporary directory removed at exit.
//
// SIGINT or SIGTERM stops the service gracefully: the HTTP server finishes
// the requests in progress, then the Zeppelin server hands its master
// roles to other nodes, if any, and closes (Server.Shutdown).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/examples/internal/demo"
)

func main() { demo.Main("app", run) }

// options are the command-line flags.
type options struct {
	http        string
	rpc         string
	dir         string
	join        []string
	ttl         time.Duration
	replication int
	verbose     bool
}

func parseFlags(args []string) (options, error) {
	var o options
	var join string
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.StringVar(&o.http, "http", "127.0.0.1:8080", "HTTP listen address (port 0 picks a free port)")
	fs.StringVar(&o.rpc, "rpc", "127.0.0.1:0", "Zeppelin RPC listen address")
	fs.StringVar(&o.dir, "dir", "", "Zeppelin data directory (default: a temporary one, removed at exit)")
	fs.StringVar(&join, "join", "", "comma-separated RPC addresses of an existing cluster to join as a data node")
	fs.DurationVar(&o.ttl, "ttl", 30*time.Minute, "session lifetime")
	fs.IntVar(&o.replication, "replication", 1, "replicas per partition of the sessions table, when this process creates it")
	fs.BoolVar(&o.verbose, "v", false, "print the Zeppelin server's logs on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if join != "" {
		o.join = strings.Split(join, ",")
	}
	if o.ttl < time.Millisecond {
		return o, fmt.Errorf("-ttl must be at least 1ms")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "zeppelin-app-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.dir = tmp
	}
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	// DefaultLocalConfig suits a demo on one machine (loopback, fast
	// failure detection); a production service starts from DefaultConfig.
	cfg := zeppelin.DefaultLocalConfig(o.dir)
	cfg.RPCAddr = o.rpc
	cfg.Logger = logger
	if len(o.join) > 0 {
		cfg.Roles = zeppelin.RoleData
		cfg.Join = o.join
	}
	srv, err := zeppelin.Start(cfg)
	if err != nil {
		return err
	}
	defer srv.Close() // after Shutdown, a no-op
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = srv.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "zeppelin node %s (%s) serving RPC on %s\n", srv.NodeID(), srv.Roles(), srv.Addr())

	c := srv.Client()
	_, err = c.CreateTable(ctx, "sessions", client.TableOptions{Partitions: 8, Replication: o.replication})
	if err != nil && !errors.Is(err, client.ErrTableExists) {
		return fmt.Errorf("create the sessions table: %w", err)
	}

	ln, err := net.Listen("tcp", o.http)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           newHandler(c.Table("sessions"), o.ttl, logger),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	select {
	case err = <-served:
		err = fmt.Errorf("http: %w", err)
	case <-ctx.Done():
		fmt.Fprintln(stdout, "shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if herr := hs.Shutdown(sctx); herr != nil {
			hs.Close()
		}
		cancel()
		<-served // http.ErrServerClosed
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	fmt.Fprintln(stdout, "stopped")
	return err
}

// sessions serves the session API from a table: one key per session,
// "session:TOKEN", holding the user's name, with the session's TTL.
type sessions struct {
	tb  *client.Table
	ttl time.Duration
	log *slog.Logger
}

func newHandler(tb *client.Table, ttl time.Duration, log *slog.Logger) http.Handler {
	s := &sessions{tb: tb, ttl: ttl, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /me", s.me)
	mux.HandleFunc("POST /logout", s.logout)
	return mux
}

func sessionKey(token string) []byte { return []byte("session:" + token) }

// token returns the bearer token of r, or "".
func token(r *http.Request) string {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(t)
}

func (s *sessions) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("user")
	if user == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user is required"})
		return
	}
	tok := rand.Text()
	if err := s.tb.Set(r.Context(), sessionKey(tok), []byte(user), client.WithTTL(s.ttl)); err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "user": user, "expires_in": seconds(s.ttl)})
}

func (s *sessions) me(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	if tok == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no bearer token"})
		return
	}
	user, err := s.tb.Get(r.Context(), sessionKey(tok))
	var ttl time.Duration
	if err == nil {
		ttl, err = s.tb.TTL(r.Context(), sessionKey(tok))
	}
	switch {
	case errors.Is(err, client.ErrNotFound):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no such session, or it expired"})
	case err != nil:
		s.storeError(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"user": string(user), "expires_in": seconds(ttl)})
	}
}

func (s *sessions) logout(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	if tok == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no bearer token"})
		return
	}
	if _, err := s.tb.Delete(r.Context(), sessionKey(tok)); err != nil {
		s.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// storeError answers a request the store could not serve.
func (s *sessions) storeError(w http.ResponseWriter, err error) {
	s.log.Warn("app: session store", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
}

// seconds rounds a TTL up to whole seconds, as an expires_in field does.
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
