package poll_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/poll"
)

func TestUntilReturnsOnceCondHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		err := poll.Until(time.Minute, func() error {
			if calls++; calls < 4 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Until: got %v, want nil", err)
		}
		if calls != 4 {
			t.Errorf("calls: got %d, want 4", calls)
		}
		// Pauses of 1, 2 and 4 ms before the fourth call.
		if got, want := time.Since(start), 7*time.Millisecond; got != want {
			t.Errorf("elapsed: got %v, want %v", got, want)
		}
	})
}

func TestUntilBacksOffToTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		err := poll.Until(200*time.Millisecond, func() error {
			at = append(at, time.Since(start))
			return fmt.Errorf("call %d", len(at))
		})
		ms := time.Millisecond
		// Pauses double from 1 ms up to 50 ms; the last call comes when
		// the timeout ends.
		want := []time.Duration{0, 1 * ms, 3 * ms, 7 * ms, 15 * ms, 31 * ms, 63 * ms, 113 * ms, 163 * ms, 200 * ms}
		if !slices.Equal(at, want) {
			t.Errorf("calls at: got %v, want %v", at, want)
		}
		last := fmt.Sprintf("call %d", len(want))
		if err == nil || errors.Unwrap(err) == nil || errors.Unwrap(err).Error() != last {
			t.Fatalf("Until: got %v, want cond's last error %q wrapped", err, last)
		}
		if got, want := err.Error(), "condition not met within 200ms: "+last; got != want {
			t.Errorf("message: got %q, want %q", got, want)
		}
	})
}

func TestUntilCallsCondAtLeastOnce(t *testing.T) {
	calls := 0
	err := poll.Until(0, func() error {
		calls++
		return nil
	})
	if err != nil || calls != 1 {
		t.Errorf("Until with no time: got %v after %d calls, want nil after 1", err, calls)
	}
	sentinel := errors.New("never")
	if err := poll.Until(-time.Second, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Until past its timeout: got %v, want %v wrapped", err, sentinel)
	}
}
