package planner

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs in testdata/*.txt")

// TestData runs the scripts in testdata/*.txt. Each script is a sequence of
// cases separated by blank lines; lines starting with '#' between cases are
// comments. A case is a command line, optional input lines, a line holding
// only "----", and the expected output, which runs up to the next blank
// line:
//
//	place t1 id=1 partitions=3 replication=3
//	----
//	t1 id=1 replication=3 domain=default
//	  0: n1 n2 n3
//	...
//
// The cases of one script share state: a topology and the current tables.
// Commands:
//
//	nodes                  input: one node per line, "<id> [zone=] [rack=]
//	                       [host=] [weight=] [state=up|down|draining]";
//	                       replaces the topology (weight defaults to 1)
//	add-node <id> k=v...   adds a node, same keys
//	set-node <id> k=v...   changes a node's labels, weight or state
//	tables                 input: the current tables, in the form show
//	                       prints; replaces them
//	place <name> id= partitions= replication= [domain=]
//	                       places a new table with Place and adds it
//	rebalance [table=]     plans with Rebalance (all tables, or one)
//	rebalance-masters [table=]
//	                       plans with RebalanceMasters
//	apply                  makes the last plan's target the current tables
//	failover <id>          marks a node down and promotes, for every
//	                       partition it masters, its up slave with the
//	                       lowest ID (the old master stays a slave)
//	show                   prints the current tables
//
// A table prints as a header "<name> id= replication= domain= [mode=sync]"
// and one line per partition, "<id>: <master> <slaves...>" ("-" for no
// master, then "insync=a,b" when the in-sync set is not empty), followed by
// the fewest distinct hosts (racks, zones when labelled) any partition
// spans, and the replicas and masters each node holds. A plan prints its
// moves, one per line in execution order, then Plan.String.
//
// Run with -rewrite to regenerate the expected outputs.
func TestData(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			runScript(t, path)
		})
	}
}

// ddCase is one case of a script.
type ddCase struct {
	line  int // 1-based line of the command
	cmd   string
	args  []string // after the command: "key=value" or bare words
	input []string
	// Expected output: lines [outStart, outEnd) of the file.
	outStart, outEnd int
}

// parseScript splits the lines of a script into cases.
func parseScript(lines []string) ([]*ddCase, error) {
	var cases []*ddCase
	for i := 0; i < len(lines); {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		f := strings.Fields(l)
		c := &ddCase{line: i + 1, cmd: f[0], args: f[1:]}
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				return nil, fmt.Errorf("line %d: blank line before ----", i+1)
			}
			c.input = append(c.input, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: %s: missing ----", c.line, c.cmd)
		}
		i++
		c.outStart = i
		for i < len(lines) && lines[i] != "" {
			i++
		}
		c.outEnd = i
		cases = append(cases, c)
	}
	return cases, nil
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	cases, err := parseScript(lines)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	env := &ddEnv{}
	outs := make([][]string, len(cases))
	for i, c := range cases {
		out, err := env.run(c)
		if err != nil {
			out = "error: " + err.Error()
		}
		var got []string
		if out != "" {
			for _, l := range strings.Split(out, "\n") {
				got = append(got, strings.TrimRight(l, " "))
			}
		}
		outs[i] = got
		want := lines[c.outStart:c.outEnd]
		if !*rewrite && !slices.Equal(got, want) {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, c.line, strings.Join(append([]string{c.cmd}, c.args...), " "),
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if !*rewrite {
		return
	}
	var b strings.Builder
	prev := 0
	for i, c := range cases {
		for _, l := range lines[prev:c.outStart] {
			b.WriteString(l + "\n")
		}
		for _, l := range outs[i] {
			b.WriteString(l + "\n")
		}
		prev = c.outEnd
	}
	for _, l := range lines[prev:] {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ddEnv is the state a script works on.
type ddEnv struct {
	nodes  []placement.Node
	tables []placement.Table
	plan   *Plan
}

func (e *ddEnv) run(c *ddCase) (string, error) {
	switch c.cmd {
	case "nodes":
		var nodes []placement.Node
		for _, l := range c.input {
			f := strings.Fields(l)
			n := placement.Node{ID: placement.NodeID(f[0]), Weight: 1}
			if err := setNode(&n, f[1:]); err != nil {
				return "", err
			}
			nodes = append(nodes, n)
		}
		e.nodes = nodes
		return "", nil
	case "add-node", "set-node":
		if len(c.args) < 1 {
			return "", fmt.Errorf("%s: missing node ID", c.cmd)
		}
		id := placement.NodeID(c.args[0])
		i := slices.IndexFunc(e.nodes, func(n placement.Node) bool { return n.ID == id })
		if c.cmd == "add-node" {
			if i >= 0 {
				return "", fmt.Errorf("node %s exists", id)
			}
			e.nodes = append(e.nodes, placement.Node{ID: id, Weight: 1})
			i = len(e.nodes) - 1
		} else if i < 0 {
			return "", fmt.Errorf("no node %s", id)
		}
		return "", setNode(&e.nodes[i], c.args[1:])
	case "tables":
		tables, err := parseTables(c.input)
		if err != nil {
			return "", err
		}
		e.tables = tables
		return "", nil
	case "place":
		return e.place(c.args)
	case "rebalance", "rebalance-masters":
		return e.rebalance(c.cmd == "rebalance-masters", c.args)
	case "apply":
		if e.plan == nil {
			return "", errors.New("no plan")
		}
		for _, tb := range e.plan.Target {
			if i := slices.IndexFunc(e.tables, func(x placement.Table) bool { return x.ID == tb.ID }); i >= 0 {
				e.tables[i] = tb.Clone()
			}
		}
		e.plan = nil
		return e.show(), nil
	case "failover":
		if len(c.args) != 1 {
			return "", errors.New("failover: want one node ID")
		}
		return e.failover(placement.NodeID(c.args[0]))
	case "show":
		return e.show(), nil
	}
	return "", fmt.Errorf("unknown command %q", c.cmd)
}

// setNode applies "key=value" arguments to n.
func setNode(n *placement.Node, args []string) error {
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("node %s: %q is not key=value", n.ID, a)
		}
		switch k {
		case "zone":
			n.Labels.Zone = v
		case "rack":
			n.Labels.Rack = v
		case "host":
			n.Labels.Host = v
		case "weight":
			w, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("node %s: weight: %v", n.ID, err)
			}
			n.Weight = w
		case "state":
			s, err := parseState(v)
			if err != nil {
				return fmt.Errorf("node %s: %v", n.ID, err)
			}
			n.State = s
		default:
			return fmt.Errorf("node %s: unknown key %q", n.ID, k)
		}
	}
	return nil
}

func parseState(s string) (placement.NodeState, error) {
	for _, st := range []placement.NodeState{placement.NodeUp, placement.NodeDown, placement.NodeDraining} {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q", s)
}

// parseTables parses tables in the form show prints; the summary lines
// (spread, replicas, masters) are ignored.
func parseTables(lines []string) ([]placement.Table, error) {
	var tables []placement.Table
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 0 || f[0] == "spread:" || f[0] == "replicas:" || f[0] == "masters:":
		case !strings.HasPrefix(l, " "):
			tb := placement.Table{Name: f[0]}
			for _, a := range f[1:] {
				if err := setTable(&tb, a); err != nil {
					return nil, fmt.Errorf("table %s: %v", tb.Name, err)
				}
			}
			tables = append(tables, tb)
		case len(tables) == 0:
			return nil, fmt.Errorf("partition before any table: %q", l)
		default:
			tb := &tables[len(tables)-1]
			id, err := strconv.ParseUint(strings.TrimSuffix(f[0], ":"), 10, 32)
			if err != nil || !strings.HasSuffix(f[0], ":") {
				return nil, fmt.Errorf("table %s: bad partition line %q", tb.Name, l)
			}
			pt := placement.Partition{ID: placement.PartitionID(id)}
			for i, a := range f[1:] {
				switch {
				case strings.HasPrefix(a, "insync="):
					for _, n := range strings.Split(strings.TrimPrefix(a, "insync="), ",") {
						pt.InSync = append(pt.InSync, placement.NodeID(n))
					}
				case i == 0 && a == "-":
				case i == 0:
					pt.Master = placement.NodeID(a)
				default:
					pt.Slaves = append(pt.Slaves, placement.NodeID(a))
				}
			}
			tb.Partitions = append(tb.Partitions, pt)
		}
	}
	return tables, nil
}

func setTable(tb *placement.Table, arg string) error {
	k, v, ok := strings.Cut(arg, "=")
	if !ok {
		return fmt.Errorf("%q is not key=value", arg)
	}
	var err error
	switch k {
	case "id":
		var id uint64
		id, err = strconv.ParseUint(v, 10, 32)
		tb.ID = placement.TableID(id)
	case "replication":
		tb.Replication, err = strconv.Atoi(v)
	case "domain":
		tb.Domain, err = placement.ParseDomain(v)
	case "mode":
		tb.Mode, err = placement.ParseMode(v)
	default:
		err = fmt.Errorf("unknown key %q", k)
	}
	return err
}

func (e *ddEnv) place(args []string) (string, error) {
	if len(args) < 1 {
		return "", errors.New("place: missing table name")
	}
	spec := TableSpec{Name: args[0]}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return "", fmt.Errorf("place: %q is not key=value", a)
		}
		var err error
		switch k {
		case "id":
			var id uint64
			id, err = strconv.ParseUint(v, 10, 32)
			spec.ID = placement.TableID(id)
		case "partitions":
			spec.Partitions, err = strconv.Atoi(v)
		case "replication":
			spec.Replication, err = strconv.Atoi(v)
		case "domain":
			spec.Domain, err = placement.ParseDomain(v)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return "", fmt.Errorf("place: %s: %v", k, err)
		}
	}
	parts, rep, err := Place(e.nodes, e.tables, spec)
	if err != nil {
		return "", err
	}
	tb := placement.Table{ID: spec.ID, Name: spec.Name, Replication: spec.Replication, Domain: spec.Domain, Partitions: parts}
	e.tables = append(e.tables, tb)
	var b strings.Builder
	e.writeTable(&b, &tb)
	e.writeLoad(&b, []placement.Table{tb})
	b.WriteString("report: " + strings.ReplaceAll(rep.String(), "\n", "\n  "))
	return b.String(), nil
}

func (e *ddEnv) rebalance(masters bool, args []string) (string, error) {
	tables := e.tables
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "table=")
		if !ok {
			return "", fmt.Errorf("unknown argument %q", a)
		}
		i := slices.IndexFunc(e.tables, func(t placement.Table) bool { return t.Name == name })
		if i < 0 {
			return "", fmt.Errorf("no table %s", name)
		}
		tables = e.tables[i : i+1]
	}
	var err error
	if masters {
		e.plan, err = RebalanceMasters(e.nodes, tables)
	} else {
		e.plan, err = Rebalance(e.nodes, tables)
	}
	if err != nil {
		return "", err
	}
	names := map[placement.TableID]string{}
	for _, t := range tables {
		names[t.ID] = t.Name
	}
	var b strings.Builder
	if e.plan.Empty() {
		b.WriteString("moves: none\n")
	} else {
		b.WriteString("moves:\n")
	}
	for _, m := range e.plan.Moves {
		fmt.Fprintf(&b, "  %s/%d: %s", names[m.Table], m.Partition, m.Kind)
		switch m.Kind {
		case AddReplica:
			fmt.Fprintf(&b, " %s\n", m.To)
		case RemoveReplica:
			fmt.Fprintf(&b, " %s\n", m.From)
		default:
			from := string(m.From)
			if from == "" {
				from = "-"
			}
			fmt.Fprintf(&b, " %s -> %s\n", from, m.To)
		}
	}
	b.WriteString(e.plan.String())
	return b.String(), nil
}

func (e *ddEnv) failover(id placement.NodeID) (string, error) {
	i := slices.IndexFunc(e.nodes, func(n placement.Node) bool { return n.ID == id })
	if i < 0 {
		return "", fmt.Errorf("no node %s", id)
	}
	e.nodes[i].State = placement.NodeDown
	up := map[placement.NodeID]bool{}
	for _, n := range e.nodes {
		up[n.ID] = n.State != placement.NodeDown
	}
	var b strings.Builder
	for ti := range e.tables {
		tb := &e.tables[ti]
		for pi := range tb.Partitions {
			pt := &tb.Partitions[pi]
			if pt.Master != id {
				continue
			}
			var best placement.NodeID
			for _, s := range pt.Slaves {
				if up[s] && (best == "" || s < best) {
					best = s
				}
			}
			if best != "" {
				pt.Slaves = slices.DeleteFunc(pt.Slaves, func(n placement.NodeID) bool { return n == best })
			}
			pt.Slaves = append(pt.Slaves, pt.Master)
			pt.Master = best
			pt.InSync = nil
			to := string(best)
			if to == "" {
				to = "-"
			}
			fmt.Fprintf(&b, "%s/%d: master %s -> %s\n", tb.Name, pt.ID, id, to)
		}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func (e *ddEnv) show() string {
	var b strings.Builder
	for i := range e.tables {
		e.writeTable(&b, &e.tables[i])
	}
	e.writeLoad(&b, e.tables)
	return strings.TrimSuffix(b.String(), "\n")
}

func (e *ddEnv) writeTable(b *strings.Builder, tb *placement.Table) {
	fmt.Fprintf(b, "%s id=%d replication=%d domain=%s", tb.Name, tb.ID, tb.Replication, tb.Domain)
	if tb.Mode != placement.ModeAsync {
		fmt.Fprintf(b, " mode=%s", tb.Mode)
	}
	b.WriteByte('\n')
	for _, pt := range tb.Partitions {
		m := string(pt.Master)
		if m == "" {
			m = "-"
		}
		fmt.Fprintf(b, "  %d: %s", pt.ID, m)
		for _, s := range pt.Slaves {
			fmt.Fprintf(b, " %s", s)
		}
		if len(pt.InSync) > 0 {
			ids := make([]string, len(pt.InSync))
			for i, n := range pt.InSync {
				ids[i] = string(n)
			}
			fmt.Fprintf(b, " insync=%s", strings.Join(ids, ","))
		}
		b.WriteByte('\n')
	}
	e.writeSpread(b, tb)
}

// writeSpread prints the fewest distinct hosts (and racks and zones, when
// the topology has such labels) that any partition of tb spans.
func (e *ddEnv) writeSpread(b *strings.Builder, tb *placement.Table) {
	if len(tb.Partitions) == 0 {
		return
	}
	byID := map[placement.NodeID]placement.Node{}
	racks, zones := false, false
	for _, n := range e.nodes {
		byID[n.ID] = n
		racks = racks || n.Labels.Rack != ""
		zones = zones || n.Labels.Zone != ""
	}
	levels := []placement.Domain{placement.DomainHost}
	if racks {
		levels = append(levels, placement.DomainRack)
	}
	if zones {
		levels = append(levels, placement.DomainZone)
	}
	var parts []string
	for _, d := range levels {
		fewest := -1
		for _, pt := range tb.Partitions {
			seen := map[string]bool{}
			for _, id := range pt.Replicas() {
				n, ok := byID[id]
				if !ok {
					n = placement.Node{ID: id}
				}
				seen[keyAt(n, d)] = true
			}
			if fewest < 0 || len(seen) < fewest {
				fewest = len(seen)
			}
		}
		parts = append(parts, fmt.Sprintf("%d %ss", fewest, d))
	}
	fmt.Fprintf(b, "  spread: %s (fewest per partition)\n", strings.Join(parts, ", "))
}

// writeLoad prints the replicas and masters each node holds in tables: every
// node of the topology, then any unknown node holding replicas.
func (e *ddEnv) writeLoad(b *strings.Builder, tables []placement.Table) {
	reps := map[placement.NodeID]int{}
	mas := map[placement.NodeID]int{}
	var ids []placement.NodeID
	for _, n := range e.nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	known := len(ids)
	for _, tb := range tables {
		for _, pt := range tb.Partitions {
			for _, id := range pt.Replicas() {
				reps[id]++
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			if pt.Master != "" {
				mas[pt.Master]++
			}
		}
	}
	slices.Sort(ids[known:])
	var r, m strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&r, " %s=%d", id, reps[id])
		fmt.Fprintf(&m, " %s=%d", id, mas[id])
	}
	fmt.Fprintf(b, "replicas:%s\nmasters: %s\n", r.String(), m.String())
}
