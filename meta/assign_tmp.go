package meta

import "github.com/zeppelin-kv/zeppelin/placement"

// place is replaced by the placement package's algorithm.
func place(nodes []placement.Node, _ []placement.Table, parts, repl int, _ placement.Domain) ([]placement.Partition, []string, error) {
	out := make([]placement.Partition, parts)
	for i := range out {
		out[i].Master = nodes[i%len(nodes)].ID
		for r := 1; r < repl; r++ {
			out[i].Slaves = append(out[i].Slaves, nodes[(i+r)%len(nodes)].ID)
		}
	}
	return out, nil, nil
}
