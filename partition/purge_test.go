package partition

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

func writeN(t testing.TB, r *Replica, n int, value string) {
	t.Helper()
	for i := range n {
		write(t, r, set(fmt.Sprint("k", i%10), value)) // records of equal size
	}
}

func TestPurgeByCount(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	writeN(t, r, 100, "v")
	lp := binlogPrefix(1, 0, r.State().LogInc)

	n, err := r.Purge(Retention{MaxRecords: 30}, math.MaxUint64)
	if err != nil || n != 70 {
		t.Fatalf("Purge = %d %v, want 70", n, err)
	}
	st := r.State()
	if st.FirstSeq != 71 || st.Seq != 100 {
		t.Fatalf("state %+v", st)
	}
	if got := countPrefix(t, s, lp); got != 30 {
		t.Fatalf("%d log keys left, want 30", got)
	}
	readLog(t, s, r.ID(), st)
	_, err = r.ReadLog(70, 1<<20)
	wantErr(t, err, ErrPurged)
	if recs, err := r.ReadLog(71, 1<<20); err != nil || len(recs) != 30 {
		t.Fatalf("ReadLog(71) = %d %v", len(recs), err)
	}
	// Nothing more to do.
	if n, _ := r.Purge(Retention{MaxRecords: 30}, math.MaxUint64); n != 0 {
		t.Fatalf("second Purge removed %d", n)
	}

	// keepFrom holds back the soft limit...
	n, err = r.Purge(Retention{MaxRecords: 5}, 80)
	if err != nil || n != 9 || r.State().FirstSeq != 80 {
		t.Fatalf("Purge with keepFrom = %d %v, FirstSeq %d", n, err, r.State().FirstSeq)
	}
	// ...but not the hard cap.
	n, err = r.Purge(Retention{MaxRecords: 5, HardMaxRecords: 10}, 80)
	if err != nil || n != 11 || r.State().FirstSeq != 91 {
		t.Fatalf("Purge with hard cap = %d %v, FirstSeq %d", n, err, r.State().FirstSeq)
	}
	// A slave that needs purged records gets a full sync.
	if a, reason := r.Decide(1, 85); a != wire.ReplFullSync {
		t.Fatalf("Decide for purged slave = %v (%s)", a, reason)
	}
	if a, _ := r.Decide(1, 90); a != wire.ReplContinue {
		t.Fatalf("Decide for slave at FirstSeq-1 = %v", a)
	}
	// Everything can go; FirstSeq is then Seq+1.
	n, _ = r.Purge(Retention{HardMaxRecords: -1, MaxRecords: 0}, math.MaxUint64)
	if n != 0 {
		t.Fatalf("Purge with no limits removed %d", n)
	}
	write(t, r, set("x", "y"))
	if n, _ := r.Purge(Retention{HardMaxBytes: 1}, 0); n != 11 {
		t.Fatalf("Purge to empty removed %d", n)
	}
	if st := r.State(); st.FirstSeq != st.Seq+1 {
		t.Fatalf("state after full purge %+v", st)
	}
	if recs, err := r.ReadLog(r.State().Seq+1, 100); err != nil || len(recs) != 0 {
		t.Fatalf("ReadLog after full purge: %d %v", len(recs), err)
	}
	if got := countPrefix(t, s, lp); got != 0 {
		t.Fatalf("%d log keys left", got)
	}
	// Data is untouched by purging.
	wantValue(t, r, "x", "y")
}

func TestPurgeByBytes(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	value := strings.Repeat("x", 1000)
	writeN(t, r, 50, value)
	r.mu.Lock()
	total := r.logBytes
	r.mu.Unlock()
	per := total / 50
	if per < 1000 || per > 1100 {
		t.Fatalf("%d bytes per record", per)
	}
	n, err := r.Purge(Retention{MaxBytes: 20 * per}, math.MaxUint64)
	if err != nil || n != 30 {
		t.Fatalf("Purge by bytes = %d %v, want 30", n, err)
	}
	r.mu.Lock()
	left := r.logBytes
	r.mu.Unlock()
	if left > 20*per || left < 19*per {
		t.Fatalf("%d bytes left, want about %d", left, 20*per)
	}
	// The count is recomputed identically on reopen.
	r.Close()
	r2 := replica(t, s, 1, 0)
	r2.mu.Lock()
	reopened := r2.logBytes
	r2.mu.Unlock()
	if reopened != left {
		t.Fatalf("log bytes on reopen %d, before %d", reopened, left)
	}
	// Hard bytes cap overrides keepFrom.
	n, err = r2.Purge(Retention{HardMaxBytes: 5 * per}, 0)
	if err != nil || n != 15 {
		t.Fatalf("Purge by hard bytes = %d %v, want 15", n, err)
	}
}

func TestPurgeByAge(t *testing.T) {
	c := newClock()
	_, r := newMaster(t, c)
	writeN(t, r, 10, "old")
	c.Advance(int64(10 * time.Minute / time.Millisecond))
	writeN(t, r, 10, "new")
	n, err := r.Purge(Retention{MaxAge: 5 * time.Minute}, math.MaxUint64)
	if err != nil || n != 10 {
		t.Fatalf("Purge by age = %d %v, want 10", n, err)
	}
	if st := r.State(); st.FirstSeq != 11 {
		t.Fatalf("FirstSeq %d", st.FirstSeq)
	}
	// keepFrom protects old records from the age limit too.
	c.Advance(int64(10 * time.Minute / time.Millisecond))
	n, err = r.Purge(Retention{MaxAge: 5 * time.Minute}, 15)
	if err != nil || n != 4 {
		t.Fatalf("Purge by age with keepFrom = %d %v, want 4", n, err)
	}
}

func TestPurgeCleansLeftovers(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	writeN(t, r, 20, "v")
	// Simulate a purge interrupted after moving FirstSeq: move it without
	// deleting anything.
	st := r.State()
	if moved, err := r.moveFirstSeq(st, 11, 0); err != nil || !moved {
		t.Fatalf("moveFirstSeq: %v %v", moved, err)
	}
	lp := binlogPrefix(1, 0, st.LogInc)
	if got := countPrefix(t, s, lp); got != 20 {
		t.Fatalf("%d log keys", got)
	}
	if n, err := r.Purge(Retention{}, math.MaxUint64); err != nil || n != 0 {
		t.Fatalf("Purge = %d %v", n, err)
	}
	if got := countPrefix(t, s, lp); got != 10 {
		t.Fatalf("%d log keys after cleanup, want 10", got)
	}
}

// A purge starts where the one before finished, and still deletes every
// record between there and the new FirstSeq, even those an interrupted
// purge left behind.
func TestPurgeResumes(t *testing.T) {
	c := newClock()
	s, r := newMaster(t, c)
	lp := binlogPrefix(1, 0, r.State().LogInc)
	writeN(t, r, 30, "v")
	if n, err := r.Purge(Retention{MaxRecords: 20}, math.MaxUint64); err != nil || n != 10 {
		t.Fatalf("Purge = %d %v, want 10", n, err)
	}
	if got := countPrefix(t, s, lp); got != 20 {
		t.Fatalf("%d log keys, want 20", got)
	}
	// Interrupted after moving FirstSeq from 11 to 21.
	if moved, err := r.moveFirstSeq(r.State(), 21, 0); err != nil || !moved {
		t.Fatalf("moveFirstSeq: %v %v", moved, err)
	}
	writeN(t, r, 10, "v")
	if n, err := r.Purge(Retention{MaxRecords: 15}, math.MaxUint64); err != nil || n != 5 {
		t.Fatalf("Purge = %d %v, want 5", n, err)
	}
	st := r.State()
	if st.FirstSeq != 26 || st.Seq != 40 {
		t.Fatalf("state %+v", st)
	}
	if got := countPrefix(t, s, lp); got != 15 {
		t.Fatalf("%d log keys, want 15", got)
	}
	readLog(t, s, r.ID(), st)
	// Nothing to delete: the purge stops at once.
	if n, err := r.Purge(Retention{MaxRecords: 15}, math.MaxUint64); err != nil || n != 0 {
		t.Fatalf("Purge = %d %v, want 0", n, err)
	}
	if got := countPrefix(t, s, lp); got != 15 {
		t.Fatalf("%d log keys, want 15", got)
	}
}

func TestPurgeSoloRetention(t *testing.T) {
	for _, tc := range []struct{ in, want Retention }{
		{Retention{MaxBytes: 64 << 20, SoloMaxBytes: 1 << 20}, Retention{MaxBytes: 1 << 20, SoloMaxBytes: 1 << 20}},
		{Retention{SoloMaxBytes: 1 << 20}, Retention{MaxBytes: 1 << 20, SoloMaxBytes: 1 << 20}},                    // MaxBytes unlimited
		{Retention{MaxBytes: 1 << 10, SoloMaxBytes: 1 << 20}, Retention{MaxBytes: 1 << 10, SoloMaxBytes: 1 << 20}}, // already smaller
		{Retention{MaxBytes: 64 << 20, MaxAge: time.Hour}, Retention{MaxBytes: 64 << 20, MaxAge: time.Hour}},       // unset
	} {
		if got := tc.in.Solo(); got != tc.want {
			t.Errorf("%+v.Solo() = %+v, want %+v", tc.in, got, tc.want)
		}
	}

	// A solo master's log is purged down to SoloMaxBytes, keepFrom still
	// holding it back.
	_, r := newMaster(t, newClock())
	writeN(t, r, 50, strings.Repeat("x", 1000))
	r.mu.Lock()
	per := r.logBytes / 50
	r.mu.Unlock()
	ret := Retention{MaxBytes: 64 << 20, SoloMaxBytes: 10 * per}
	if n, err := r.Purge(ret, math.MaxUint64); err != nil || n != 0 {
		t.Fatalf("Purge with MaxBytes = %d %v, want nothing removed", n, err)
	}
	if n, err := r.Purge(ret.Solo(), 31); err != nil || n != 30 {
		t.Fatalf("Purge solo held back at 31 = %d %v, want 30", n, err)
	}
	if n, err := r.Purge(ret.Solo(), math.MaxUint64); err != nil || n != 10 {
		t.Fatalf("Purge solo = %d %v, want 10", n, err)
	}
	if st := r.State(); st.FirstSeq != 41 || st.Seq != 50 {
		t.Fatalf("after the solo purge: first %d seq %d, want 41 and 50", st.FirstSeq, st.Seq)
	}
}
