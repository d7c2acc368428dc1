package partition

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// Environment of the crash child process.
const (
	crashDirEnv = "ZEPPELIN_PARTITION_CRASH_DIR"
	crashGenEnv = "ZEPPELIN_PARTITION_CRASH_GEN"
	// crashLoadEnv makes the child load full-sync snapshots instead.
	crashLoadEnv = "ZEPPELIN_PARTITION_CRASH_LOAD"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		gen, _ := strconv.ParseUint(os.Getenv(crashGenEnv), 10, 64)
		child := crashChild
		if os.Getenv(crashLoadEnv) != "" {
			child = crashLoadChild
		}
		if err := child(dir, gen); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashReplicas are the replicas the crash child writes to.
var crashReplicas = []ReplicaID{{9, 0}, {9, 1}, {9, 2}}

// crashChild writes to a store until it is killed. It prints "ready" once
// every replica has committed a few groups.
func crashChild(dir string, gen uint64) error {
	s, err := Open(Options{Dir: dir, Small: true})
	if err != nil {
		return err
	}
	var reps []*Replica
	for _, id := range crashReplicas {
		r, err := s.Replica(id.Table, id.Partition)
		if err != nil {
			return err
		}
		if err := r.Promote(gen); err != nil {
			return err
		}
		reps = append(reps, r)
	}
	start := make([]uint64, len(reps))
	for i, r := range reps {
		start[i] = r.State().Seq
	}
	errc := make(chan error, 1)
	for w := range 24 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), gen))
			for {
				r := reps[rng.IntN(len(reps))]
				ops := randomGroup(rng, 300)
				switch rng.IntN(400) {
				case 0:
					ops = append(ops, wire.Op{Type: wire.OpFlush})
				case 1, 2, 3:
					ops = append(ops, wire.Op{Type: wire.OpDeleteTag, Key: []byte("h2")})
				}
				if _, err := r.Write(context.Background(), ops); err != nil && wire.CodeOf(err) != wire.CodeNotInteger {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		}()
	}
	for i, r := range reps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.WaitSeq(ctx, start[i]+20)
		cancel()
		if err != nil {
			return err
		}
	}
	fmt.Println("ready")
	return <-errc // normally killed before this
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	delays := []time.Duration{0, 40 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond}
	var lastSeq uint64
	for round, delay := range delays {
		gen := uint64(round + 1)
		killChild(t, round, delay, crashDirEnv+"="+dir, crashGenEnv+"="+strconv.FormatUint(gen, 10))

		total := checkCrashedStore(t, dir, gen)
		if total <= lastSeq {
			t.Fatalf("round %d: no progress (%d records, %d before)", round, total, lastSeq)
		}
		t.Logf("round %d (kill after ready+%v): %d records in all", round, delay, total)
		lastSeq = total
	}
}

// checkCrashedStore reopens a killed child's store and checks every replica
// against its own binlog. It returns the total of the replicas' seqs.
func checkCrashedStore(t *testing.T, dir string, gen uint64) uint64 {
	t.Helper()
	s, err := Open(testOptions(t, dir, nil))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	ids, err := s.Replicas()
	if err != nil || len(ids) != len(crashReplicas) {
		t.Fatalf("Replicas = %v %v", ids, err)
	}
	markers := map[string]bool{}
	for _, m := range mustMarkers(t, s) {
		markers[fmt.Sprintf("%d/%d %c%d", m.table, m.part, m.kind, m.inc)] = true
	}
	var total uint64
	now := time.Now().UnixMilli()
	for _, id := range ids {
		r := replica(t, s, id.Table, id.Partition)
		st := r.State()
		if st.FirstSeq != 1 || st.Incomplete {
			t.Fatalf("%v: state %+v", id, st)
		}
		if st.Gen != gen && st.Gen != gen-1 {
			t.Fatalf("%v: gen %d in round of gen %d", id, st.Gen, gen)
		}
		recs := readLog(t, s, id, st) // exactly 1..Seq, gens per History
		equalModels(t, fmt.Sprintf("%v data vs log replay", id), dump(t, s, id, st, now), replay(recs).live(now))
		// Keys outside the current incarnations are condemned by a marker.
		checkOnlyCurrent(t, s, id, st, markers)
		total += st.Seq
	}
	return total
}

func mustMarkers(t *testing.T, s *Store) []marker {
	ms, err := s.markers()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func checkOnlyCurrent(t *testing.T, s *Store, id ReplicaID, st State, markers map[string]bool) {
	t.Helper()
	for _, kind := range []byte{prefixData, prefixIndex, 'l'} {
		p := make([]byte, partPrefixLen)
		putTP(p, kind, id.Table, id.Partition)
		cur := st.DataInc
		mk := byte(garbageData)
		if kind == 'l' {
			cur, mk = st.LogInc, garbageLog
		}
		err := s.DB().View(func(txn *badger.Txn) error {
			return iterKeys(txn, p, nil, func(k []byte) (bool, error) {
				inc := binary.BigEndian.Uint32(k[partPrefixLen:])
				if inc != cur && !markers[fmt.Sprintf("%d/%d %c%d", id.Table, id.Partition, mk, inc)] {
					return false, fmt.Errorf("key %q of incarnation %d is neither current (%d) nor garbage", k, inc, cur)
				}
				return true, nil
			})
		})
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
	}
}

// The snapshot the load crash child loads, again and again, into replica
// crashLoadReplica: crashLoadChunks chunks of crashLoadKeys entries.
const (
	crashLoadChunks = 8
	crashLoadKeys   = 64
)

var crashLoadReplica = ReplicaID{9, 7}

func crashLoadEntry(i int) wire.SnapEntry {
	v := make([]byte, 1<<10)
	binary.LittleEndian.PutUint64(v, uint64(i))
	return wire.SnapEntry{Key: fmt.Appendf(nil, "k%06d", i), Value: v}
}

// crashLoadChild loads the snapshot into a slave replica over and over
// until it is killed. It prints "ready" once the first load is under way.
func crashLoadChild(dir string, _ uint64) error {
	s, err := Open(Options{Dir: dir, Small: true})
	if err != nil {
		return err
	}
	r, err := s.Replica(crashLoadReplica.Table, crashLoadReplica.Partition)
	if err != nil {
		return err
	}
	for round := 0; ; round++ {
		if err := r.BeginLoad(); err != nil {
			return err
		}
		for c := range crashLoadChunks {
			entries := make([]wire.SnapEntry, crashLoadKeys)
			for j := range entries {
				entries[j] = crashLoadEntry(c*crashLoadKeys + j)
			}
			if err := r.LoadChunk(entries); err != nil {
				return err
			}
			if round == 0 && c == 2 {
				fmt.Println("ready")
			}
		}
		if err := r.FinishLoad(1, 100, []wire.GenStart{{Gen: 1, Seq: 1}}); err != nil {
			return err
		}
	}
}

// A full sync killed at any point leaves the replica either complete, with
// the whole snapshot, or Incomplete, in which case it loads again from
// scratch; never a partial copy that claims to be complete.
func TestCrashDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	delays := []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond}
	for round, delay := range delays {
		killChild(t, round, delay, crashDirEnv+"="+dir, crashGenEnv+"=1", crashLoadEnv+"=1")

		s := openStore(t, testOptions(t, dir, nil))
		r := replica(t, s, crashLoadReplica.Table, crashLoadReplica.Partition)
		st := r.State()
		found := st.Incomplete
		if st.Incomplete {
			wantErr(t, errOf(r.Get([]byte("k000000"))), ErrIncomplete)
			if _, err := r.Snapshot(); err != ErrIncomplete {
				t.Fatalf("round %d: Snapshot of an incomplete replica: %v", round, err)
			}
			// The next load starts over and completes.
			if err := r.BeginLoad(); err != nil {
				t.Fatal(err)
			}
			entries := make([]wire.SnapEntry, 0, crashLoadChunks*crashLoadKeys)
			for i := range crashLoadChunks * crashLoadKeys {
				entries = append(entries, crashLoadEntry(i))
			}
			if err := r.LoadChunk(entries); err != nil {
				t.Fatal(err)
			}
			if err := r.FinishLoad(1, 100, []wire.GenStart{{Gen: 1, Seq: 1}}); err != nil {
				t.Fatal(err)
			}
			st = r.State()
		}
		if st.Incomplete || st.Gen != 1 || st.Seq != 100 || st.FirstSeq != 101 {
			t.Fatalf("round %d: state %+v", round, st)
		}
		if n := countPrefix(t, s, r.dataPrefix(st.DataInc)); n != crashLoadChunks*crashLoadKeys {
			t.Fatalf("round %d: complete replica holds %d keys, want %d", round, n, crashLoadChunks*crashLoadKeys)
		}
		for _, i := range []int{0, crashLoadKeys, crashLoadChunks*crashLoadKeys - 1} {
			e := crashLoadEntry(i)
			v, _, ok, err := r.Get(e.Key)
			if err != nil || !ok || !bytes.Equal(v, e.Value) {
				t.Fatalf("round %d: Get(%s) = %d bytes, %v", round, e.Key, len(v), err)
			}
		}
		t.Logf("round %d (kill after ready+%v): found incomplete: %v", round, delay, found)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// killChild starts this test binary as a crash child with env added, waits
// until it says "ready", lets it run for delay and kills it (SIGKILL).
func killChild(t *testing.T, round int, delay time.Duration, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child said %q (%v); stderr:\n%s", round, line, err, stderr.String())
	}
	time.Sleep(delay)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
}
