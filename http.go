package zeppelin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns the server's own Prometheus registry (never the
// global one: many servers share a test process) with the Go runtime and
// process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Metrics returns the server's Prometheus registry: request counts and
// latencies by operation and table, per-node replica and lag figures (and,
// with Config.PartitionMetrics, every replica's position and lag), the
// store's size, meta epoch, leadership, decisions and per-node states,
// and the Go runtime. Serve it with promhttp or set Config.HTTPAddr.
func (s *Server) Metrics() *prometheus.Registry { return s.reg }

// HTTPAddr returns the address of the HTTP status listener, or "".
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// startHTTP serves on addr:
//
//	/metrics         Prometheus
//	/status          the cluster's status as JSON
//	/                the dashboard (/dashboard/live: its content alone)
//	/healthz         200 "ok" while the process runs
//	/readyz          200 when ready to serve, 503 with the reason otherwise
//	/debug/pprof/    the Go profiler
func (s *Server) startHTTP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln = s.httpListener(ln) // TLS, when configured (http_auth.go)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", s.serveStatus)
	mux.HandleFunc("/healthz", s.serveHealthz)
	mux.HandleFunc("/readyz", s.serveReadyz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", s.serveDashboard)
	mux.HandleFunc("/dashboard/live", s.serveDashboardLive)
	s.httpLn = ln
	s.http = &http.Server{Handler: s.httpHandler(mux), ReadHeaderTimeout: 10 * time.Second} // tokens and passwords (http_auth.go)
	s.group.Go(func() {
		if err := s.http.Serve(ln); err != nil && err != http.ErrServerClosed {
			s.log.Error("zeppelin: HTTP listener stopped", "err", err)
		}
	})
	return nil
}

// readiness returns nil when every role of the process is serving: the
// meta member knows a leader (meta role); the data node is registered and
// the meta leader acknowledged a recent heartbeat with a current map (data
// role, which covers reaching the meta group). Otherwise it says why not.
func (s *Server) readiness() error {
	if s.group.Stopped() {
		return ErrClosed
	}
	var errs []error
	if s.meta != nil {
		if id, _ := s.meta.Leader(); id == 0 {
			errs = append(errs, errors.New("meta member knows no leader (no quorum reachable)"))
		}
	}
	if s.node != nil {
		if err := s.node.Health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.readiness(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ready")
}

// requestTimeout bounds what one status or dashboard request gathers.
const requestTimeout = 5 * time.Second

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	v := s.statusView(s.gather(ctx, false))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	s.renderDashboard(w, r, "page.html")
}

func (s *Server) serveDashboardLive(w http.ResponseWriter, r *http.Request) {
	s.renderDashboard(w, r, "live")
}

func (s *Server) renderDashboard(w http.ResponseWriter, r *http.Request, tmpl string) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	d := s.dashboardData(s.gather(ctx, true))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := dashboardTmpl.ExecuteTemplate(w, tmpl, d); err != nil {
		s.log.Debug("zeppelin: dashboard", "err", err)
	}
}
