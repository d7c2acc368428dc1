package client

import (
	"testing"
	"time"
)

// TestRerouterStops: close ends (and waits for) the loop a call started;
// a rerouter closed before any call closes without waiting, and a call
// after that neither blocks nor closes done a second time (a panic).
func TestRerouterStops(t *testing.T) {
	r := newRerouter(&Client{}, time.Millisecond)
	w := r.watch("a", nil)
	w.done()
	r.close()
	select {
	case <-r.done:
	default:
		t.Fatal("close returned before the loop ended")
	}

	r = newRerouter(&Client{}, time.Millisecond)
	r.close()
	r.watch("a", nil).done()
}
