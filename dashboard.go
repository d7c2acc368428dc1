package zeppelin

import (
	"embed"
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// The dashboard is server-side HTML: the page at / and, for its script
// to swap in every few seconds, the same content alone at
// /dashboard/live. Charts are SVG drawn here; nothing is loaded from
// elsewhere.

//go:embed dashboard
var dashboardFS embed.FS

var dashboardTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bytes":       fmtBytes,
	"ms":          fmtMs,
	"ops":         fmtOps,
	"age":         fmtAge,
	"lag":         fmtLag,
	"clock":       func(t time.Time) string { return t.Local().Format("15:04:05.000") },
	"cell":        cellClass,
	"ptitle":      partitionTitle,
	"nodeClass":   nodeClass,
	"memberError": memberError,
}).ParseFS(dashboardFS, "dashboard/page.html"))

// dashboardData is what the page template renders.
type dashboardData struct {
	statusJSON
	EventRows []eventRow
	Charts    []template.HTML
	Refresh   int // milliseconds between the script's refreshes
	CSS       template.CSS
	JS        template.JS
}

func (s *Server) dashboardData(snap *snapshot) dashboardData {
	d := dashboardData{statusJSON: s.statusView(snap), Refresh: 2000}
	if c := d.Cluster; c != nil {
		replicas := 0
		for _, t := range c.Tables {
			replicas += t.PartitionCount * t.Replication
		}
		if replicas > 4096 {
			d.Refresh = 5000 // a large page: refresh it less often
		}
	}
	d.EventRows = eventRows(d.Events, maxEventRows)
	d.Charts = loadCharts(snap, time.Now())
	css, _ := dashboardFS.ReadFile("dashboard/style.css")
	js, _ := dashboardFS.ReadFile("dashboard/script.js")
	d.CSS, d.JS = template.CSS(css), template.JS(js)
	return d
}

// maxEventRows bounds the rows of the dashboard's event list.
const maxEventRows = 40

// eventRow is one decision as the dashboard lists it: the events one
// proposal made for many partitions (a node's failovers) share a row.
type eventRow struct {
	Time             time.Time
	Kind, Class      string
	Count            int
	Where, WhereAll  string // the partitions, the first few and all of them
	Node, From, Gens string
	Epoch            uint64
	Source           string
}

// eventKind names an event for the list.
func eventKind(e eventJSON) string {
	switch {
	case e.Kind == "in-sync":
		return "in-sync set changed"
	case e.Kind == "replicas", e.Kind == "failover" && e.Node == e.From:
		return "partition changed (master kept)"
	}
	return e.Kind
}

// eventRows groups evs (newest first) by decision: same time, kind,
// epoch and recorder.
func eventRows(evs []eventJSON, limit int) []eventRow {
	type key struct {
		at     time.Time
		kind   string
		epoch  uint64
		source string
	}
	var rows []eventRow
	var where, nodes, froms, gens [][]string
	index := make(map[key]int)
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, e := range evs {
		kind := eventKind(e)
		k := key{e.Time, kind, e.Epoch, e.Source}
		n, ok := index[k]
		if !ok {
			if len(rows) == limit {
				break
			}
			class := eventClass(e.Kind)
			if kind != e.Kind {
				class = ""
			}
			rows = append(rows, eventRow{Time: e.Time, Kind: kind, Class: class, Epoch: e.Epoch, Source: e.Source})
			where, nodes, froms, gens = append(where, nil), append(nodes, nil), append(froms, nil), append(gens, nil)
			n = len(rows) - 1
			index[k] = n
		}
		rows[n].Count++
		if e.Partition != nil {
			where[n] = append(where[n], fmt.Sprintf("%s/%d", e.Table, *e.Partition))
		}
		add(&nodes[n], e.Node)
		add(&froms[n], e.From)
		if e.Gen != 0 {
			add(&gens[n], fmt.Sprint(e.Gen))
		}
	}
	for i := range rows {
		r := &rows[i]
		r.WhereAll = strings.Join(where[i], ", ")
		r.Where = r.WhereAll
		if len(where[i]) > 4 {
			r.Where = fmt.Sprintf("%d partitions: %s, …", len(where[i]), strings.Join(where[i][:3], ", "))
		}
		slices.Sort(nodes[i])
		slices.Sort(froms[i])
		slices.Sort(gens[i])
		r.Node, r.From, r.Gens = strings.Join(nodes[i], ", "), strings.Join(froms[i], ", "), strings.Join(gens[i], ", ")
	}
	return rows
}

func eventClass(kind string) string {
	switch kind {
	case "down", "failover", "unavailable", "migration failed":
		return "bad"
	case "up", "full sync done", "migration done", "migrated":
		return "good"
	}
	return ""
}

// memberError shortens a probe's error to its last clause (the cause).
func memberError(err string) string {
	if i := strings.LastIndex(err, ": "); i >= 0 {
		return err[i+2:]
	}
	return err
}

// cellClass is the grid class of a replica: its role, or what is wrong
// with it.
func cellClass(t tableJSON, r replicaJSON) string {
	var c string
	switch {
	case r.State == "down":
		c = "dn"
	case r.State == "unreported":
		c = "un"
	case r.Role == "master":
		c = "m"
	case r.Incomplete || r.State == "full-syncing":
		c = "fs"
	case !r.Connected:
		c = "dc"
	case lagging(r):
		c = "lg"
	case r.Role == "learner":
		c = "ln"
	default:
		c = "s"
	}
	if t.Mode == "sync" && r.Role != "master" && !r.InSync {
		c += " oos"
	}
	return c
}

// partitionTitle is the hover text of a partition in the grid.
func partitionTitle(t tableJSON, p partitionJSON) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d · gen %d · %s", t.Name, p.ID, p.Gen, p.State)
	if p.Master == "" {
		b.WriteString(" · NO MASTER")
	}
	for _, r := range p.Replicas {
		fmt.Fprintf(&b, "\n%s %s: %s", r.Role, r.Node, r.State)
		if r.Role != "master" {
			if r.Connected {
				b.WriteString(", connected")
			} else {
				b.WriteString(", disconnected")
			}
			fmt.Fprintf(&b, ", lag %s", fmtLag(r.LagRecords, r.LagMs))
		}
		if r.Incomplete {
			b.WriteString(", incomplete")
		}
		fmt.Fprintf(&b, ", seq %d", r.Seq)
	}
	if t.Mode == "sync" {
		fmt.Fprintf(&b, "\nin sync: %s (min %d)", strings.Join(p.InSync, ", "), t.MinInSync)
	}
	return b.String()
}

func nodeClass(n nodeJSON) string {
	switch {
	case n.State == "down":
		return "down"
	case n.Lagging:
		return "lagging"
	case n.State == "draining":
		return "draining"
	}
	return ""
}

func fmtBytes(v any) string {
	var n float64
	switch x := v.(type) {
	case int64:
		n = float64(x)
	case uint64:
		n = float64(x)
	case int:
		n = float64(x)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func fmtMs(v float64) string {
	switch {
	case v <= 0:
		return "—"
	case v < 1:
		return fmt.Sprintf("%.0f µs", v*1000)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}

func fmtOps(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	case v < 10000:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1fk", v/1000)
}

func fmtAge(ms int64) string {
	if ms < 0 {
		return "not yet"
	}
	return (time.Duration(ms) * time.Millisecond).String() + " ago"
}

// fmtLag is "records / time", the time "?" when it is not known.
func fmtLag(records uint64, ms int64) string {
	t := "?"
	if ms >= 0 {
		t = (time.Duration(ms) * time.Millisecond).String()
	}
	return fmt.Sprintf("%d rec / %s", records, t)
}

// The charts: the cluster's request rate and its worst node's latency
// over the history the data nodes keep.

type chartSeries struct {
	name, color string
	points      map[int64]float64 // by Unix second
}

// loadCharts draws the rate and latency charts from every data node's
// history.
func loadCharts(snap *snapshot, now time.Time) []template.HTML {
	mk := func(name, color string) *chartSeries {
		return &chartSeries{name: name, color: color, points: make(map[int64]float64)}
	}
	reads, writes := mk("reads/s", "#1f5fbf"), mk("writes/s", "#d0631a")
	rp99, wp99 := mk("read p99", "#1f5fbf"), mk("write p99", "#d0631a")
	rp50, wp50 := mk("read p50", "#7fa6df"), mk("write p50", "#ecae83")
	nodes := 0
	for _, st := range snap.stats {
		if st.Roles&wire.RoleData == 0 {
			continue
		}
		nodes++
		for _, p := range st.Series {
			reads.points[p.UnixSec] += p.Read.OpsPerSec
			writes.points[p.UnixSec] += p.Write.OpsPerSec
			rp99.points[p.UnixSec] = max(rp99.points[p.UnixSec], p.Read.P99Ms)
			wp99.points[p.UnixSec] = max(wp99.points[p.UnixSec], p.Write.P99Ms)
			rp50.points[p.UnixSec] = max(rp50.points[p.UnixSec], p.Read.P50Ms)
			wp50.points[p.UnixSec] = max(wp50.points[p.UnixSec], p.Write.P50Ms)
		}
	}
	what := fmt.Sprintf("%d data node", nodes)
	if nodes != 1 {
		what += "s"
	}
	return []template.HTML{
		svgChart("Requests per second, cluster ("+what+")", "", now, []*chartSeries{reads, writes}),
		svgChart("Latency, worst node", "ms", now, []*chartSeries{rp99, wp99, rp50, wp50}),
	}
}

// svgChart draws series as lines over the last historyLen seconds.
func svgChart(title, unit string, now time.Time, series []*chartSeries) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 190.0, 50.0, 8.0, 40.0, 20.0
	end := now.Unix()
	start := end - historyLen
	top1 := 0.0
	for _, s := range series {
		for t, v := range s.points {
			if t >= start {
				top1 = max(top1, v)
			}
		}
	}
	top1 = niceCeil(top1)
	x := func(t int64) float64 { return left + (w-left-right)*float64(t-start)/float64(historyLen) }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/top1) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="14" class="ct">%s</text>`, left, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		v := top1 * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="gl"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="ax" text-anchor="end">%s</text>`, left-4, y(v)+3, html.EscapeString(axisLabel(v, unit)))
	}
	for _, m := range []int64{300, 240, 180, 120, 60, 0} {
		label := "now"
		if m > 0 {
			label = fmt.Sprintf("−%dm", m/60)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="ax" text-anchor="middle">%s</text>`, x(end-m), h-5, label)
	}
	lx := left
	for _, s := range series {
		ts := make([]int64, 0, len(s.points))
		for t := range s.points {
			if t >= start {
				ts = append(ts, t)
			}
		}
		slices.Sort(ts)
		if len(ts) > 0 {
			var pts strings.Builder
			for _, t := range ts {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(t), y(s.points[t]))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.TrimSpace(pts.String()))
		}
		// The legend, with each series' last value.
		label := s.name
		if len(ts) > 0 {
			label += " " + axisLabel(s.points[ts[len(ts)-1]], unit)
		}
		fmt.Fprintf(&b, `<rect x="%.0f" y="23" width="10" height="3" fill="%s"/><text x="%.0f" y="29" class="lg">%s</text>`,
			lx, s.color, lx+14, html.EscapeString(label))
		lx += 14 + 6.5*float64(len([]rune(label))) + 14
	}
	if top1 == 1 && len(series) > 0 && emptySeries(series, start) {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="ax" text-anchor="middle">no data yet</text>`, (left+w-right)/2, (top+h-bottom)/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func emptySeries(series []*chartSeries, start int64) bool {
	for _, s := range series {
		for t := range s.points {
			if t >= start {
				return false
			}
		}
	}
	return true
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func axisLabel(v float64, unit string) string {
	var s string
	switch {
	case v >= 10000:
		s = fmt.Sprintf("%.0fk", v/1000)
	case v >= 100 || v == math.Trunc(v):
		s = fmt.Sprintf("%.0f", v)
	case v >= 1:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}
