package run

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestGoThenStopAndWait(t *testing.T) {
	var g Group
	var ran atomic.Int32
	release := make(chan struct{})
	for range 3 {
		if !g.Go(func() {
			<-release
			ran.Add(1)
		}) {
			t.Fatal("Go before Stop refused")
		}
	}
	if !g.Stop() {
		t.Fatal("first Stop reported false")
	}
	if g.Stop() {
		t.Fatal("second Stop reported true")
	}
	if !g.Stopped() {
		t.Fatal("Stopped after Stop = false")
	}
	waited := make(chan struct{})
	go func() {
		g.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait returned while goroutines were running")
	case <-time.After(10 * time.Millisecond):
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
	if got := ran.Load(); got != 3 {
		t.Fatalf("goroutines run = %d, want 3", got)
	}
}

func TestGoAfterStopStartsNothing(t *testing.T) {
	var g Group
	g.Stop()
	if g.Go(func() { t.Error("goroutine started after Stop") }) {
		t.Fatal("Go after Stop = true, want false")
	}
	g.Wait()
}

func TestGoFromAGroupGoroutineAfterStop(t *testing.T) {
	// A goroutine of the group that starts another once shutdown has
	// begun is refused, so Wait never waits for work started after Stop.
	var g Group
	stopped := make(chan struct{})
	var started atomic.Bool
	g.Go(func() {
		<-stopped
		started.Store(g.Go(func() {}))
	})
	g.Stop()
	close(stopped)
	g.Wait()
	if started.Load() {
		t.Fatal("a goroutine started another after Stop")
	}
}

func TestDone(t *testing.T) {
	var g Group
	done := g.Done()
	select {
	case <-done:
		t.Fatal("Done closed before Stop")
	default:
	}
	g.Stop()
	select {
	case <-done:
	default:
		t.Fatal("Done not closed by Stop")
	}
	if g.Done() != done {
		t.Fatal("Done returned another channel after Stop")
	}
}

func TestContext(t *testing.T) {
	tests := []struct {
		name string
		end  func(g *Group, cancel context.CancelFunc)
	}{
		{"stop", func(g *Group, _ context.CancelFunc) { g.Stop() }},
		{"cancel", func(_ *Group, cancel context.CancelFunc) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Group
			ctx, cancel := g.Context(context.Background())
			defer cancel()
			if err := ctx.Err(); err != nil {
				t.Fatalf("fresh context: %v", err)
			}
			tt.end(&g, cancel)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("context not cancelled")
			}
			g.Stop()
			g.Wait() // the watcher has returned
		})
	}
}

func TestContextAfterStop(t *testing.T) {
	var g Group
	g.Stop()
	ctx, cancel := g.Context(context.Background())
	defer cancel()
	if ctx.Err() == nil {
		t.Fatal("context derived after Stop is not cancelled")
	}
}

func TestContextKeepsParentValues(t *testing.T) {
	type key struct{}
	var g Group
	defer g.Wait()
	defer g.Stop()
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx, cancel := g.Context(parent)
	defer cancel()
	if got := ctx.Value(key{}); got != "v" {
		t.Fatalf("value = %v, want v", got)
	}
}
