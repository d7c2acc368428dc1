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
		t.Skip("starts a five-server cluster")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-dir", dir, "-keys", "2000", "-value-size", "256", "-partitions", "6"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	for _, want := range []string{"added data nodes n4 and n5", "replica moves queued", "masters balanced", "all 2000 keys read back through n5"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`all (\d+) moves done`).FindStringSubmatch(got)
	if m == nil {
		t.Fatal("output does not report the moves done")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Error("the rebalance moved nothing")
	}
	if !regexp.MustCompile(`moves done \d+/\d+`).MatchString(got) {
		t.Error("output lacks the rebalance's progress")
	}

	// After the rebalance the new nodes hold replicas and masters: 18
	// replicas and 6 masters over 5 nodes.
	_, after, ok := strings.Cut(got, "distribution after the rebalance")
	if !ok {
		t.Fatal("output lacks the distribution after the rebalance")
	}
	row := regexp.MustCompile(`(?m)^  (n\d)\s+\S+\s+(\d+)\s+(\d+)$`)
	rows := row.FindAllStringSubmatch(after, -1)
	if len(rows) != 5 {
		t.Fatalf("distribution after the rebalance lists %d nodes, want 5", len(rows))
	}
	replicas := 0
	for _, r := range rows {
		reps, _ := strconv.Atoi(r[2])
		mas, _ := strconv.Atoi(r[3])
		replicas += reps
		if reps < 3 || reps > 4 || mas < 1 || mas > 2 {
			t.Errorf("%s holds %d replicas and %d masters, want 3 or 4 and 1 or 2", r[1], reps, mas)
		}
	}
	if replicas != 18 {
		t.Errorf("%d replicas in all, want 18", replicas)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("%s after the run: %v entries, %v; want it empty", dir, len(ents), err)
	}
}
