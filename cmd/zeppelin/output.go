package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The JSON views of the admin commands. They spell states and modes as
// words and are stable for scripts.

// tableJSON describes one table.
type tableJSON struct {
	Name           string `json:"name"`
	ID             uint32 `json:"id"`
	PartitionCount int    `json:"partition_count"`
	Replication    int    `json:"replication"`
	Mode           string `json:"mode"`
	Fenced         bool   `json:"fenced"`
	MinInSync      int    `json:"min_in_sync,omitempty"`
	Domain         string `json:"domain"`
}

func tableView(t *placement.Table) tableJSON {
	return tableJSON{
		Name: t.Name, ID: uint32(t.ID), PartitionCount: len(t.Partitions), Replication: t.Replication,
		Mode: t.Mode.String(), Fenced: t.Fenced, MinInSync: t.MinInSync, Domain: t.Domain.Effective().String(),
	}
}

// nodeJSON describes one data node.
type nodeJSON struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	State  string `json:"state"`
	Zone   string `json:"zone,omitempty"`
	Rack   string `json:"rack,omitempty"`
	Host   string `json:"host,omitempty"`
	Weight int    `json:"weight"`
	// HeartbeatAgeMs is the time since the meta leader last heard from
	// the node; -1 when it has not since it became leader (status only).
	HeartbeatAgeMs *int64 `json:"heartbeat_age_ms,omitempty"`
	Masters        int    `json:"masters"`
	Replicas       int    `json:"replicas"`
}

func nodeView(n placement.Node, m *placement.Map) nodeJSON {
	v := nodeJSON{
		ID: string(n.ID), Addr: n.Addr, State: n.PlacementState().String(),
		Zone: n.Labels.Zone, Rack: n.Labels.Rack, Host: n.Labels.Host, Weight: n.Weight,
	}
	if m != nil {
		for _, t := range m.Tables {
			for _, p := range t.Partitions {
				if p.Master == n.ID {
					v.Masters++
				}
				if p.HasReplica(n.ID) {
					v.Replicas++
				}
			}
		}
	}
	return v
}

// memberJSON describes one meta group member.
type memberJSON struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	Leader   bool   `json:"leader"`
}

// replicaJSON is one replica's report, from its node's last heartbeat.
type replicaJSON struct {
	Node       string `json:"node"`
	Role       string `json:"role"`
	State      string `json:"state"`
	Gen        uint64 `json:"gen"`
	Seq        uint64 `json:"seq"`
	LagRecords uint64 `json:"lag_records"`
	LagMs      int64  `json:"lag_ms"`
	Incomplete bool   `json:"incomplete,omitempty"`
	FullSyncs  uint64 `json:"full_syncs"`
}

// partitionJSON is one partition: its assignment in the map and its
// replicas' reports.
type partitionJSON struct {
	ID       uint32        `json:"id"`
	Master   string        `json:"master"`
	Slaves   []string      `json:"slaves"`
	InSync   []string      `json:"in_sync,omitempty"`
	Gen      uint64        `json:"gen"`
	State    string        `json:"state"`
	Replicas []replicaJSON `json:"replicas"`
}

// tableStatusJSON is a table with its partitions.
type tableStatusJSON struct {
	tableJSON
	Partitions []partitionJSON `json:"partitions"`
}

// statusJSON is the output of "zeppelin status --json".
type statusJSON struct {
	Epoch      uint64            `json:"epoch"`
	Term       uint64            `json:"term"`
	LeaderID   uint64            `json:"leader_id"`
	LeaderAddr string            `json:"leader_addr"`
	Members    []memberJSON      `json:"members"`
	Nodes      []nodeJSON        `json:"nodes"`
	Tables     []tableStatusJSON `json:"tables"`
}

// statusView turns a status reply into its JSON view; table, when not
// empty, keeps only that table.
func statusView(st *client.Status, table string) statusJSON {
	v := statusJSON{Epoch: uint64(st.Epoch), Term: st.Term, LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr}
	for _, m := range st.Members {
		v.Members = append(v.Members, memberJSON{ID: m.ID, RaftAddr: m.RaftAddr, RPCAddr: m.RPCAddr, Leader: m.Leader})
	}
	m := st.Map
	if m == nil {
		m = &placement.Map{}
	}
	type replicaKey struct {
		table placement.TableID
		part  placement.PartitionID
		node  placement.NodeID
	}
	reports := make(map[replicaKey]client.ReplicaStatus)
	seen := make(map[placement.NodeID]bool)
	for _, ns := range st.Nodes {
		nv := nodeView(ns.Node, m)
		age := ns.HeartbeatAgeMs
		nv.HeartbeatAgeMs = &age
		v.Nodes = append(v.Nodes, nv)
		seen[ns.Node.ID] = true
		for _, r := range ns.Replicas {
			reports[replicaKey{r.Table, r.Partition, ns.Node.ID}] = r
		}
	}
	for _, n := range m.Nodes {
		if !seen[n.ID] {
			v.Nodes = append(v.Nodes, nodeView(n, m))
		}
	}
	for i := range m.Tables {
		t := &m.Tables[i]
		if table != "" && t.Name != table {
			continue
		}
		tv := tableStatusJSON{tableJSON: tableView(t), Partitions: []partitionJSON{}}
		for _, p := range t.Partitions {
			pv := partitionJSON{
				ID: uint32(p.ID), Master: string(p.Master), Slaves: ids(p.Slaves), InSync: ids(p.InSync),
				Gen: p.Gen, State: p.State.String(), Replicas: []replicaJSON{},
			}
			for _, n := range p.Replicas() {
				r, ok := reports[replicaKey{t.ID, p.ID, n}]
				if !ok {
					pv.Replicas = append(pv.Replicas, replicaJSON{Node: string(n), Role: "unreported", State: "unknown"})
					continue
				}
				pv.Replicas = append(pv.Replicas, replicaJSON{
					Node: string(n), Role: r.Role.String(), State: r.State.String(), Gen: r.Gen, Seq: r.Seq,
					LagRecords: r.LagRecords, LagMs: r.LagMs, Incomplete: r.Incomplete, FullSyncs: r.FullSyncs,
				})
			}
			tv.Partitions = append(tv.Partitions, pv)
		}
		v.Tables = append(v.Tables, tv)
	}
	return v
}

func ids(ns []placement.NodeID) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n)
	}
	return out
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTab returns a tabwriter for aligned columns.
func newTab(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func writeTables(w io.Writer, tables []tableJSON) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "NAME\tID\tPARTITIONS\tREPLICATION\tMODE\tFENCED\tDOMAIN")
	for _, t := range tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%v\t%s\n", t.Name, t.ID, t.PartitionCount, t.Replication, t.Mode, t.Fenced, t.Domain)
	}
	return tw.Flush()
}

func writeNodes(w io.Writer, nodes []nodeJSON) error {
	tw := newTab(w)
	withAge := len(nodes) > 0 && nodes[0].HeartbeatAgeMs != nil
	if withAge {
		fmt.Fprintln(tw, "ID\tADDR\tSTATE\tHEARTBEAT\tZONE\tRACK\tHOST\tWEIGHT\tMASTERS\tREPLICAS")
	} else {
		fmt.Fprintln(tw, "ID\tADDR\tSTATE\tZONE\tRACK\tHOST\tWEIGHT\tMASTERS\tREPLICAS")
	}
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t", n.ID, n.Addr, n.State)
		if withAge {
			age := "-"
			if n.HeartbeatAgeMs != nil && *n.HeartbeatAgeMs >= 0 {
				age = (time.Duration(*n.HeartbeatAgeMs) * time.Millisecond).String() + " ago"
			} else if n.HeartbeatAgeMs != nil {
				age = "not yet"
			}
			fmt.Fprintf(tw, "%s\t", age)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", dash(n.Zone), dash(n.Rack), dash(n.Host), n.Weight, n.Masters, n.Replicas)
	}
	return tw.Flush()
}

func writeStatus(w io.Writer, v statusJSON) error {
	fmt.Fprintf(w, "epoch %d, meta leader %d at %s (term %d)\n\n", v.Epoch, v.LeaderID, dash(v.LeaderAddr), v.Term)
	tw := newTab(w)
	fmt.Fprintln(tw, "META\tRAFT\tRPC\tLEADER")
	for _, m := range v.Members {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\n", m.ID, dash(m.RaftAddr), dash(m.RPCAddr), m.Leader)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := writeNodes(w, v.Nodes); err != nil {
		return err
	}
	tables := make([]tableJSON, len(v.Tables))
	for i, t := range v.Tables {
		tables[i] = t.tableJSON
	}
	fmt.Fprintln(w)
	if err := writeTables(w, tables); err != nil {
		return err
	}
	for _, t := range v.Tables {
		fmt.Fprintf(w, "\ntable %s\n", t.Name)
		tw := newTab(w)
		fmt.Fprintln(tw, "PART\tMASTER\tSLAVES\tSTATE\tGEN\t(GEN, SEQ)\tLAG (records/ms per slave)")
		for _, p := range t.Partitions {
			pos, lags := "-", []string{}
			for _, r := range p.Replicas {
				if r.Node == p.Master {
					if r.Role != "unreported" {
						pos = fmt.Sprintf("(%d, %d)", r.Gen, r.Seq)
					}
					continue
				}
				switch {
				case r.Role == "unreported":
					lags = append(lags, r.Node+" ?")
				case r.Incomplete || r.State != "streaming":
					lags = append(lags, fmt.Sprintf("%s %s", r.Node, r.State))
				default:
					lags = append(lags, fmt.Sprintf("%s %d/%dms", r.Node, r.LagRecords, r.LagMs))
				}
			}
			state := p.State
			if len(p.InSync) > 0 {
				state += " insync=" + strings.Join(p.InSync, ",")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, dash(p.Master), dash(strings.Join(p.Slaves, ",")), state, p.Gen, pos, dash(strings.Join(lags, "  ")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
