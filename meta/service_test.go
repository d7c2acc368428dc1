package meta

import (
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestValidateCreateTableNames(t *testing.T) {
	valid := []string{"1", "default", "t", "users", "t07", "rf3-sync", "Orders_2024", "a.b.c", "_private", "9lives", strings.Repeat("x", 64)}
	for _, name := range valid {
		req := &wire.CreateTableRequest{Name: name, Partitions: 4, Replication: 3}
		if err := validateCreate(req); err != nil {
			t.Errorf("name %q: %v, want it valid", name, err)
		}
	}
	invalid := []struct{ name, why string }{
		{"", "empty"},
		{strings.Repeat("x", 65), "longer than 64 characters"},
		{"-users", `starts with '-'`},
		{".", `starts with '.'`},
		{"..", `starts with '.'`},
		{"my table", `' ' is not allowed`},
		{"a/b", `'/' is not allowed`},
		{"{tag}", `'{' is not allowed`},
		{"naïve", `'ï' is not allowed`},
		{"tab\tle", `'\t' is not allowed`},
	}
	for _, c := range invalid {
		req := &wire.CreateTableRequest{Name: c.name, Partitions: 4, Replication: 3}
		err := validateCreate(req)
		if wire.CodeOf(err) != wire.CodeInvalid || !strings.Contains(err.Error(), "invalid table name") || !strings.Contains(err.Error(), c.why) {
			t.Errorf("name %q: %v, want an invalid-argument error saying %q", c.name, err, c.why)
		}
	}
}
