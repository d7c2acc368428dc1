package resp

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// cmdCount counts the runs and error replies of one command.
type cmdCount struct {
	calls, errs atomic.Uint64
}

// countCommand counts one run of cmd (nil: an unknown command) on c,
// which had sent errsBefore error replies not yet settled when it began.
// A run failed when it sent an error reply: c.errs grew, or, when INFO
// settled the counters meanwhile (they drop to 0), is not 0 again.
func (s *Server) countCommand(cmd *command, c *conn, errsBefore uint64) {
	s.countCalls(cmd, 1, c.errs > errsBefore || c.errs < errsBefore && c.errs > 0)
}

// countCalls counts calls of cmd, and one error when failed.
func (s *Server) countCalls(cmd *command, calls uint64, failed bool) {
	v, ok := s.cmdCounts.Load(cmd)
	if !ok {
		v, _ = s.cmdCounts.LoadOrStore(cmd, new(cmdCount))
	}
	n := v.(*cmdCount)
	n.calls.Add(calls)
	if failed {
		n.errs.Add(1)
	}
}

var (
	descConns = prometheus.NewDesc("zeppelin_resp_connections",
		"Open RESP connections.", nil, nil)
	descConnsTotal = prometheus.NewDesc("zeppelin_resp_connections_total",
		"RESP connections accepted.", nil, nil)
	descCommands = prometheus.NewDesc("zeppelin_resp_commands_total",
		`RESP commands run, by command ("unknown" for names the server does not know; a command queued by MULTI counts when queued).`, []string{"command"}, nil)
	descCommandErrors = prometheus.NewDesc("zeppelin_resp_command_errors_total",
		"RESP commands answered with an error reply, by command.", []string{"command"}, nil)
	descProtocolErrors = prometheus.NewDesc("zeppelin_resp_protocol_errors_total",
		"RESP connections closed for malformed input or exceeded request limits.", nil, nil)
	descPanics = prometheus.NewDesc("zeppelin_resp_panics_total",
		"RESP connections closed because a command panicked.", nil, nil)
	descNetIn = prometheus.NewDesc("zeppelin_resp_net_input_bytes_total",
		"Bytes read from RESP clients.", nil, nil)
	descNetOut = prometheus.NewDesc("zeppelin_resp_net_output_bytes_total",
		"Bytes written to RESP clients.", nil, nil)
	descRuns = prometheus.NewDesc("zeppelin_resp_pipeline_runs_total",
		"Runs of pipelined GETs, SETs or increments answered by one multi-key call each.", nil, nil)
	descRunCommands = prometheus.NewDesc("zeppelin_resp_pipeline_run_commands_total",
		"Pipelined commands answered in runs.", nil, nil)
)

// collector reports a Server's counters when scraped.
type collector struct{ s *Server }

// Collector returns a Prometheus collector of the server's figures:
// connections, commands and error replies by command, protocol errors,
// panics and network bytes. Register it with the registry of the process
// (zeppelin.Server.Metrics), once: the server keeps no global state.
func (s *Server) Collector() prometheus.Collector { return collector{s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descConnsTotal, descCommands, descCommandErrors,
		descProtocolErrors, descPanics, descNetIn, descNetOut, descRuns, descRunCommands} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descConns, float64(s.connections.Load()))
	counter(descConnsTotal, s.totalConns.Load())
	counter(descProtocolErrors, s.protocolErrors.Load())
	counter(descPanics, s.panics.Load())
	counter(descNetIn, s.netIn.Load())
	counter(descNetOut, s.netOut.Load())
	counter(descRuns, s.runs.Load())
	counter(descRunCommands, s.runCmds.Load())
	s.cmdCounts.Range(func(k, v any) bool {
		name := "unknown"
		if cmd := k.(*command); cmd != nil {
			name = cmd.name
		}
		n := v.(*cmdCount)
		counter(descCommands, n.calls.Load(), name)
		counter(descCommandErrors, n.errs.Load(), name)
		return true
	})
}
