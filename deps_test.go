package zeppelin_test

import (
	"os/exec"
	"slices"
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
// the client never pulls in the storage engine or the Raft library, only
// meta imports dragonboat, and only meta imports the placement planner.
func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	forbidden := map[string][]string{
		"client":             {"github.com/dgraph-io/badger", "github.com/lni/dragonboat", mod + "/meta", mod + "/node", mod + "/partition", mod + "/binlog"},
		"placement":          {mod + "/", "github.com/dgraph-io/badger", "github.com/lni/dragonboat", "github.com/vmihailenco/msgpack"},
		"internal/planner":   {"github.com/dgraph-io/badger", "github.com/lni/dragonboat", "github.com/vmihailenco/msgpack"},
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

	// The pure layer: the standard library, the map vocabulary and the
	// key hash, nothing else.
	only := map[string][]string{
		"placement":        {"github.com/cespare/xxhash/v2"},
		"internal/planner": {mod + "/placement", "github.com/cespare/xxhash/v2"},
		// The goroutine and polling helpers sit below everything.
		"internal/run":    {},
		"internal/poll":   {},
		"internal/fsutil": {},
	}
	for pkg, ok := range only {
		for _, d := range nonStandardDeps(t, mod+"/"+pkg) {
			if d != mod+"/"+pkg && !slices.Contains(ok, d) {
				t.Errorf("%s depends on %s (allowed: the standard library and %s)", pkg, d, strings.Join(ok, ", "))
			}
		}
	}

	// The planner serves the meta group alone: no other package imports
	// it directly (test files may).
	for pkg, imports := range directImports(t, "./...") {
		if pkg != mod+"/meta" && slices.Contains(imports, mod+"/internal/planner") {
			t.Errorf("%s imports internal/planner (only meta may)", pkg)
		}
	}
}

// nonStandardDeps returns the packages outside the standard library that pkg
// depends on (transitively, test files excluded).
func nonStandardDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// directImports returns, for every package matched by pattern, the packages
// its non-test files import.
func directImports(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pattern).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	m := make(map[string][]string)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	return m
}
