package zeppelin

import (
	"context"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zeppelin-kv/zeppelin/client"
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
// latencies by operation and table, replica positions and lag, meta epoch,
// leadership and decisions, and the Go runtime. Serve it with promhttp or
// set Config.HTTPAddr.
func (s *Server) Metrics() *prometheus.Registry { return s.reg }

// HTTPAddr returns the address of the HTTP status listener, or "".
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// startHTTP serves /metrics, /status (JSON), a read-only dashboard at /
// and /debug/pprof on addr.
func (s *Server) startHTTP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", s.serveStatus)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", s.serveDashboard)
	s.httpLn = ln
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.group.Go(func() {
		if err := s.http.Serve(ln); err != nil && err != http.ErrServerClosed {
			s.log.Error("zeppelin: HTTP listener stopped", "err", err)
		}
	})
	return nil
}

// statusView is the JSON of /status.
type statusView struct {
	Node    string         `json:"node"`
	Roles   string         `json:"roles"`
	RPC     string         `json:"rpc_addr"`
	Cluster *client.Status `json:"cluster,omitempty"`
	Local   any            `json:"local_replicas,omitempty"`
	Error   string         `json:"error,omitempty"`
	Time    time.Time      `json:"time"`
	Limits  client.Limits  `json:"limits"`
	Tables  []tableSummary `json:"tables,omitempty"`
	Masters map[string]int `json:"masters_per_node,omitempty"`
	// Migrations are the replica moves running and recently finished.
	Migrations []client.Migration `json:"migrations,omitempty"`
}

type tableSummary struct {
	Name        string `json:"name"`
	ID          uint32 `json:"id"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replication"`
	Mode        string `json:"mode"`
	Fenced      bool   `json:"fenced"`
	NoMaster    int    `json:"partitions_without_master"`
}

func (s *Server) status(ctx context.Context) statusView {
	v := statusView{Node: s.nodeID, Roles: s.cfg.Roles.String(), RPC: s.advertise, Time: time.Now(), Limits: s.cfg.Limits}
	if s.node != nil {
		v.Local = s.node.Status()
	}
	st, err := s.Client().Status(ctx)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Cluster = st
	v.Masters = make(map[string]int)
	for _, t := range st.Map.Tables {
		ts := tableSummary{Name: t.Name, ID: uint32(t.ID), Partitions: len(t.Partitions), Replication: t.Replication, Mode: t.Mode.String(), Fenced: t.Fenced}
		for _, p := range t.Partitions {
			if p.Master == "" {
				ts.NoMaster++
			} else {
				v.Masters[string(p.Master)]++
			}
		}
		v.Tables = append(v.Tables, ts)
	}
	if len(st.Map.Migrations) > 0 {
		if ms, err := s.Client().Migrations(ctx, 0); err == nil {
			v.Migrations = ms
		}
	}
	return v
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.status(ctx))
}

var dashboard = template.Must(template.New("dash").Funcs(template.FuncMap{
	"ms": func(v int64) string {
		if v < 0 {
			return "—"
		}
		return (time.Duration(v) * time.Millisecond).String()
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Zeppelin {{.Node}}</title>
<meta http-equiv="refresh" content="2">
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}th{background:#eee}.bad{color:#b00}</style></head>
<body><h1>Zeppelin — {{.Node}} ({{.Roles}})</h1>
{{if .Error}}<p class="bad">cluster status unavailable: {{.Error}}</p>{{else}}{{with .Cluster}}
<p>epoch {{.Epoch}} · meta leader {{.LeaderID}} at {{.LeaderAddr}} · term {{.Term}}</p>
<h2>Meta members</h2><table><tr><th>id</th><th>rpc</th><th>raft</th><th>leader</th></tr>
{{range .Members}}<tr><td>{{.ID}}</td><td>{{.RPCAddr}}</td><td>{{.RaftAddr}}</td><td>{{if .Leader}}★{{end}}</td></tr>{{end}}</table>
<h2>Data nodes</h2><table><tr><th>node</th><th>address</th><th>state</th><th>last heartbeat</th><th>replicas</th></tr>
{{range .Nodes}}<tr><td>{{.Node.ID}}</td><td>{{.Node.Addr}}</td><td {{if ne .Node.State.String "up"}}class="bad"{{end}}>{{.Node.State}}</td><td>{{ms .HeartbeatAgeMs}}</td><td>{{len .Replicas}}</td></tr>{{end}}</table>
<h2>Replicas</h2><table><tr><th>node</th><th>table</th><th>partition</th><th>role</th><th>state</th><th>gen</th><th>seq</th><th>lag</th></tr>
{{range $n := .Nodes}}{{range .Replicas}}<tr><td>{{$n.Node.ID}}</td><td>{{.Table}}</td><td>{{.Partition}}</td><td>{{.Role}}</td><td>{{.State}}{{if .Incomplete}} (incomplete){{end}}</td><td>{{.Gen}}</td><td>{{.Seq}}</td><td>{{if .LagRecords}}{{.LagRecords}} rec / {{ms .LagMs}}{{end}}</td></tr>{{end}}{{end}}</table>
{{end}}
<h2>Tables</h2><table><tr><th>name</th><th>id</th><th>partitions</th><th>replication</th><th>mode</th><th>fenced</th><th>without master</th></tr>
{{range .Tables}}<tr><td>{{.Name}}</td><td>{{.ID}}</td><td>{{.Partitions}}</td><td>{{.Replication}}</td><td>{{.Mode}}</td><td>{{.Fenced}}</td><td {{if .NoMaster}}class="bad"{{end}}>{{.NoMaster}}</td></tr>{{end}}</table>
<h2>Masters per node</h2><table>{{range $k, $v := .Masters}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>
{{if .Migrations}}<h2>Migrations</h2><table><tr><th>id</th><th>batch</th><th>table</th><th>partition</th><th>from</th><th>to</th><th>state</th><th>copied</th><th>lag</th><th>error</th></tr>
{{range .Migrations}}<tr><td>{{.ID}}</td><td>{{.Batch}}</td><td>{{.Table}}</td><td>{{.Partition}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.State}}</td><td>{{.CopiedBytes}} / {{.TotalBytes}}</td><td>{{.LagRecords}}</td><td {{if .Error}}class="bad"{{end}}>{{.Error}}</td></tr>{{end}}</table>{{end}}
{{end}}<p><a href="/metrics">metrics</a> · <a href="/status">status (JSON)</a> · <a href="/debug/pprof/">pprof</a></p>
</body></html>`))

func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v := s.status(ctx)
	if v.Cluster != nil {
		sort.Slice(v.Cluster.Nodes, func(i, j int) bool { return v.Cluster.Nodes[i].Node.ID < v.Cluster.Nodes[j].Node.ID })
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashboard.Execute(w, v); err != nil {
		s.log.Debug("zeppelin: dashboard", "err", err)
	}
}
