//go:build chaos

package zeppelin_test

import (
	"fmt"
	"testing"
	"time"
)

// TestLinearizabilityLong runs ZEPPELIN_LIN_RUNS nemesis histories (default
// 50) of ZEPPELIN_LIN_FAULTS faults each (default 8), each on a fresh
// cluster, from seed ZEPPELIN_LIN_SEED on, and reports the totals:
//
//	go test -tags chaos -run TestLinearizabilityLong -timeout 3h .
func TestLinearizabilityLong(t *testing.T) {
	runs := int(envInt("ZEPPELIN_LIN_RUNS", 50))
	faults := int(envInt("ZEPPELIN_LIN_FAULTS", 8))
	seed := envInt("ZEPPELIN_LIN_SEED", uint64(time.Now().UnixNano()))
	var total linResult
	total.faults = map[string]int{}
	violations := 0
	for r := range runs {
		s := seed + uint64(r)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			res := runLinearizability(t, linConfig{seed: s, faults: faults, clients: 5, keys: 5, table: "lin"})
			total.ops += res.ops
			total.acked += res.acked
			total.unknown += res.unknown
			total.failed += res.failed
			total.lost += res.lost
			total.writeOnce += res.writeOnce
			for k, n := range res.faults {
				total.faults[k] += n
			}
			if !res.ok {
				violations++
			}
		})
	}
	t.Logf("linearizability: %d runs from seed %d, %d faults each: %d operations checked (%d acknowledged, %d unknown; %d refused), %d violations; %d acknowledged write-once keys, %d lost",
		runs, seed, faults, total.ops, total.acked, total.unknown, total.failed, violations, total.writeOnce, total.lost)
	for _, nm := range linNemeses {
		t.Logf("linearizability:   %-36s %d×", nm.name, total.faults[nm.name])
	}
}
