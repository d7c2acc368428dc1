package main

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/partition"
)

// TestMemoryLimit checks serve's soft memory limit: the budget plus 96 MiB
// for the rest of the server (224 MiB with the default budget).
func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct{ budget, want int64 }{
		{partition.DefaultMemoryBudget, 224 << 20},
		{64 << 20, 160 << 20},
		{1 << 30, 1<<30 + 96<<20},
	} {
		if got := memoryLimit(tc.budget); got != tc.want {
			t.Errorf("budget %d: limit %d, want %d", tc.budget, got, tc.want)
		}
	}
}
