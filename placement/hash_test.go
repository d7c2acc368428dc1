package placement

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestHashtag(t *testing.T) {
	tests := []struct {
		key, tag, routing string
		hasTag            bool
	}{
		{"", "", "", false},
		{"plain", "", "plain", false},
		{"{}", "", "{}", false},       // empty tag: the whole key
		{"{}{a}", "", "{}{a}", false}, // only the first '{' counts (Redis)
		{"a{b}c", "b", "b", true},     // tag in the middle
		{"{a}{b}", "a", "a", true},    // first tag wins
		{"}{", "", "}{", false},       // '}' before '{'
		{"{", "", "{", false},         // no closing brace
		{"}", "", "}", false},         // no opening brace
		{"a{b", "", "a{b", false},     // unclosed
		{"{user:1}:profile", "user:1", "user:1", true},
		{"a{{b}}", "{b", "{b", true}, // tag runs to the first '}'
		{"{ }", " ", " ", true},      // any non-empty bytes
		{"x{\x00\xff}y", "\x00\xff", "\x00\xff", true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.key), func(t *testing.T) {
			tag := Hashtag([]byte(tc.key))
			if (tag != nil) != tc.hasTag || string(tag) != tc.tag {
				t.Fatalf("Hashtag(%q) = %q (nil %v), want %q", tc.key, tag, tag == nil, tc.tag)
			}
			if got := string(RoutingKey([]byte(tc.key))); got != tc.routing {
				t.Fatalf("RoutingKey(%q) = %q, want %q", tc.key, got, tc.routing)
			}
			if got, want := HashKey([]byte(tc.key)), xxhash.Sum64String(tc.routing); got != want {
				t.Fatalf("HashKey(%q) = %x, want xxhash64(%q) = %x", tc.key, got, tc.routing, want)
			}
		})
	}
}

// TestHashtagAliases checks that the returned slices alias the key, as
// documented.
func TestHashtagAliases(t *testing.T) {
	key := []byte("ab{cd}ef")
	tag := Hashtag(key)
	tag[0] = 'X'
	if string(key) != "ab{Xd}ef" {
		t.Fatalf("key = %q after writing through the tag", key)
	}
	whole := []byte("nothing")
	if r := RoutingKey(whole); &r[0] != &whole[0] || len(r) != len(whole) {
		t.Fatal("RoutingKey of a key without tag is not the key itself")
	}
}

func TestPartitionOf(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000, 1 << 20} {
		seen := map[PartitionID]bool{}
		for i := 0; i < 2000; i++ {
			key := []byte(fmt.Sprintf("key-%d", i))
			p := PartitionOf(key, n)
			if int(p) >= n {
				t.Fatalf("PartitionOf(%q, %d) = %d, out of range", key, n, p)
			}
			seen[p] = true
			// Keys sharing a hashtag share a partition, the tag's.
			tagged := []byte(fmt.Sprintf("x{%d}y", i%17))
			if got, want := PartitionOf(tagged, n), PartitionOfTag([]byte(fmt.Sprint(i%17)), n); got != want {
				t.Fatalf("PartitionOf(%q, %d) = %d, PartitionOfTag = %d", tagged, n, got, want)
			}
		}
		if n <= 64 && len(seen) != n {
			t.Fatalf("n=%d: 2000 keys hit only %d partitions", n, len(seen))
		}
	}
	if PartitionOf(nil, 5) != PartitionOf([]byte{}, 5) {
		t.Fatal("nil and empty keys route differently")
	}
	tb := &Table{Partitions: make([]Partition, 8)}
	for i := range tb.Partitions {
		tb.Partitions[i].ID = PartitionID(i)
	}
	if p := tb.PartitionFor([]byte("a{b}c")); p.ID != PartitionOfTag([]byte("b"), 8) {
		t.Fatalf("Table.PartitionFor = %d", p.ID)
	}
}

// TestPartitionOfSpread checks that routing spreads keys evenly: with
// 100,000 keys over 64 partitions every partition gets within 10% of the
// mean (the binomial standard deviation is about 1.6%).
func TestPartitionOfSpread(t *testing.T) {
	const n, keys = 64, 100000
	var counts [n]int
	for i := 0; i < keys; i++ {
		counts[PartitionOf([]byte(fmt.Sprintf("user:%d", i)), n)]++
	}
	for p, c := range counts {
		if d := float64(c)/float64(keys/n) - 1; d > 0.1 || d < -0.1 {
			t.Fatalf("partition %d has %d keys, mean %d", p, c, keys/n)
		}
	}
}

func BenchmarkPartitionOf(b *testing.B) {
	key := []byte("user:{12345}:profile")
	for b.Loop() {
		PartitionOf(key, 1024)
	}
}
