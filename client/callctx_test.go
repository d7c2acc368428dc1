package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestCallCtxUnarmed(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c := newCallCtx(parent, time.Hour)
	if d, ok := c.Deadline(); !ok || time.Until(d) <= 0 {
		t.Fatalf("Deadline = %v, %v; want one ahead", d, ok)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err = %v, want nil", err)
	}
	if v := c.Value(ctxKey{}); v != "v" {
		t.Fatalf("Value = %v, want the parent's", v)
	}
	if c.armed.Load() {
		t.Fatal("Deadline, Err or Value armed the timer")
	}
	c.release()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after release = %v, want Canceled", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after release")
	}
}

func TestCallCtxArmed(t *testing.T) {
	c := newCallCtx(context.Background(), time.Hour)
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed early")
	default:
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err = %v, want nil", err)
	}
	// A context derived from an armed one follows it.
	child, stop := context.WithCancel(c)
	defer stop()
	c.release()
	<-done
	<-child.Done()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", err)
	}
	if err := child.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("child Err = %v, want Canceled", err)
	}
}

func TestCallCtxDeadline(t *testing.T) {
	// Past its deadline, an unarmed context reports it at once.
	c := newCallCtx(context.Background(), -time.Second)
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", err)
	}
	<-c.Done()
	c.release()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after release = %v, want still DeadlineExceeded", err)
	}

	// An armed one closes Done when its timer fires.
	c = newCallCtx(context.Background(), time.Millisecond)
	defer c.release()
	<-c.Done()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", err)
	}
}

func TestCallCtxParentCancelled(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := newCallCtx(parent, time.Hour)
	defer c.release()
	cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", err)
	}
	<-c.Done()

	// Armed before the parent ends: Done follows the parent.
	parent, cancel = context.WithCancel(context.Background())
	c = newCallCtx(parent, time.Hour)
	defer c.release()
	done := c.Done()
	cancel()
	<-done
	if err := context.Cause(c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cause = %v, want Canceled", err)
	}
}
