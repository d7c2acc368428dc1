package main

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
)

// TestOpErrorSaysItOnce checks how a failed operation reads: each thing
// said once, and the error still classified.
func TestOpErrorSaysItOnce(t *testing.T) {
	cases := []struct {
		what string
		err  error
		want string
		is   error
	}{
		{"migrate table t partition 0 from n1 to n9", fmt.Errorf("%w: migrate: unknown node n9", client.ErrUnknownName),
			"migrate table t partition 0 from n1 to n9: unknown name: unknown node n9", client.ErrUnknownName},
		{"create table big", fmt.Errorf("%w: create table: partitions must be within 1..65536, got 0", client.ErrInvalid),
			"create table big: invalid argument: partitions must be within 1..65536, got 0", client.ErrInvalid},
		{"cancel migration 99", errors.New("zeppelin: cancel: no migration 99"), "cancel migration 99: no migration 99", nil},
		{"remove meta member 9", fmt.Errorf("%w: %w", client.ErrMetaMemberNotFound, errors.New("remove member 9: not a member of the meta group")),
			"remove meta member 9: not a member of the meta group", client.ErrMetaMemberNotFound},
		{`set t "k"`, fmt.Errorf("%w: %w", client.ErrAmbiguous, errors.New("outcome unknown: n1 stopped mastering table 1 partition 0")),
			`set t "k": outcome unknown: n1 stopped mastering table 1 partition 0`, client.ErrAmbiguous},
		// A message that merely starts like the operation is left alone.
		{"remove node n1", fmt.Errorf("%w: node n1 still holds 2 replicas: drain it first", client.ErrInvalid),
			"remove node n1: invalid argument: node n1 still holds 2 replicas: drain it first", client.ErrInvalid},
		{"get t \"k\"", fmt.Errorf("%w: t", client.ErrTableNotFound), `get t "k": table not found: t`, client.ErrTableNotFound},
	}
	for _, c := range cases {
		err := opError{what: c.what, err: c.err}
		if got := err.Error(); got != c.want {
			t.Errorf("opError{%q, %q} reads\n%q, want\n%q", c.what, c.err, got, c.want)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("opError{%q, %q} is not %v", c.what, c.err, c.is)
		}
	}
}

func TestNamesOp(t *testing.T) {
	for _, c := range []struct {
		what, part string
		want       bool
	}{
		{"migrate table t partition 0 from n1 to n2", "migrate", true},
		{"create table t", "create table", true},
		{"remove meta member 9", "remove member 9", true},
		{"remove meta member 9", "remove member 8", false},
		{"remove node n1", "node n1 still holds 2 replicas", false},
		{"create table t", "planner", false},
		{"", "migrate", false},
	} {
		if got := namesOp(c.what, c.part); got != c.want {
			t.Errorf("namesOp(%q, %q) = %v, want %v", c.what, c.part, got, c.want)
		}
	}
}

// TestReachErrorLines checks that an unreachable cluster reads as the
// probes' lines alone and is still ErrNoMeta.
func TestReachErrorLines(t *testing.T) {
	err := reachError{why: errors.Join(errors.New("cannot connect to a:1: connection refused"), errors.New("b:2 answered like an HTTP server")),
		err: fmt.Errorf("%w: no seed led to a meta member", client.ErrNoMeta)}
	if got := strings.Join(problemLines(err), "|"); got != "cannot connect to a:1: connection refused|b:2 answered like an HTTP server" {
		t.Errorf("lines %q", got)
	}
	if !errors.Is(err, client.ErrNoMeta) {
		t.Errorf("%v is not ErrNoMeta", err)
	}
}

func TestBuildVersion(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/zeppelin-kv/zeppelin", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "f49e08ff99ee336200239d9ff94c26a0786ec347"},
			{Key: "vcs.time", Value: "2026-12-01T23:10:04Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	v := buildVersion(info, true)
	if v.Version != "(devel)" || v.Revision != "f49e08ff99ee336200239d9ff94c26a0786ec347" || !v.Modified || v.Go != "go1.26.8" {
		t.Errorf("buildVersion: %+v", v)
	}
	want := "zeppelin (devel) (revision f49e08ff99ee, 2026-12-01T23:10:04Z, modified) go1.26.8 " + v.Platform
	if got := v.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	info.Main.Version, info.Settings = "v1.2.0", nil
	if got := buildVersion(info, true).String(); got != "zeppelin v1.2.0 go1.26.8 "+v.Platform {
		t.Errorf("release: got %q", got)
	}
	if got := buildVersion(nil, false); got.Version != "unknown" || got.Go == "" {
		t.Errorf("without build information: %+v", got)
	}
}

func TestShownAndParseTTL(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "two words": "two words", "": `""`, "(nil)": `"(nil)"`, " pad": `" pad"`,
		"a\tb": `"a\tb"`, "line\nbreak": `"line\nbreak"`, "\xff": `"\xff"`, "naïve": "naïve", `"q"`: `"\"q\""`,
	} {
		if got := shown([]byte(in)); got != want {
			t.Errorf("shown(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]time.Duration{"90": 90 * time.Second, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "0": 0, "-5s": -5 * time.Second} {
		if got, err := parseTTL(in); err != nil || got != want {
			t.Errorf("parseTTL(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"soon", "1.5", "99999999999999999"} {
		if _, err := parseTTL(in); err == nil {
			t.Errorf("parseTTL(%q) succeeded", in)
		}
	}
}

func TestBenchProgressLines(t *testing.T) {
	var plain, tty strings.Builder
	p := benchProgress{w: &plain, test: "set", total: 1000}
	p.line(2*time.Second, 500, 0)
	p.line(3*time.Second, 900, 3)
	if got, want := plain.String(), "bench set: 500/1000 requests, 250 ops/s so far (2.0s)\nbench set: 900/1000 requests, 300 ops/s so far, 3 failed (3.0s)\n"; got != want {
		t.Errorf("plain progress:\n%q, want\n%q", got, want)
	}
	q := benchProgress{w: &tty, tty: true, test: "get", total: 10}
	q.line(time.Second, 5, 0)
	q.line(2*time.Second, 10, 0)
	if got := tty.String(); strings.Count(got, "\r") != 2 || strings.Contains(got, "\n") {
		t.Errorf("terminal progress %q: want two redraws of one line", got)
	}
}
