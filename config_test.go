package zeppelin

import (
	"strings"
	"testing"
)

func TestValidateMemoryBudget(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.MemoryBudget = 1 << 20
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "MemoryBudget") {
		t.Errorf("a 1 MiB budget: %v, want an error naming MemoryBudget", err)
	}
	for _, b := range []int64{0, 24 << 20, 1 << 30} {
		cfg.MemoryBudget = b
		if err := cfg.Validate(); err != nil {
			t.Errorf("budget %d: %v", b, err)
		}
	}
}
