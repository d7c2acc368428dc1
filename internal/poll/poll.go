package poll

import (
	"fmt"
	"time"
)

// Backoff bounds: the first pause after a failed check, and the longest.
const (
	firstWait = time.Millisecond
	maxWait   = 50 * time.Millisecond
)

// Until calls cond until it returns nil or timeout has passed, pausing
// between calls from 1 ms, doubling up to 50 ms; the last call is made when
// the timeout ends. It returns nil once cond does, otherwise cond's last
// error wrapped with the timeout: errors.Unwrap of the result is that
// error. cond runs on the caller's goroutine, so it may stop a test with
// t.Fatal.
func Until(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := firstWait
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("condition not met within %v: %w", timeout, err)
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, maxWait)
	}
}
