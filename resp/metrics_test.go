package resp

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/client"
)

// gathered returns the value of the sample of metric whose labels include
// every name=value pair of labels (0 when there is none).
func gathered(t *testing.T, reg *prometheus.Registry, metric string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func TestMetricsByCommand(t *testing.T) {
	c := newCluster(t, 1)
	c.CreateTable("default", client.TableOptions{Partitions: 2, Replication: 1})
	s, addr := startServer(t, c, Config{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	ctx := ctxFor(t, time.Minute)
	rdb := newRedis(t, addr, 2, 0)

	must[string](t, "SET")(rdb.Set(ctx, "k", "v", 0).Result())
	must[string](t, "GET")(rdb.Get(ctx, "k").Result())
	must[string](t, "GET")(rdb.Get(ctx, "k").Result())
	wantErr(t, "GET with two keys", rdb.Do(ctx, "get", "a", "b").Err(), "ERR wrong number of arguments")
	wantErr(t, "NOSUCH", rdb.Do(ctx, "nosuch").Err(), "ERR unknown command")
	// INFO settles the connection's counters while it runs: it is no
	// error, and the error replies before it stay counted.
	must[string](t, "INFO")(rdb.Info(ctx, "stats").Result())

	for _, tc := range []struct {
		metric, command string
		want            float64
	}{
		{"zeppelin_resp_commands_total", "get", 3},
		{"zeppelin_resp_command_errors_total", "get", 1},
		{"zeppelin_resp_commands_total", "set", 1},
		{"zeppelin_resp_command_errors_total", "set", 0},
		{"zeppelin_resp_commands_total", "unknown", 1},
		{"zeppelin_resp_command_errors_total", "unknown", 1},
		{"zeppelin_resp_commands_total", "info", 1},
		{"zeppelin_resp_command_errors_total", "info", 0},
	} {
		if got := gathered(t, reg, tc.metric, map[string]string{"command": tc.command}); got != tc.want {
			t.Errorf("%s{command=%q} = %v, want %v", tc.metric, tc.command, got, tc.want)
		}
	}
	if got := gathered(t, reg, "zeppelin_resp_connections", nil); got < 1 {
		t.Errorf("zeppelin_resp_connections = %v, want ≥ 1", got)
	}
	if got := gathered(t, reg, "zeppelin_resp_connections_total", nil); got < 1 {
		t.Errorf("zeppelin_resp_connections_total = %v, want ≥ 1", got)
	}
	if got := gathered(t, reg, "zeppelin_resp_net_input_bytes_total", nil); got == 0 {
		t.Error("zeppelin_resp_net_input_bytes_total = 0")
	}
}
