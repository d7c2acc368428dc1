package planner

import (
	"fmt"
	"strings"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// Report lists what a placement could not do as asked. A zero Report means
// every table got its failure-domain rule and every node its share.
type Report struct {
	// Violations lists the tables whose failure-domain rule the topology
	// cannot satisfy, in table order.
	Violations []Violation `json:"violations,omitempty"`
	// Warnings describes anything else that fell short, such as masters
	// that could not be balanced because of where the replicas are.
	Warnings []string `json:"warnings,omitempty"`
}

// OK reports whether r has neither violations nor warnings.
func (r Report) OK() bool { return len(r.Violations) == 0 && len(r.Warnings) == 0 }

// String returns one line per violation and warning, or "ok".
func (r Report) String() string {
	if r.OK() {
		return "ok"
	}
	var b strings.Builder
	for _, v := range r.Violations {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	for _, w := range r.Warnings {
		b.WriteString("warning: ")
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Violation records that a table's replicas could not be kept in distinct
// domains at the level its rule asks for, because the topology has fewer
// eligible domains at that level than the table has replicas. Placement
// then keeps the replicas apart at Applied, the highest level below Wanted
// with enough domains, and spreads them across the Wanted domains as well as
// it can without guaranteeing it.
type Violation struct {
	Table       placement.TableID `json:"table"`
	Name        string            `json:"name,omitempty"`
	Replication int               `json:"replication"`
	// Wanted is the level the table's rule asks for (never DomainDefault).
	Wanted placement.Domain `json:"wanted"`
	// Domains is the number of eligible domains at Wanted.
	Domains int `json:"domains"`
	// Applied is the level at which replicas are actually kept apart.
	Applied placement.Domain `json:"applied"`
	// Partitions is the number of partitions of the result that have two
	// or more replicas in one Wanted domain.
	Partitions int `json:"partitions"`
}

// String describes the violation in one line.
func (v Violation) String() string {
	name := fmt.Sprintf("table %d", v.Table)
	if v.Name != "" {
		name += fmt.Sprintf(" (%q)", v.Name)
	}
	return fmt.Sprintf("%s: wants %d replicas in distinct %ss but only %d %ss are eligible; replicas kept on distinct %ss instead, %d partitions share a %s",
		name, v.Replication, v.Wanted, v.Domains, v.Wanted, v.Applied, v.Partitions, v.Wanted)
}

// violation returns the violation of a table placed at level instead of
// want, counting the partitions of reps that share a domain at want, or
// nil when level is want.
func (t *topology) violation(id placement.TableID, name string, want placement.Domain, level placement.Domain, r int, reps [][]int32) *Violation {
	want = want.Effective()
	if level == want {
		return nil
	}
	v := &Violation{Table: id, Name: name, Replication: r, Wanted: want, Domains: t.domains(want), Applied: level}
	dep := depthOf(want)
	for _, rs := range reps {
	scan:
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if t.anc[rs[i]][dep] == t.anc[rs[j]][dep] {
					v.Partitions++
					break scan
				}
			}
		}
	}
	return v
}

// masterWarnings describes the eligible nodes of one table whose master
// count fell outside the floor and the ceiling of their share, and the
// partitions left without an eligible master.
func (ms *masterSet) warnings(id placement.TableID, name string) []string {
	var out []string
	label := fmt.Sprintf("table %d", id)
	if name != "" {
		label += fmt.Sprintf(" (%q)", name)
	}
	off := 0
	for _, n := range ms.t.eligible {
		if ms.count[n] < ms.lo[n] || ms.count[n] > ms.hi[n] {
			off++
		}
	}
	if off > 0 {
		out = append(out, fmt.Sprintf("%s: the replica layout leaves %d nodes mastering more or fewer partitions than their share allows", label, off))
	}
	orphans := 0
	for p, m := range ms.master {
		if len(ms.reps[p]) == 0 || (m >= 0 && !ms.t.up[m]) {
			orphans++
		}
	}
	if orphans > 0 {
		out = append(out, fmt.Sprintf("%s: %d partitions have no replica on an eligible node to be master", label, orphans))
	}
	return out
}
