package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// TestFromWireSaysItOnce checks that a server message which says what its
// sentinel says is not preceded by the sentinel's text, and still matches
// the sentinel.
func TestFromWireSaysItOnce(t *testing.T) {
	cases := []struct {
		we       *wire.Error
		sentinel error
		want     string
	}{
		{wire.Errorf(wire.CodeTableExists, `table "users" already exists`), ErrTableExists, `zeppelin: table "users" already exists`},
		{wire.Errorf(wire.CodeTableNotFound, `table "nosuch" does not exist`), ErrTableNotFound, `zeppelin: table "nosuch" does not exist`},
		{&wire.Error{Code: wire.CodeTableNotFound}, ErrTableNotFound, ErrTableNotFound.Error()},
		{wire.Errorf(wire.CodeInvalid, "partitions must be within 1..65536, got 0"), ErrInvalid, "zeppelin: invalid argument: partitions must be within 1..65536, got 0"},
	}
	for _, c := range cases {
		err := fromWire(c.we)
		if !errors.Is(err, c.sentinel) {
			t.Errorf("fromWire(%v) = %v, want it to match %v", c.we, err, c.sentinel)
		}
		if got := err.Error(); got != c.want {
			t.Errorf("fromWire(%v) reads %q, want %q", c.we, got, c.want)
		}
		if strings.Count(err.Error(), "exist") > 1 {
			t.Errorf("fromWire(%v) says it twice: %q", c.we, err)
		}
	}
}
