package zeppelin_test

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/zeppelin-kv/zeppelin"

// deps returns the packages pkg depends on (transitively, test files
// excluded).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestDependencyDirection enforces DESIGN.md §2: imports point downward,
// the client never pulls in the storage engine or the Raft library, and
// only meta imports dragonboat.
func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	forbidden := map[string][]string{
		"client":             {"github.com/dgraph-io/badger", "github.com/lni/dragonboat", mod + "/meta", mod + "/node", mod + "/partition", mod + "/binlog"},
		"placement":          {mod + "/", "github.com/dgraph-io/badger", "github.com/lni/dragonboat", "github.com/vmihailenco/msgpack"},
		"binlog":             {mod + "/", "github.com/lni/dragonboat"},
		"internal/transport": {mod + "/"},
		"internal/wire":      {mod + "/internal/rpc", mod + "/internal/transport", mod + "/client", mod + "/node", mod + "/meta", mod + "/partition"},
		"partition":          {"github.com/lni/dragonboat", mod + "/node", mod + "/meta", mod + "/client", mod + "/internal/rpc"},
		"node":               {"github.com/lni/dragonboat", mod + "/meta", mod + "/client"},
		"meta":               {"github.com/dgraph-io/badger", mod + "/node", mod + "/partition", mod + "/client"},
		"resp":               {"github.com/dgraph-io/badger", "github.com/lni/dragonboat", mod + "/meta", mod + "/node", mod + "/partition"},
	}
	for pkg, bad := range forbidden {
		for _, d := range deps(t, mod+"/"+pkg) {
			if d == mod+"/"+pkg {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s depends on %s (forbidden: %s)", pkg, d, b)
				}
			}
		}
	}
}
