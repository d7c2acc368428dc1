package meta

import (
	"testing"
	"time"
)

func TestAutoScheduleBoundsRetriesButNotPostponements(t *testing.T) {
	var a autoSchedule
	now := time.Unix(1000, 0)
	if a.due(now) {
		t.Fatal("due with nothing scheduled")
	}
	a.schedule(now)
	if !a.due(now) {
		t.Fatal("not due at the scheduled time")
	}
	if a.due(now) {
		t.Fatal("due again while running")
	}
	// Postponed runs (moves under way) never use up the retries.
	for i := range 3 * maxAutoAttempts {
		a.postpone(now.Add(time.Second))
		a.finish()
		if a.due(now) {
			t.Fatalf("postponement %d: due before the postponed time", i)
		}
		if !a.due(now.Add(time.Second)) {
			t.Fatalf("postponement %d: not due at the postponed time", i)
		}
	}
	// Failed runs do, after maxAutoAttempts in all.
	runs := 1
	for {
		a.retry(now.Add(time.Second))
		a.finish()
		if !a.due(now.Add(time.Second)) {
			break
		}
		runs++
		if runs > maxAutoAttempts {
			t.Fatalf("%d runs after one trigger, want at most %d", runs, maxAutoAttempts)
		}
	}
	if runs != maxAutoAttempts {
		t.Fatalf("%d runs after one trigger, want %d", runs, maxAutoAttempts)
	}
}
