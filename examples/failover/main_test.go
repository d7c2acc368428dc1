package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster and crashes one")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-dir", dir, "-load", "500ms", "-after", "200ms", "-partitions", "4"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	for _, want := range []string{"crashed n", "kill n", "declared down", "promoted:", "writes resumed on all"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`acknowledged writes: (\d+) before the kill, (\d+) after`).FindStringSubmatch(got)
	if m == nil {
		t.Fatal("output lacks the acknowledged-write counts")
	}
	if before, _ := strconv.Atoi(m[1]); before == 0 {
		t.Error("no write acknowledged before the kill")
	}
	if after, _ := strconv.Atoi(m[2]); after == 0 {
		t.Error("no write acknowledged after the kill")
	}
	if !regexp.MustCompile(`async table: read back \d+ of \d+ acknowledged writes`).MatchString(got) {
		t.Error("output lacks the async table's read-back")
	}
	// A sync table loses no acknowledged write when one replica of three
	// crashes.
	if !regexp.MustCompile(`sync  table: read back (\d+) of (\d+) acknowledged writes \(none lost\)`).MatchString(got) {
		t.Error("the sync table did not read back every acknowledged write")
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("%s after the run: %v entries, %v; want it empty", dir, len(ents), err)
	}
}
