package partition

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// TestDeleteTagLargeKeysFitsTransaction checks that a DeleteTag over more
// key bytes than one Badger transaction holds deletes them in several
// rounds instead of failing every round with the transaction limit.
func TestDeleteTagLargeKeysFitsTransaction(t *testing.T) {
	s, r := newMaster(t, nil)
	pad := strings.Repeat("x", 900)
	const n = 3000
	for lo := 0; lo < n; lo += 200 {
		var ops []wire.Op
		for i := lo; i < lo+200; i++ {
			ops = append(ops, set(fmt.Sprintf("{big}%s%05d", pad, i), "v"))
		}
		write(t, r, ops...)
	}
	if total := int64(n) * 3 * int64(len(pad)); total < s.txnBytes {
		t.Fatalf("test keys total %d bytes, below the transaction limit %d: the test proves nothing", total, s.txnBytes)
	}
	var counts []int64
	deleted := int64(0)
	for round := 0; ; round++ {
		if round > n {
			t.Fatalf("DeleteTag made no progress: rounds %v", counts)
		}
		res, err := r.Write(t.Context(), []wire.Op{{Type: wire.OpDeleteTag, Key: []byte("big")}})
		if err != nil {
			t.Fatalf("DeleteTag round %d (after %v): %v", round, counts, err)
		}
		counts = append(counts, res[0].Int)
		if res[0].Int == 0 {
			break
		}
		deleted += res[0].Int
	}
	if deleted != n {
		t.Errorf("DeleteTag deleted %d keys in rounds %v, want %d", deleted, counts, n)
	}
	if keys, _, _, err := r.List([]byte("big"), nil, 0, false); err != nil || len(keys) != 0 {
		t.Errorf("List after DeleteTag = %d keys, %v, want none", len(keys), err)
	}
}
