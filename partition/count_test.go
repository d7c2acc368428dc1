package partition

import (
	"fmt"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestCount(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	count := func(want int64) {
		t.Helper()
		n, seq, err := r.Count()
		if err != nil {
			t.Fatal(err)
		}
		if n != want || seq != r.State().Seq {
			t.Fatalf("Count = %d at seq %d, want %d at seq %d", n, seq, want, r.State().Seq)
		}
	}
	count(0)
	for i := range 50 {
		write(t, r, set(fmt.Sprintf("{t}k%d", i), "v"))
	}
	for i := range 5 {
		write(t, r, setTTL(fmt.Sprintf("e%d", i), "v", 1000))
	}
	write(t, r, del("{t}k0"), set("{t}k1", "again"))
	count(54)
	c.Advance(1001) // the five keys with a TTL expire by the replica's clock
	count(49)
	// Another partition's keys are not counted.
	other := replica(t, s, 1, 1)
	if err := other.Promote(1); err != nil {
		t.Fatal(err)
	}
	write(t, other, set("x", "1"))
	count(49)
	write(t, r, wire.Op{Type: wire.OpFlush})
	count(0)
}
