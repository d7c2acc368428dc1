// Package poll waits for a condition by calling it again and again, with a
// short, bounded back-off. It is the fallback of tests that cannot wait on
// an event: a test polls what it can observe (a map epoch, a replica's
// state, a line of output) until it holds or a timeout passes.
//
//	err := poll.Until(10*time.Second, func() error {
//		if got := n.Epoch(); got < want {
//			return fmt.Errorf("epoch %d, want %d", got, want)
//		}
//		return nil
//	})
//
// The condition returns why it does not hold yet; when time runs out, Until
// returns that last reason wrapped with the timeout, so a failure says what
// was seen last.
//
// The package imports nothing of this module, so in-package tests of any
// package may use it.
package poll
