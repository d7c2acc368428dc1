package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// TestMultiKeyReadDecidesPerPartition reads, in one request, keys of
// partitions the node masters, of one another node masters and of ones
// with no master, each partition's key twice and interleaved, and a key
// sent to the wrong partition: every key gets its own partition's answer.
func TestMultiKeyReadDecidesPerPartition(t *testing.T) {
	const n = 24
	parts := make([]placement.Partition, n)
	for i := range parts {
		parts[i] = placement.Partition{ID: placement.PartitionID(i), Master: "a", Gen: 1}
	}
	parts[1].Master = "b"
	parts[n-1].Master = ""
	parts[2].Master = ""
	s := startNode(t, t.TempDir(), &fakeMeta{leader: mapWith(5, false, parts...)})
	eventually(t, "master of its partitions", func() bool {
		for _, p := range parts {
			if p.Master != "a" {
				continue
			}
			r := s.replica(rkey{1, p.ID})
			if r == nil || r.info.Load().role != wire.RoleMaster {
				return false
			}
		}
		return true
	})

	keyOf := keyPerPartition("k", n)
	var w wire.WriteRequest
	w.Table, w.Epoch = 1, s.Epoch()
	for p, k := range keyOf {
		if parts[p].Master == "a" {
			w.Groups = append(w.Groups, wire.WriteGroup{Partition: placement.PartitionID(p),
				Ops: []wire.Op{{Type: wire.OpSet, Key: k, Value: append([]byte("v-"), k...)}}})
		}
	}
	var wr wire.WriteReply
	if _, err := s.ServeLocal(context.Background(), wire.KindWrite, &w, &wr); err != nil {
		t.Fatal(err)
	}
	for i, g := range wr.Groups {
		if g.Err != nil {
			t.Fatalf("write group %d: %v", i, g.Err)
		}
	}

	req := wire.ReadRequest{Table: 1, Epoch: s.Epoch(), Op: wire.ReadGet}
	for range 2 {
		for p := n - 1; p >= 0; p-- {
			req.Keys = append(req.Keys, wire.KeyRef{Partition: placement.PartitionID(p), Key: keyOf[p]})
		}
	}
	req.Keys = append(req.Keys, wire.KeyRef{Partition: 0, Key: keyOf[3]}) // not partition 0's
	var reply wire.ReadReply
	if _, err := s.ServeLocal(context.Background(), wire.KindRead, &req, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Results) != len(req.Keys) {
		t.Fatalf("%d results for %d keys", len(reply.Results), len(req.Keys))
	}
	for i, k := range req.Keys {
		res, p := reply.Results[i], int(k.Partition)
		var want wire.Code
		switch {
		case i == len(req.Keys)-1:
			want = wire.CodeInvalid
		case p == 1:
			want = wire.CodeMoved
		case parts[p].Master == "":
			want = wire.CodeUnavailable
		}
		if want != 0 {
			if res.Err == nil || res.Err.Code != want {
				t.Errorf("key %d (%s, partition %d): %+v, want code %v", i, k.Key, p, res, want)
			} else if want == wire.CodeMoved && res.Err.Addr != "b:1" {
				t.Errorf("key %d: moved to %q, want b:1", i, res.Err.Addr)
			}
			continue
		}
		if res.Err != nil || !res.Found || string(res.Value) != "v-"+string(k.Key) {
			t.Errorf("key %d (%s, partition %d): %+v", i, k.Key, p, res)
		}
	}
}

// keyPerPartition returns a key of each of n partitions, keyOf[p] being
// partition p's, each starting with prefix.
func keyPerPartition(prefix string, n int) (keyOf [][]byte) {
	keyOf = make([][]byte, n)
	for i, left := 0, n; left > 0; i++ {
		k := fmt.Appendf(nil, "%s%d", prefix, i)
		if p := placement.PartitionOf(k, n); keyOf[p] == nil {
			keyOf[p] = k
			left--
		}
	}
	return keyOf
}

// BenchmarkReadMany reads 16 cached keys a request, one in each of 16
// partitions the node masters: the node's side of a pipelined run of GETs.
func BenchmarkReadMany(b *testing.B) {
	const n, sets = 16, 3
	parts := make([]placement.Partition, n)
	for i := range parts {
		parts[i] = placement.Partition{ID: placement.PartitionID(i), Master: "a", Gen: 1}
	}
	s := startNode(b, b.TempDir(), &fakeMeta{leader: mapWith(5, false, parts...)})
	var req wire.ReadRequest
	var w wire.WriteRequest
	for set := range sets {
		for p, k := range keyPerPartition(fmt.Sprintf("k%d-", set), n) {
			req.Keys = append(req.Keys, wire.KeyRef{Partition: placement.PartitionID(p), Key: k})
			w.Groups = append(w.Groups, wire.WriteGroup{Partition: placement.PartitionID(p),
				Ops: []wire.Op{{Type: wire.OpSet, Key: k, Value: make([]byte, 100)}}})
		}
	}
	// The writes succeed once the node masters every partition.
	eventually(b, "writes to every partition", func() bool {
		w.Table, w.Epoch = 1, s.Epoch()
		var wr wire.WriteReply
		if _, err := s.ServeLocal(context.Background(), wire.KindWrite, &w, &wr); err != nil {
			b.Fatal(err)
		}
		for _, g := range wr.Groups {
			if g.Err != nil {
				return false
			}
		}
		return true
	})
	req.Table, req.Epoch, req.Op = 1, s.Epoch(), wire.ReadGet
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req
		lo := i % sets * n
		r.Keys = req.Keys[lo : lo+n]
		var reply wire.ReadReply
		if _, err := s.ServeLocal(context.Background(), wire.KindRead, &r, &reply); err != nil {
			b.Fatal(err)
		}
		if res := reply.Results[0]; res.Err != nil || !res.Found {
			b.Fatalf("read: %+v", res)
		}
	}
}
