package zeppelin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func get(t *testing.T, url string) string {
	t.Helper()
	code, body := getStatus(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}

// getStatus returns the status code and body of GET url.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the first sample of metric whose labels
// contain every given label.
func metricValue(t *testing.T, body, metric string, labels ...string) float64 {
	t.Helper()
	v, ok := findMetric(t, body, metric, labels...)
	if !ok {
		t.Fatalf("no sample of %s with %v in:\n%s", metric, labels, body)
	}
	return v
}

func findMetric(t *testing.T, body, metric string, labels ...string) (float64, bool) {
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
			return v, true
		}
	}
	return 0, false
}

func withHTTP(_ int, cfg *zeppelin.Config) { cfg.HTTPAddr = "127.0.0.1:0" }

// statusDoc is the part of /status the tests read.
type statusDoc struct {
	Node     string `json:"node"`
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready_reason"`
	Cluster  struct {
		Epoch    uint64 `json:"epoch"`
		LeaderID uint64 `json:"leader_id"`
		Members  []struct {
			ID           uint64 `json:"id"`
			Reachable    bool   `json:"reachable"`
			Role         string `json:"role"`
			AppliedIndex uint64 `json:"applied_index"`
		} `json:"members"`
		Nodes []struct {
			ID                 string `json:"id"`
			State              string `json:"state"`
			Masters            int    `json:"masters"`
			Replicas           int    `json:"replicas"`
			DisconnectedSlaves int    `json:"disconnected_slaves"`
			Load               *struct {
				WriteOpsPerSec float64 `json:"write_ops_per_sec"`
				StoreBytes     int64   `json:"store_bytes"`
				MemBytes       uint64  `json:"memory_bytes"`
			} `json:"load"`
		} `json:"nodes"`
		Tables []struct {
			Name       string `json:"name"`
			ID         uint32 `json:"id"`
			Mode       string `json:"mode"`
			Partitions []struct {
				ID       uint32 `json:"id"`
				Master   string `json:"master"`
				State    string `json:"state"`
				Replicas []struct {
					Node       string `json:"node"`
					Role       string `json:"role"`
					State      string `json:"state"`
					Connected  bool   `json:"connected"`
					LagRecords uint64 `json:"lag_records"`
					LagMs      int64  `json:"lag_ms"`
				} `json:"replicas"`
			} `json:"partitions"`
		} `json:"tables"`
	} `json:"cluster"`
	Local *struct {
		Replicas []struct {
			Table string `json:"table"`
			Role  string `json:"role"`
		} `json:"replicas"`
	} `json:"local"`
	Events []struct {
		Kind   string `json:"kind"`
		Source string `json:"source"`
	} `json:"events"`
}

func readStatus(t *testing.T, base string) (statusDoc, string) {
	t.Helper()
	body := get(t, base+"/status")
	var st statusDoc
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	return st, body
}

// checkNaming fails on any key of the JSON document v that is not
// snake_case, and on numbers where the names of roles, states and modes
// belong.
func checkNaming(t *testing.T, path string, v any) {
	t.Helper()
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !snake.MatchString(k) {
				t.Errorf("/status key %s.%s is not snake_case", path, k)
			}
			switch k {
			case "role", "state", "mode", "domain", "roles", "kind":
				if _, ok := e.(string); !ok {
					t.Errorf("/status %s.%s = %v, want a name", path, k, e)
				}
			}
			checkNaming(t, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			checkNaming(t, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

func TestMetricsAndStatusEndpoint(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: withHTTP})
	c.CreateTable("m", client.TableOptions{Partitions: 6, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "m", 300)
	checkKeys(t, ctx, c.Client(0), "m", 300)
	c.WaitConverged("m", 30*time.Second)

	var writes, gets, timedGets float64
	for i := range c.Len() {
		base := "http://" + c.Server(i).HTTPAddr()
		body := get(t, base+"/metrics")
		writes += metricValue(t, body, "zeppelin_node_requests_total", `kind="write"`, `table="m"`, `result="ok"`)
		gets += metricValue(t, body, "zeppelin_node_requests_total", `kind="get"`, `table="m"`, `result="ok"`)
		// A multi-key read times each of its keys.
		timedGets += metricValue(t, body, "zeppelin_node_request_duration_seconds_count", `kind="get"`, `table="m"`)
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

		// Per-node figures every member exports, from its own map.
		for _, n := range []string{"n1", "n2", "n3"} {
			if v := metricValue(t, body, "zeppelin_meta_node_state", `node="`+n+`"`, `state="up"`); v != 1 {
				t.Errorf("member %d: zeppelin_meta_node_state{node=%q,state=up} = %v", i, n, v)
			}
			if v := metricValue(t, body, "zeppelin_meta_node_replicas", `node="`+n+`"`); v != 6 {
				t.Errorf("member %d: zeppelin_meta_node_replicas{node=%q} = %v, want 6", i, n, v)
			}
		}
		if v := metricValue(t, body, "zeppelin_meta_raft_applied_index"); v <= 0 {
			t.Errorf("member %d: applied index %v", i, v)
		}
		// The data node's own figures.
		if v := metricValue(t, body, "zeppelin_node_replicas", `role="master"`) + metricValue(t, body, "zeppelin_node_replicas", `role="slave"`); v != 6 {
			t.Errorf("member %d: %v replicas, want 6", i, v)
		}
		metricValue(t, body, "zeppelin_node_slaves_disconnected")
		metricValue(t, body, "zeppelin_node_max_lag_seconds")
		if v := metricValue(t, body, "zeppelin_store_disk_bytes"); v <= 0 {
			t.Errorf("member %d: store disk bytes %v", i, v)
		}
		metricValue(t, body, "zeppelin_store_lsm_bytes")
		if v := metricValue(t, body, "zeppelin_store_vlog_bytes"); v <= 0 {
			t.Errorf("member %d: value log bytes %v", i, v)
		}
		metricValue(t, body, "zeppelin_store_keys_estimate")
		metricValue(t, body, "zeppelin_store_level_tables", `level="0"`)
		// Every point read asks the read cache first.
		memberGets := metricValue(t, body, "zeppelin_node_requests_total", `kind="get"`, `table="m"`, `result="ok"`)
		asked := metricValue(t, body, "zeppelin_store_read_cache_hits_total") + metricValue(t, body, "zeppelin_store_read_cache_misses_total")
		if asked < memberGets {
			t.Errorf("member %d: the read cache was asked %v times for %v gets", i, asked, memberGets)
		}
		if memberGets > 0 && metricValue(t, body, "zeppelin_store_read_cache_entries") <= 0 {
			t.Errorf("member %d: the read cache holds nothing after %v gets", i, memberGets)
		}
		metricValue(t, body, "zeppelin_store_read_cache_bytes")
		metricValue(t, body, "zeppelin_store_vlog_rewrites_total")
	}
	if writes != 300 || gets != 300 || timedGets != 300 {
		t.Errorf("nodes counted %v writes, %v gets and %v get latencies, want 300 each", writes, gets, timedGets)
	}
	// Every slave connects (a slave that caught up by a full sync counts
	// as connected once its first fetch returns).
	c.Eventually(10*time.Second, func() error {
		connected, disconnected := 0.0, 0.0
		for i := range c.Len() {
			body := get(t, "http://"+c.Server(i).HTTPAddr()+"/metrics")
			disconnected += metricValue(t, body, "zeppelin_node_slaves_disconnected")
			for _, p := range []string{"0", "1", "2", "3", "4", "5"} {
				if v, ok := findMetric(t, body, "zeppelin_replica_slave_connected", `table="m"`, `partition="`+p+`"`); ok {
					connected += v
				}
			}
		}
		if connected != 12 || disconnected != 0 {
			return fmt.Errorf("%v slaves connected, %v disconnected, want 12 and 0", connected, disconnected)
		}
		return nil
	})

	// /status: the cluster in one naming style.
	base := "http://" + c.Server(0).HTTPAddr()
	c.Eventually(10*time.Second, func() error {
		st, _ := readStatus(t, base)
		for _, n := range st.Cluster.Nodes {
			if n.Load == nil || n.Load.WriteOpsPerSec == 0 && n.Load.StoreBytes == 0 {
				return fmt.Errorf("node %s: load %+v", n.ID, n.Load)
			}
		}
		// Slaves stream within a few fetches of the table's creation (the
		// meta leader knows a heartbeat later).
		for _, tb := range st.Cluster.Tables {
			for _, p := range tb.Partitions {
				for _, r := range p.Replicas[1:] {
					if r.State != "streaming" || !r.Connected {
						return fmt.Errorf("partition %d: slave %+v", p.ID, r)
					}
				}
			}
		}
		return nil
	})
	st, body := readStatus(t, base)
	var doc any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	checkNaming(t, "", doc)
	if st.Node != "n1" || !st.Ready || st.Cluster.Epoch == 0 || st.Cluster.LeaderID == 0 {
		t.Errorf("status: node %q ready %v (%s) epoch %d leader %d", st.Node, st.Ready, st.NotReady, st.Cluster.Epoch, st.Cluster.LeaderID)
	}
	if len(st.Cluster.Members) != 3 {
		t.Fatalf("%d meta members, want 3", len(st.Cluster.Members))
	}
	leaders := 0
	for _, m := range st.Cluster.Members {
		if !m.Reachable || m.AppliedIndex == 0 || (m.Role != "leader" && m.Role != "follower") {
			t.Errorf("meta member %+v", m)
		}
		if m.Role == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d members say they lead", leaders)
	}
	masters := 0
	for _, n := range st.Cluster.Nodes {
		masters += n.Masters
		if n.State != "up" || n.Replicas != 6 || n.Load.MemBytes == 0 {
			t.Errorf("node %+v", n)
		}
	}
	if len(st.Cluster.Nodes) != 3 || masters != 6 {
		t.Errorf("%d nodes mastering %d partitions, want 3 and 6", len(st.Cluster.Nodes), masters)
	}
	if len(st.Cluster.Tables) != 1 || st.Cluster.Tables[0].Name != "m" || st.Cluster.Tables[0].ID == 0 || st.Cluster.Tables[0].Mode != "async" {
		t.Fatalf("tables: %+v", st.Cluster.Tables)
	}
	for _, p := range st.Cluster.Tables[0].Partitions {
		if len(p.Replicas) != 3 || p.Replicas[0].Role != "master" || p.Replicas[0].Node != p.Master || p.State != "active" {
			t.Errorf("partition %+v", p)
		}
		for _, r := range p.Replicas[1:] {
			if r.Role != "slave" {
				t.Errorf("partition %d: slave %+v", p.ID, r)
			}
		}
	}
	if st.Local == nil || len(st.Local.Replicas) != 6 || st.Local.Replicas[0].Table != "m" {
		t.Errorf("local replicas: %+v", st.Local)
	}
	sawLeader := false
	for _, e := range st.Events {
		sawLeader = sawLeader || e.Kind == "leader" && e.Source != ""
	}
	if !sawLeader {
		t.Errorf("events lack the meta leader's election: %+v", st.Events)
	}

	html := get(t, base+"/")
	for _, want := range []string{`data-node="n1"`, `data-node="n2"`, `data-node="n3"`, `data-table="m"`, `class="grid"`, "<svg", "Meta group", "Events", `title="m/0 · gen`} {
		if !strings.Contains(html, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`<b class="p[^"]*" title=`).FindAllString(html, -1)); n != 6 {
		t.Errorf("dashboard grid shows %d partitions, want 6", n)
	}
	if strings.Contains(html, "<html") == strings.Contains(get(t, base+"/dashboard/live"), "<html") {
		t.Error("/dashboard/live is not the content alone")
	}
	if !strings.Contains(get(t, base+"/debug/pprof/"), "goroutine") {
		t.Error("pprof index missing")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: withHTTP})
	for i := range c.Len() {
		base := "http://" + c.Server(i).HTTPAddr()
		if body := get(t, base+"/healthz"); body != "ok\n" {
			t.Errorf("member %d: /healthz %q", i, body)
		}
		c.Eventually(10*time.Second, func() error {
			if code, body := getStatus(t, base+"/readyz"); code != http.StatusOK {
				return fmt.Errorf("member %d: /readyz %d %s", i, code, body)
			}
			return nil
		})
	}

	// Cut n3 off: its meta member loses the leader and the meta leader
	// stops acknowledging its data node's heartbeats.
	base := "http://" + c.Server(2).HTTPAddr()
	c.Hub.Isolate("n3", "n1", "n2")
	c.Eventually(20*time.Second, func() error {
		code, body := getStatus(t, base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no heartbeat acknowledged") {
			return fmt.Errorf("isolated member: /readyz %d %q", code, body)
		}
		return nil
	})
	if body := get(t, base+"/healthz"); body != "ok\n" {
		t.Errorf("isolated member: /healthz %q", body)
	}
	c.Hub.Heal()
	c.Eventually(20*time.Second, func() error {
		if code, body := getStatus(t, base+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("healed member: /readyz %d %q", code, body)
		}
		return nil
	})
}

func TestReadinessBeforeJoining(t *testing.T) {
	// A data node whose meta group does not answer never registers.
	cfg := zeppelin.DefaultLocalConfig(t.TempDir())
	cfg.Roles = zeppelin.RoleData
	cfg.GossipAddr = "off"
	cfg.Join = []string{"127.0.0.1:1"}
	cfg.HTTPAddr = "127.0.0.1:0"
	s, err := zeppelin.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.HTTPAddr()
	if body := get(t, base+"/healthz"); body != "ok\n" {
		t.Errorf("/healthz %q", body)
	}
	code, body := getStatus(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not registered") {
		t.Errorf("/readyz %d %q, want 503 saying the node is not registered", code, body)
	}
	// The status and the dashboard still answer, saying why the cluster
	// is unknown.
	var st struct {
		Ready bool   `json:"ready"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Error == "" {
		t.Errorf("status: %+v", st)
	}
	if html := get(t, base+"/"); !strings.Contains(html, "Cluster status unavailable") {
		t.Error("the dashboard does not say the cluster status is unavailable")
	}
}

func TestStatusShowsDownSlave(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: withHTTP})
	c.CreateTable("d", client.TableOptions{Partitions: 4, Replication: 3})
	ctx := ctxFor(t, time.Minute)
	writeKeys(t, ctx, []*client.Client{c.Client(0)}, "d", 100)
	c.WaitConverged("d", 30*time.Second)
	// n3 crashes (not the meta leader, so that its status stays put), the
	// others take writes it misses.
	victim := 2
	if c.MetaLeader() == victim {
		victim = 1
	}
	name := fmt.Sprintf("n%d", victim+1)
	other := (victim + 1) % 3
	if other == c.MetaLeader() {
		other = (victim + 2) % 3
	}
	base := "http://" + c.Server(other).HTTPAddr()
	c.Stop(victim)
	c.Eventually(30*time.Second, func() error {
		writeKeys(t, ctx, []*client.Client{c.Client(other)}, "d", 100)
		st, _ := readStatus(t, base)
		down := false
		for _, n := range st.Cluster.Nodes {
			if n.ID == name && n.State == "down" {
				down = true
			}
		}
		if !down {
			return fmt.Errorf("%s not down yet", name)
		}
		for _, p := range st.Cluster.Tables[0].Partitions {
			for _, r := range p.Replicas {
				if r.Node != name {
					continue
				}
				if r.State != "down" || r.Connected {
					return fmt.Errorf("partition %d: the down node's replica shows as %+v", p.ID, r)
				}
				if r.Role != "master" && (r.LagRecords == 0 || r.LagMs == 0) {
					return fmt.Errorf("partition %d: the down slave shows lag %d rec / %d ms", p.ID, r.LagRecords, r.LagMs)
				}
			}
		}
		return nil
	})
	html := get(t, base+"/")
	if !strings.Contains(html, `class="node down" data-node="`+name+`"`) {
		t.Errorf("the dashboard does not mark %s down", name)
	}
	if !strings.Contains(html, `<i class="dn">`) || strings.Contains(html, "slave "+name+": down, disconnected, lag 0 rec / 0s") {
		t.Error("the dashboard grid does not show the down slaves as such")
	}
}

func TestPartitionMetricsOff(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *zeppelin.Config) {
		withHTTP(i, cfg)
		cfg.PartitionMetrics = false
	}})
	c.CreateTable("q", client.TableOptions{Partitions: 4, Replication: 1})
	body := get(t, "http://"+c.Server(0).HTTPAddr()+"/metrics")
	for _, gone := range []string{"zeppelin_replica_seq", "zeppelin_replica_slave_connected", "zeppelin_replica_gen"} {
		if _, ok := findMetric(t, body, gone); ok {
			t.Errorf("%s exported with PartitionMetrics off", gone)
		}
	}
	if v := metricValue(t, body, "zeppelin_node_replicas", `role="master"`); v != 4 {
		t.Errorf("zeppelin_node_replicas{role=master} = %v, want 4", v)
	}
}

// chromium returns the path of a Chromium binary, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// headless runs Chromium on url with args and returns its output.
func headless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	return out
}

// screenshot saves a PNG of url, 1400 pixels wide, to path.
func screenshot(t *testing.T, bin, url, path string, height int) {
	t.Helper()
	headless(t, bin, url, "--screenshot="+path, fmt.Sprintf("--window-size=1400,%d", height), "--hide-scrollbars")
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("no screenshot at %s: %v", path, err)
	}
}

// startLoad runs reads and writes (one in four) on tables through cl
// until the test ends.
func startLoad(t *testing.T, cl *client.Client, tables ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			tb := cl.Table(tables[i%len(tables)])
			k := []byte(fmt.Sprintf("user-%06d", i%5000))
			if i%4 == 0 {
				_ = tb.Set(ctx, k, bytes.Repeat([]byte("v"), 100))
			} else {
				_, _ = tb.Get(ctx, k)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestDashboardInChromium loads the dashboard of a three-node cluster
// under load in headless Chromium: the page renders the nodes and the
// tables, and its script runs without an error.
func TestDashboardInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium or chromium-browser on PATH")
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: withHTTP})
	c.CreateTable("users", client.TableOptions{Partitions: 64, Replication: 3})
	c.CreateTable("sessions", client.TableOptions{Partitions: 16, Replication: 2})
	startLoad(t, c.Client(0), "users", "sessions")
	time.Sleep(3 * time.Second) // some history for the charts

	url := "http://" + c.Server(0).HTTPAddr() + "/"
	// The virtual time budget lets the page's refresh run too.
	dom := string(headless(t, bin, url, "--dump-dom"))
	if !strings.Contains(dom, `data-ok="1"`) {
		t.Errorf("the page's script did not report success:\n%.2000s", dom)
	}
	if m := regexp.MustCompile(`data-error="[^"]*"`).FindString(dom); m != "" {
		t.Errorf("the page's script failed: %s", m)
	}
	for _, want := range []string{`data-node="n1"`, `data-node="n2"`, `data-node="n3"`, `data-table="users"`, `data-table="sessions"`, "<svg", "updated "} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	screenshot(t, bin, url, filepath.Join(t.TempDir(), "dashboard.png"), 1400)
}

// TestDashboardScreenshot makes docs/dashboard.png: run it by hand with
// ZEPPELIN_DASHBOARD_PNG=$PWD/docs/dashboard.png. A three-node cluster
// serves a minute of load, a switchover and the crash of a node.
func TestDashboardScreenshot(t *testing.T) {
	dst := os.Getenv("ZEPPELIN_DASHBOARD_PNG")
	if dst == "" {
		t.Skip("set ZEPPELIN_DASHBOARD_PNG to the file to write")
	}
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium or chromium-browser on PATH")
	}
	c := testcluster.New(t, testcluster.Options{Servers: 3, Configure: withHTTP})
	c.CreateTable("users", client.TableOptions{Partitions: 128, Replication: 3})
	c.CreateTable("sessions", client.TableOptions{Partitions: 32, Replication: 3, Mode: placement.ModeSync})
	for range 4 {
		startLoad(t, c.Client(0), "users", "sessions")
	}
	time.Sleep(60 * time.Second)
	ctx := ctxFor(t, time.Minute)
	m, err := c.Client(0).Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Table("users").Partitions[0]
	if err := c.Client(0).SetMaster(ctx, "users", 0, p.Slaves[0]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	victim := 2
	if c.MetaLeader() == victim {
		victim = 1
	}
	c.Stop(victim)
	time.Sleep(15 * time.Second)
	screenshot(t, bin, "http://"+c.Server(0).HTTPAddr()+"/", dst, 1250)
	t.Logf("screenshot saved to %s", dst)
}
