package partition

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// TestSnapshotChunks reads a snapshot of small and large values (some
// larger than a chunk buffer, some expired) in chunks of several sizes:
// every chunk keeps to its size, its entries own their bytes, and loading
// them gives the master's copy.
func TestSnapshotChunks(t *testing.T) {
	c := newClock()
	ms, m := newMaster(t, c)
	want := map[string]string{}
	for i := range 400 {
		k := fmt.Sprintf("{t%d}k%03d", i%3, i)
		n := 1 + i*37%3000
		if i%97 == 0 {
			n = snapBufBytes + 1000 // a value of its own buffer
		}
		v := string(bytes.Repeat([]byte{byte('a' + i%26)}, n))
		if i%10 == 3 {
			write(t, m, setTTL(k, v, 10)) // expired when the snapshot is taken
			continue
		}
		write(t, m, set(k, v))
		want[k] = v
	}
	c.Advance(10)

	for _, maxBytes := range []int{1, 4 << 10, 256 << 10, 8 << 20} {
		sn, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		var chunks [][]wire.SnapEntry
		var last []byte
		for {
			entries, done, err := sn.Next(maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 0 && !done {
				t.Fatalf("maxBytes %d: an empty chunk before the end", maxBytes)
			}
			size := 0
			for i, e := range entries {
				if last != nil && bytes.Compare(e.Key, last) <= 0 {
					t.Fatalf("maxBytes %d: key %q after %q", maxBytes, e.Key, last)
				}
				last = e.Key
				if i < len(entries)-1 {
					size += len(e.Key) + len(e.Value)
				}
				got[string(e.Key)] = string(e.Value)
			}
			if size >= maxBytes && len(entries) > 1 {
				t.Fatalf("maxBytes %d: a chunk of %d bytes before its last entry", maxBytes, size)
			}
			chunks = append(chunks, entries)
			if done {
				break
			}
		}
		sn.Close()
		if len(got) != len(want) {
			t.Fatalf("maxBytes %d: %d keys, want %d", maxBytes, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("maxBytes %d: key %s has %d bytes, want %d", maxBytes, k, len(got[k]), len(v))
			}
		}
		// Appending to a key or a value never reaches its neighbours.
		for _, ch := range chunks {
			for i := range ch {
				ch[i].Key = append(ch[i].Key, '!')
				ch[i].Value = append(ch[i].Value, '!')
			}
			for _, e := range ch {
				k, v := e.Key[:len(e.Key)-1], e.Value[:len(e.Value)-1]
				if want[string(k)] != string(v) {
					t.Fatalf("maxBytes %d: key %s changed by an append to another entry", maxBytes, k)
				}
			}
		}
	}

	ss := openStore(t, testOptions(t, t.TempDir(), c))
	s := replica(t, ss, 1, 0)
	fullSync(t, m, s)
	sameReplica(t, ms, m, ss, s, c.Now())
}

// TestLoadChunkRefusesBadEntries checks that a chunk with an invalid entry
// writes none of its entries.
func TestLoadChunkRefusesBadEntries(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	r := replica(t, s, 1, 0)
	if err := r.BeginLoad(); err != nil {
		t.Fatal(err)
	}
	st := r.State()
	for _, bad := range []wire.SnapEntry{
		{Key: nil, Value: []byte("v")},
		{Key: make([]byte, maxBadgerKey), Value: []byte("v")},
		{Key: []byte("k"), Value: []byte("v"), ExpireAt: -1},
	} {
		chunk := []wire.SnapEntry{{Key: []byte("{t}good"), Value: []byte("v")}, bad}
		if err := r.LoadChunk(chunk); err == nil {
			t.Fatalf("LoadChunk with %+v succeeded", bad)
		}
	}
	if n := countPrefix(t, s, incPrefix(prefixData, 1, 0, st.DataInc)); n != 0 {
		t.Fatalf("%d data keys written by refused chunks", n)
	}
	if n := countPrefix(t, s, incPrefix(prefixIndex, 1, 0, st.DataInc)); n != 0 {
		t.Fatalf("%d index keys written by refused chunks", n)
	}
}
