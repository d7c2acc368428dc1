package zeppelin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// metricValue returns the value of the first sample of metric whose labels
// contain every given label.
func metricValue(t *testing.T, body, metric string, labels ...string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + `(\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				ok = false
			}
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no sample of %s with %v in:\n%s", metric, labels, body)
	return 0
}

func TestMetricsAndStatusEndpoint(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: func(i int, cfg *zeppelin.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
	}})
	c.CreateTable("m", client.TableOptions{Partitions: 6, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "m", 300)
	checkKeys(t, ctx, c.Client(0), "m", 300)
	c.WaitConverged("m", 30*time.Second)

	var writes, gets float64
	for i := range c.Len() {
		base := "http://" + c.Server(i).HTTPAddr()
		body := get(t, base+"/metrics")
		writes += metricValue(t, body, "zeppelin_node_requests_total", `kind="write"`, `table="m"`, `result="ok"`)
		gets += metricValue(t, body, "zeppelin_node_requests_total", `kind="get"`, `table="m"`, `result="ok"`)
		if n := metricValue(t, body, "zeppelin_node_request_duration_seconds_count", `kind="write"`, `table="m"`); n == 0 {
			t.Errorf("member %d: no write latency samples", i)
		}
		if e := metricValue(t, body, "zeppelin_meta_epoch"); e < 1 {
			t.Errorf("member %d: meta epoch %v", i, e)
		}
		if seq := metricValue(t, body, "zeppelin_replica_seq", `table="m"`); seq <= 0 {
			t.Errorf("member %d: replica seq %v", i, seq)
		}
		metricValue(t, body, "go_goroutines")
	}
	if writes != 300 || gets != 300 {
		t.Errorf("nodes counted %v writes and %v gets, want 300 each", writes, gets)
	}

	base := "http://" + c.Server(0).HTTPAddr()
	var st struct {
		Node    string         `json:"node"`
		Masters map[string]int `json:"masters_per_node"`
		Cluster struct {
			Epoch uint64 `json:"Epoch"`
			Nodes []struct {
				Replicas []json.RawMessage `json:"Replicas"`
			} `json:"Nodes"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range st.Masters {
		total += n
	}
	if st.Node != "n1" || total != 6 || len(st.Cluster.Nodes) != 3 || len(st.Cluster.Nodes[0].Replicas) != 6 {
		t.Errorf("status: %+v", st)
	}
	html := get(t, base+"/")
	for _, want := range []string{"n1", "n2", "n3", "<td>m</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if !strings.Contains(get(t, base+"/debug/pprof/"), "goroutine") {
		t.Error("pprof index missing")
	}
}
