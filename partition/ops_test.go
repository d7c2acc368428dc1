package partition

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func TestSetGetTTL(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)

	write(t, r, set("plain", "v"))
	v, exp, found := get(t, r, "plain")
	if !found || v != "v" || exp != 0 {
		t.Fatalf("Get(plain) = %q %d %v", v, exp, found)
	}
	if ttl, found, err := r.TTL([]byte("plain")); err != nil || !found || ttl != -1 {
		t.Fatalf("TTL(plain) = %d %v %v, want -1", ttl, found, err)
	}

	at := c.after(60_000)
	write(t, r, setTTL("k", "v1", 60_000))
	if _, exp, _ := get(t, r, "k"); exp != at {
		t.Fatalf("expireAt = %d, want %d", exp, at)
	}
	if ttl, _, _ := r.TTL([]byte("k")); ttl != 60_000 {
		t.Fatalf("TTL = %d, want 60000", ttl)
	}

	// KeepTTL keeps the live key's expiry; a plain set clears it.
	c.Advance(10_000)
	res := write(t, r, wire.Op{Type: wire.OpSet, Key: []byte("k"), Value: []byte("v2"), KeepTTL: true})
	if !res[0].Done {
		t.Fatalf("set KeepTTL not done")
	}
	if v, exp, _ := get(t, r, "k"); v != "v2" || exp != at {
		t.Fatalf("after KeepTTL: %q %d, want v2 %d", v, exp, at)
	}
	if ttl, _, _ := r.TTL([]byte("k")); ttl != 50_000 {
		t.Fatalf("TTL = %d, want 50000", ttl)
	}

	// Expiry happens at the exact millisecond.
	c.Set(at - 1)
	wantValue(t, r, "k", "v2")
	if ok, _ := r.Exists([]byte("k")); !ok {
		t.Fatalf("Exists 1 ms before expiry = false")
	}
	c.Set(at)
	wantAbsent(t, r, "k")
	if ok, _ := r.Exists([]byte("k")); ok {
		t.Fatalf("Exists at expiry = true")
	}
	if _, found, _ := r.TTL([]byte("k")); found {
		t.Fatalf("TTL found an expired key")
	}

	// KeepTTL on an expired key: the key is absent, so no expiry is kept.
	write(t, r, wire.Op{Type: wire.OpSet, Key: []byte("k"), Value: []byte("v3"), KeepTTL: true})
	if v, exp, _ := get(t, r, "k"); v != "v3" || exp != 0 {
		t.Fatalf("KeepTTL on expired key: %q %d", v, exp)
	}
	// A plain set clears an expiry.
	write(t, r, setTTL("k", "v4", 1000))
	write(t, r, set("k", "v5"))
	if _, exp, _ := get(t, r, "k"); exp != 0 {
		t.Fatalf("plain set kept expiry %d", exp)
	}

	// Empty key and negative TTL are invalid.
	_, err := r.Write(context.Background(), []wire.Op{set("", "x")})
	wantCode(t, err, wire.CodeInvalid)
	_, err = r.Write(context.Background(), []wire.Op{setTTL("a", "x", -1)})
	wantCode(t, err, wire.CodeInvalid)
	_, err = r.Write(context.Background(), []wire.Op{{Type: 99, Key: []byte("a")}})
	wantCode(t, err, wire.CodeInvalid)
	_, err = r.Write(context.Background(), []wire.Op{set(strings.Repeat("k", 70_000), "x")})
	wantCode(t, err, wire.CodeInvalid)
	_, err = r.Write(context.Background(), []wire.Op{setTTL("a", "x", math.MaxInt64)})
	wantCode(t, err, wire.CodeInvalid)
}

func TestConditionalSetAndReturnOld(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	nx := func(k, v string) wire.Op {
		return wire.Op{Type: wire.OpSet, Key: []byte(k), Value: []byte(v), Cond: wire.CondIfAbsent, ReturnOld: true}
	}
	xx := func(k, v string) wire.Op {
		return wire.Op{Type: wire.OpSet, Key: []byte(k), Value: []byte(v), Cond: wire.CondIfPresent, ReturnOld: true}
	}
	seq := r.State().Seq

	res := write(t, r, xx("a", "1"))
	if res[0].Done || res[0].Found || res[0].Old != nil {
		t.Fatalf("XX on missing: %+v", res[0])
	}
	if r.State().Seq != seq {
		t.Fatalf("a set that did not happen consumed a seq")
	}
	res = write(t, r, nx("a", "1"))
	if !res[0].Done || res[0].Found {
		t.Fatalf("NX on missing: %+v", res[0])
	}
	res = write(t, r, nx("a", "2"))
	if res[0].Done || !res[0].Found || string(res[0].Old) != "1" {
		t.Fatalf("NX on present: %+v", res[0])
	}
	wantValue(t, r, "a", "1")
	res = write(t, r, xx("a", "3"))
	if !res[0].Done || string(res[0].Old) != "1" {
		t.Fatalf("XX on present: %+v", res[0])
	}
	wantValue(t, r, "a", "3")

	// An empty old value is Found with a non-nil empty Old.
	write(t, r, set("e", ""))
	res = write(t, r, wire.Op{Type: wire.OpSet, Key: []byte("e"), Value: []byte("x"), ReturnOld: true})
	if !res[0].Found || res[0].Old == nil || len(res[0].Old) != 0 {
		t.Fatalf("ReturnOld of empty value: %+v", res[0])
	}

	// An expired key is absent for NX.
	write(t, r, setTTL("t", "old", 1000))
	c.Advance(1000)
	res = write(t, r, nx("t", "new"))
	if !res[0].Done || res[0].Found {
		t.Fatalf("NX on expired: %+v", res[0])
	}

	// Within a group, later ops see earlier ones.
	res = write(t, r, nx("g", "1"), nx("g", "2"), xx("g", "3"))
	if !res[0].Done || res[1].Done || !res[2].Done || string(res[2].Old) != "1" {
		t.Fatalf("group: %+v", res)
	}
	wantValue(t, r, "g", "3")
}

func TestDelete(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	write(t, r, set("a", "1"), setTTL("b", "2", 100))
	seq := r.State().Seq
	if res := write(t, r, del("missing")); res[0].Done {
		t.Fatalf("delete of missing key done")
	}
	c.Advance(100)
	if res := write(t, r, del("b")); res[0].Done {
		t.Fatalf("delete of expired key done")
	}
	if r.State().Seq != seq {
		t.Fatalf("deletes of absent keys consumed seqs")
	}
	if res := write(t, r, del("a")); !res[0].Done {
		t.Fatalf("delete of live key not done")
	}
	wantAbsent(t, r, "a")
	if r.State().Seq != seq+1 {
		t.Fatalf("seq %d, want %d", r.State().Seq, seq+1)
	}
}

func TestIncr(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	if res := write(t, r, incr("n", 5)); res[0].Int != 5 {
		t.Fatalf("incr missing = %d", res[0].Int)
	}
	if res := write(t, r, incr("n", -7)); res[0].Int != -2 {
		t.Fatalf("incr = %d", res[0].Int)
	}
	wantValue(t, r, "n", "-2")

	// Incr keeps the TTL.
	at := c.after(5000)
	write(t, r, setTTL("t", "10", 5000))
	write(t, r, incr("t", 1))
	if v, exp, _ := get(t, r, "t"); v != "11" || exp != at {
		t.Fatalf("incr with TTL: %q %d, want 11 %d", v, exp, at)
	}
	// On an expired key it starts at 0, with no expiry.
	c.Set(at)
	if res := write(t, r, incr("t", 3)); res[0].Int != 3 {
		t.Fatalf("incr on expired = %d", res[0].Int)
	}
	if _, exp, _ := get(t, r, "t"); exp != 0 {
		t.Fatalf("incr on expired kept expiry %d", exp)
	}

	// Non-integers and overflow fail the group.
	for _, v := range []string{"", "abc", "1.5", " 1", "+1", "01", "-0", "1 ", "99999999999999999999", "9223372036854775808"} {
		write(t, r, set("bad", v))
		_, err := r.Write(context.Background(), []wire.Op{incr("bad", 1)})
		wantCode(t, err, wire.CodeNotInteger)
	}
	write(t, r, set("max", "9223372036854775807"))
	_, err := r.Write(context.Background(), []wire.Op{incr("max", 1)})
	wantCode(t, err, wire.CodeOverflow)
	write(t, r, set("min", "-9223372036854775808"))
	_, err = r.Write(context.Background(), []wire.Op{incr("min", -1)})
	wantCode(t, err, wire.CodeOverflow)
	if res := write(t, r, incr("min", 1)); res[0].Int != math.MinInt64+1 {
		t.Fatalf("incr min = %d", res[0].Int)
	}
}

func TestExpireAndPersist(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	expire := func(k string, ttl int64) wire.Op { return wire.Op{Type: wire.OpExpire, Key: []byte(k), TTL: ttl} }
	persist := func(k string) wire.Op { return wire.Op{Type: wire.OpPersist, Key: []byte(k)} }

	if res := write(t, r, expire("missing", 1000)); res[0].Done {
		t.Fatalf("expire on missing key done")
	}
	write(t, r, set("a", "1"))
	if res := write(t, r, persist("a")); res[0].Done {
		t.Fatalf("persist without TTL done")
	}
	at := c.after(2000)
	if res := write(t, r, expire("a", 2000)); !res[0].Done {
		t.Fatalf("expire not done")
	}
	if v, exp, _ := get(t, r, "a"); v != "1" || exp != at {
		t.Fatalf("after expire: %q %d, want 1 %d", v, exp, at)
	}
	if res := write(t, r, persist("a")); !res[0].Done {
		t.Fatalf("persist not done")
	}
	if _, exp, _ := get(t, r, "a"); exp != 0 {
		t.Fatalf("persist left expiry %d", exp)
	}
	for _, ttl := range []int64{0, -5} {
		write(t, r, set("b", "1"))
		if res := write(t, r, expire("b", ttl)); !res[0].Done {
			t.Fatalf("expire %d not done", ttl)
		}
		wantAbsent(t, r, "b")
	}
	write(t, r, setTTL("c", "1", 10))
	c.Advance(10)
	if res := write(t, r, expire("c", 1000), persist("c")); res[0].Done || res[1].Done {
		t.Fatalf("expire/persist on expired key: %+v", res)
	}
}

func TestDeleteTagPaging(t *testing.T) {
	c := newClock()
	o := testOptions(t, t.TempDir(), c)
	o.MaxTagDelete = 3
	s := openStore(t, o)
	r := replica(t, s, 1, 0)
	if err := r.Promote(1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		write(t, r, set(fmt.Sprintf("u{t}%02d", i), "v"))
	}
	write(t, r, set("u{other}1", "v"), set("plain", "v"), setTTL("x{t}expired", "v", 5))
	c.Advance(5)
	var counts []int64
	for {
		res := write(t, r, wire.Op{Type: wire.OpDeleteTag, Key: []byte("t")})
		counts = append(counts, res[0].Int)
		if res[0].Int == 0 {
			break
		}
	}
	if fmt.Sprint(counts) != "[3 3 3 1 0]" {
		t.Fatalf("DeleteTag counts %v, want [3 3 3 1 0]", counts)
	}
	if keys, _, _, _ := r.List([]byte("t"), nil, 0, false); len(keys) != 0 {
		t.Fatalf("List after DeleteTag: %q", keys)
	}
	wantValue(t, r, "u{other}1", "v")
	wantValue(t, r, "plain", "v")

	// Keys created earlier in the same group are deleted too.
	res := write(t, r, set("a{t}1", "v"), set("b{t}2", "v"), wire.Op{Type: wire.OpDeleteTag, Key: []byte("t")})
	if res[2].Int != 2 {
		t.Fatalf("DeleteTag in group = %d, want 2", res[2].Int)
	}
	wantAbsent(t, r, "a{t}1")
	dump(t, s, r.ID(), r.State(), c.Now()) // index consistency
}

func TestFlush(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	for i := range 20 {
		write(t, r, set(fmt.Sprintf("k%d", i), "v"), set(fmt.Sprintf("{tag}%d", i), "v"))
	}
	inc := r.State().DataInc
	res := write(t, r, wire.Op{Type: wire.OpFlush})
	if !res[0].Done {
		t.Fatalf("flush not done")
	}
	if r.State().DataInc == inc {
		t.Fatalf("flush kept the data incarnation")
	}
	wantAbsent(t, r, "k1")
	if keys, _, _, _ := r.List([]byte("tag"), nil, 0, false); len(keys) != 0 {
		t.Fatalf("List after flush: %q", keys)
	}
	write(t, r, set("k1", "new"))
	wantValue(t, r, "k1", "new")

	// A group that flushes then writes: only the later writes survive, and
	// reads after the flush see nothing.
	res = write(t, r, set("a", "1"), wire.Op{Type: wire.OpFlush},
		wire.Op{Type: wire.OpSet, Key: []byte("k1"), Value: []byte("x"), Cond: wire.CondIfAbsent}, set("b", "2"))
	if !res[2].Done {
		t.Fatalf("NX after flush in group not done")
	}
	wantAbsent(t, r, "a")
	wantValue(t, r, "k1", "x")
	wantValue(t, r, "b", "2")
	got := dump(t, s, r.ID(), r.State(), c.Now())
	equalModels(t, "after flush", got, model{"k1": {"x", 0}, "b": {"2", 0}})
	equalModels(t, "log replay", replay(readLog(t, s, r.ID(), r.State())), got)
}

func TestListPaging(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	var want []string
	wantVal := map[string]string{}
	for i := range 25 {
		k := fmt.Sprintf("item:{list}:%03d", i)
		if i%4 == 1 {
			write(t, r, setTTL(k, "gone", 10))
			continue
		}
		write(t, r, set(k, fmt.Sprint("v", i)))
		want = append(want, k)
		wantVal[k] = fmt.Sprint("v", i)
	}
	write(t, r, set("item:{lis}:x", "v"), set("item:{listx}:y", "v"), set("item:list", "v"))
	c.Advance(10)

	var got []string
	var after []byte
	pages := 0
	for {
		keys, vals, more, err := r.List([]byte("list"), after, 7, true)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for i, k := range keys {
			got = append(got, string(k))
			if string(vals[i]) != wantVal[string(k)] {
				t.Fatalf("value of %q = %q, want %q", k, vals[i], wantVal[string(k)])
			}
		}
		if !more {
			break
		}
		after = keys[len(keys)-1]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List = %q\nwant %q", got, want)
	}
	if wantPages := (len(want) + 6) / 7; pages != wantPages {
		t.Fatalf("%d pages, want %d", pages, wantPages)
	}
	keys, vals, _, _ := r.List([]byte("list"), nil, 100, false)
	if vals != nil || len(keys) != len(want) {
		t.Fatalf("List without values: %d keys, vals %v", len(keys), vals)
	}
	if _, _, _, err := r.List(nil, nil, 1, false); wire.CodeOf(err) != wire.CodeInvalid {
		t.Fatalf("List with empty tag: %v", err)
	}
	// Exactly a full last page: more is false.
	keys, _, more, _ := r.List([]byte("list"), []byte(want[len(want)-3]), 2, false)
	if len(keys) != 2 || more {
		t.Fatalf("last page: %q more=%v", keys, more)
	}
}

func TestGroupAtomicity(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	write(t, r, set("c", "not a number"), set("x{g}", "keep"))
	st := r.State()
	_, err := r.Write(context.Background(), []wire.Op{
		set("a", "1"), wire.Op{Type: wire.OpDelete, Key: []byte("x{g}")}, incr("c", 1), set("b", "2"),
	})
	wantCode(t, err, wire.CodeNotInteger)
	if got := r.State(); got.Seq != st.Seq {
		t.Fatalf("failed group consumed seq: %d → %d", st.Seq, got.Seq)
	}
	wantAbsent(t, r, "a")
	wantAbsent(t, r, "b")
	wantValue(t, r, "x{g}", "keep")
	wantValue(t, r, "c", "not a number")
	// The next group gets the next seq.
	write(t, r, set("a", "1"))
	if got := r.State().Seq; got != st.Seq+1 {
		t.Fatalf("seq %d, want %d", got, st.Seq+1)
	}
	readLog(t, s, r.ID(), r.State())
}

func TestWriteRoles(t *testing.T) {
	c := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), c))
	r := replica(t, s, 1, 0)
	ctx := context.Background()
	if _, err := r.Write(ctx, []wire.Op{set("a", "1")}); err != ErrNotMaster {
		t.Fatalf("Write on slave: %v", err)
	}
	if err := r.Promote(0); err == nil {
		t.Fatalf("Promote(0) succeeded")
	}
	if err := r.Promote(3); err != nil {
		t.Fatal(err)
	}
	write(t, r, set("a", "1"))
	wantErr(t, r.Promote(2), ErrStaleGen)
	if err := r.Promote(5); err != nil {
		t.Fatal(err)
	}
	write(t, r, set("a", "2"))
	st := r.State()
	if st.Gen != 5 || fmt.Sprint(st.History) != "[{3 1} {5 2}]" {
		t.Fatalf("state %+v", st)
	}
	r.Demote()
	r.Demote()
	if _, err := r.Write(ctx, []wire.Op{set("a", "1")}); err != ErrNotMaster {
		t.Fatalf("Write after Demote: %v", err)
	}
	if err := r.Promote(5); err != nil {
		t.Fatal(err)
	}
	write(t, r, set("a", "3"))
	if r2 := replica(t, s, 1, 0); r2 != r {
		t.Fatalf("Replica returned another pointer while open")
	}
	r.Close()
	r.Close()
	if _, err := r.Write(ctx, []wire.Op{set("a", "1")}); err != ErrClosed {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, _, _, err := r.Get([]byte("a")); err != ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}
	r2 := replica(t, s, 1, 0)
	if r2 == r {
		t.Fatalf("reopened replica is the closed one")
	}
	wantValue(t, r2, "a", "3")
	if st := r2.State(); st.Seq != 3 || st.Gen != 5 {
		t.Fatalf("reopened state %+v", st)
	}
}

func TestWriteTooBig(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	// Many small sets: more entries than one transaction holds.
	n := int(s.txnEntries)
	ops := make([]wire.Op, n)
	for i := range ops {
		ops[i] = set(fmt.Sprintf("key-%d", i), "v")
	}
	_, err := r.Write(context.Background(), ops)
	wantCode(t, err, wire.CodeInvalid)
	if !strings.Contains(err.Error(), "transaction limit") {
		t.Fatalf("error does not name the limit: %v", err)
	}
	if r.State().Seq != 0 {
		t.Fatalf("too-big group consumed a seq")
	}
	// A large value goes to Badger's value log and fits.
	big := bytes.Repeat([]byte("x"), 3<<20)
	write(t, r, wire.Op{Type: wire.OpSet, Key: []byte("big"), Value: big})
	if v, _, _, _ := r.Get([]byte("big")); !bytes.Equal(v, big) {
		t.Fatalf("big value lost")
	}
	// Key limits: Badger's 65,000 bytes minus the data prefix, and the index
	// key of a hashtag key must fit too.
	longest := strings.Repeat("k", maxBadgerKey-incPrefixLen)
	write(t, r, set(longest, "v"))
	wantValue(t, r, longest, "v")
	_, err = r.Write(context.Background(), []wire.Op{set(longest+"k", "v")})
	wantCode(t, err, wire.CodeInvalid)
	tagged := "{" + strings.Repeat("t", 30_000) + "}" + strings.Repeat("k", 10_000)
	_, err = r.Write(context.Background(), []wire.Op{set(tagged, "v")})
	wantCode(t, err, wire.CodeInvalid)
	write(t, r, set(tagged[:32_000], "v")) // tag and key fit
	// A group larger than the store's group limit is refused up front.
	_, err = r.Write(context.Background(), []wire.Op{{Type: wire.OpSet, Key: []byte("huge"), Value: make([]byte, s.maxGroupBytes)}})
	wantCode(t, err, wire.CodeInvalid)
}
