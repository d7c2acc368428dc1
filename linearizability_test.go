package zeppelin_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// The linearizability check of sync tables: clients run single-key
// operations on a handful of keys of a sync table while a nemesis kills,
// isolates, pauses and restarts data nodes; every operation is recorded
// with its invocation and response times and its outcome, and porcupine
// checks that the history is linearizable against a register-per-key
// model. An operation whose outcome the client cannot know (a timeout, or
// ErrAmbiguous) is recorded as pending forever: it may have taken effect
// at any point after its call, or not at all. One that certainly did not
// happen (ErrNotEnoughReplicas, ErrUnavailable: nothing was applied) is
// left out. Alongside, a writer fills write-once keys and records those
// acknowledged; at the end every one of them must be readable and every
// replica identical.

// linOpKind is the kind of a register operation.
type linOpKind uint8

const (
	linGet        linOpKind = iota
	linSet                  // unconditional write of a fresh value
	linIncr                 // add 1 (a missing key counts as 0)
	linSetAbsent            // write only if the key is missing
	linSetPresent           // write only if the key exists
)

func (k linOpKind) String() string {
	return [...]string{"get", "set", "incr", "set-if-absent", "set-if-present"}[k]
}

type linInput struct {
	op    linOpKind
	key   string
	value int64 // the value a write stores
}

type linOutput struct {
	unknown bool  // the client cannot tell whether it took effect
	found   bool  // get: the key existed
	value   int64 // get: the value read; incr: the result
	written bool  // conditional writes: the condition held
}

// linState is one key's register: missing, or holding value.
type linState struct {
	found bool
	value int64
}

// linModel is the register-per-key specification, partitioned by key.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.op {
		case linGet:
			return out.unknown || out.found == s.found && (!s.found || out.value == s.value), s
		case linSet:
			return true, linState{true, in.value}
		case linIncr:
			next := linState{true, 1}
			if s.found {
				next.value = s.value + 1
			}
			return out.unknown || out.value == next.value, next
		case linSetAbsent, linSetPresent:
			holds := s.found == (in.op == linSetPresent)
			if !out.unknown && out.written != holds {
				return false, s
			}
			if holds {
				return true, linState{true, in.value}
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		res := ""
		switch {
		case out.unknown:
			res = "?"
		case in.op == linGet && !out.found:
			res = "missing"
		case in.op == linGet, in.op == linIncr:
			res = strconv.FormatInt(out.value, 10)
		case in.op == linSet:
			res = "ok"
		default:
			res = strconv.FormatBool(out.written)
		}
		if in.op == linGet || in.op == linIncr {
			return fmt.Sprintf("%s(%s) → %s", in.op, in.key, res)
		}
		return fmt.Sprintf("%s(%s, %d) → %s", in.op, in.key, in.value, res)
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		if !s.found {
			return "missing"
		}
		return strconv.FormatInt(s.value, 10)
	},
}

// linHistory collects operations from concurrent clients.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// Outcomes, for the report.
	acked, unknown, failed int
}

func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *linHistory) add(op porcupine.Operation, unknown, failed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case failed:
		h.failed++
		return
	case unknown:
		h.unknown++
	default:
		h.acked++
	}
	h.ops = append(h.ops, op)
}

// linDefinitelyNotApplied reports whether err says the operation was
// certainly not applied.
func linDefinitelyNotApplied(err error) bool {
	if errors.Is(err, client.ErrAmbiguous) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, client.ErrNotEnoughReplicas) || errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrNoMeta)
}

// linDo runs one operation and records it.
func linDo(h *linHistory, id int, tb *client.Table, in linInput, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	key := []byte(in.key)
	val := []byte(strconv.FormatInt(in.value, 10))
	call := h.now()
	var out linOutput
	var err error
	switch in.op {
	case linGet:
		var v []byte
		v, err = tb.Get(ctx, key)
		switch {
		case err == nil:
			out.found = true
			out.value, err = strconv.ParseInt(string(v), 10, 64)
		case errors.Is(err, client.ErrNotFound):
			err = nil
		}
	case linSet:
		err = tb.Set(ctx, key, val)
	case linIncr:
		out.value, err = tb.Incr(ctx, key)
	case linSetAbsent:
		out.written, err = tb.SetIf(ctx, key, val, client.IfAbsent())
	case linSetPresent:
		out.written, err = tb.SetIf(ctx, key, val, client.IfPresent())
	}
	ret := h.now()
	failed := false
	if err != nil {
		if errors.Is(err, client.ErrClosed) {
			return
		}
		out = linOutput{unknown: true}
		switch {
		case in.op == linGet:
			// A failed read changed nothing: it is kept, as one that may
			// have read anything, over the time it took.
		case linDefinitelyNotApplied(err):
			failed = true
		default:
			// It may take effect at any time after its call: pending
			// until long after the history ends.
			ret = int64(24 * time.Hour)
		}
	}
	h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret}, out.unknown, failed)
}

// linConfig sets up one linearizability run.
type linConfig struct {
	seed    uint64
	faults  int // nemesis rounds
	clients int
	keys    int
	table   string
}

// linResult is what a run checked.
type linResult struct {
	ops, acked, unknown, failed int
	lost                        int // acknowledged write-once keys missing
	writeOnce                   int // acknowledged write-once keys
	ok                          bool
	faults                      map[string]int
}

// linNemesis is one fault: it starts, holds for a while, and is healed.
type linNemesis struct {
	name string
	// do applies the fault to partition p of the table and returns the
	// function that heals it.
	do func(c *testcluster.Cluster, metas []string, p placement.Partition, rng *rand.Rand) (heal func())
}

var linNemeses = []linNemesis{
	{"kill the master", func(c *testcluster.Cluster, _ []string, p placement.Partition, _ *rand.Rand) func() {
		i := c.Index(p.Master)
		c.Stop(i)
		return func() { c.Restart(i, true) }
	}},
	{"isolate the master from meta", func(c *testcluster.Cluster, metas []string, p placement.Partition, _ *rand.Rand) func() {
		for _, m := range metas {
			c.Hub.Block(string(p.Master), m)
		}
		return c.Hub.Heal
	}},
	{"isolate the master from its slaves", func(c *testcluster.Cluster, _ []string, p placement.Partition, _ *rand.Rand) func() {
		for _, s := range p.Slaves {
			c.Hub.Block(string(p.Master), string(s))
		}
		return c.Hub.Heal
	}},
	{"isolate a slave", func(c *testcluster.Cluster, _ []string, p placement.Partition, rng *rand.Rand) func() {
		if len(p.Slaves) == 0 {
			return func() {}
		}
		isolate(c, p.Slaves[rng.IntN(len(p.Slaves))])
		return c.Hub.Heal
	}},
	{"pause the master", func(c *testcluster.Cluster, _ []string, p placement.Partition, _ *rand.Rand) func() {
		i := c.Index(p.Master)
		c.Pause(i)
		return func() { c.Resume(i) }
	}},
	{"restart a slave", func(c *testcluster.Cluster, _ []string, p placement.Partition, rng *rand.Rand) func() {
		if len(p.Slaves) == 0 {
			return func() {}
		}
		i := c.Index(p.Slaves[rng.IntN(len(p.Slaves))])
		c.Stop(i)
		c.Restart(i, false)
		return func() {}
	}},
}

// runLinearizability runs one nemesis history on a fresh cluster and
// checks it. On a violation it writes porcupine's visualization to a file
// and names it in the failure.
func runLinearizability(t *testing.T, cfg linConfig) linResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x5eed))
	c := splitCluster(t, 1, 4, nil)
	metas := []string{c.Member(0).Name}
	c.CreateTable(cfg.table, client.TableOptions{Partitions: 4, Replication: 3, Mode: placement.ModeSync})
	ctx := ctxFor(t, time.Duration(cfg.faults)*time.Minute+5*time.Minute)

	h := &linHistory{start: time.Now()}
	// Each nemesis round works on keys of its own: porcupine checks each
	// key's history apart, and an operation of unknown outcome stays
	// pending to the end of its key's history, so short histories per key
	// keep the search small.
	var gen atomic.Int64
	keyOf := func(g int64, i int) string { return fmt.Sprintf("g%d-k%d", g, i) }
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := range cfg.clients {
		cl := c.NewClient(fmt.Sprintf("lin%d", id))
		crng := rand.New(rand.NewPCG(cfg.seed+uint64(id)+1, 7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := cl.Table(cfg.table)
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := linInput{key: keyOf(gen.Load(), crng.IntN(cfg.keys)), value: seq.Add(1)}
				switch r := crng.IntN(20); {
				case r < 8:
					in.op = linGet
				case r < 13:
					in.op = linSet
				case r < 16:
					in.op = linIncr
				case r < 18:
					in.op = linSetAbsent
				default:
					in.op = linSetPresent
				}
				linDo(h, id, tb, in, 2*time.Second)
				time.Sleep(time.Duration(crng.IntN(3)) * time.Millisecond)
			}
		}()
	}
	// Write-once keys: every acknowledged one must survive.
	acks := newAckLog()
	wcl := c.NewClient("lin-writer")
	stopWriters := startWriters(2, func(w, i int) bool {
		select {
		case <-stop:
			return false
		default:
		}
		k := fmt.Sprintf("once-%d-%d", w, i)
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := wcl.Table(cfg.table).Set(wctx, []byte(k), []byte(k)); err == nil {
			acks.add(k, k)
		}
		return true
	})

	res := linResult{faults: map[string]int{}}
	waitOps(t, c.Client(1), cfg.table)
	for r := range cfg.faults {
		gen.Store(int64(r))
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		nm := linNemeses[rng.IntN(len(linNemeses))]
		if cfg.faults >= len(linNemeses) && r < cfg.faults/len(linNemeses)*len(linNemeses) {
			nm = linNemeses[(r+int(cfg.seed%uint64(len(linNemeses))))%len(linNemeses)] // every kind equally often
		}
		key := keyOf(int64(r), rng.IntN(cfg.keys))
		m := c.Map()
		p := m.Table(cfg.table).Partitions[placement.PartitionOf([]byte(key), len(m.Table(cfg.table).Partitions))]
		hold := time.Duration(1000+rng.IntN(2500)) * time.Millisecond
		t.Logf("linearizability: round %d: %s (partition %d, master %s, slaves %v) for %v", r+1, nm.name, p.ID, p.Master, p.Slaves, hold)
		res.faults[nm.name]++
		heal := nm.do(c, metas, p, rng)
		time.Sleep(hold)
		heal()
		waitAllUpAndMastered(c, time.Minute)
	}
	time.Sleep(time.Second) // a last stretch without faults
	close(stop)
	wg.Wait()
	stopWriters()

	// Final reads, through a fresh client, once the cluster has settled.
	waitAllUpAndMastered(c, time.Minute)
	final := c.NewClient("lin-final").Table(cfg.table)
	var keys []string
	for g := range int64(max(cfg.faults, 1)) {
		for i := range cfg.keys {
			keys = append(keys, keyOf(g, i))
		}
	}
	for _, k := range keys {
		c.Eventually(time.Minute, func() error {
			fh := &linHistory{start: h.start}
			linDo(fh, cfg.clients, final, linInput{op: linGet, key: k}, 10*time.Second)
			if fh.acked == 0 {
				return fmt.Errorf("final read of %s failed", k) // no effect: retried
			}
			h.add(fh.ops[0], false, false)
			return nil
		})
	}

	h.mu.Lock()
	res.ops, res.acked, res.unknown, res.failed = len(h.ops), h.acked, h.unknown, h.failed
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	check, info := porcupine.CheckOperationsVerbose(linModel, ops, 5*time.Minute)
	switch check {
	case porcupine.Ok:
		res.ok = true
	case porcupine.Illegal:
		f, err := os.CreateTemp("", "zeppelin-linearizability-*.html")
		if err == nil {
			err = porcupine.Visualize(linModel, info, f)
			f.Close()
		}
		if err != nil {
			t.Errorf("history of %d operations is not linearizable (seed %d); writing the visualization failed: %v", len(ops), cfg.seed, err)
		} else {
			t.Errorf("history of %d operations is not linearizable (seed %d): see %s", len(ops), cfg.seed, f.Name())
		}
		linExplain(t, info, ops)
	default:
		t.Errorf("porcupine could not decide within its time limit on %d operations (seed %d)", len(ops), cfg.seed)
	}

	// Every acknowledged write-once key is there, and the replicas agree.
	res.writeOnce = acks.count()
	res.lost = acks.check(t, ctx, c.NewClient("lin-check").Table(cfg.table))
	c.WaitConverged(cfg.table, 2*time.Minute)
	t.Logf("linearizability: seed %d: %d operations checked (%d acknowledged, %d unknown; %d refused, left out), %d write-once keys, %d lost, linearizable: %v",
		cfg.seed, res.ops, res.acked, res.unknown, res.failed, res.writeOnce, res.lost, res.ok)
	return res
}

// linExplain logs, for each key whose history porcupine could not
// linearize, the end of the longest linearizable prefix it found and the
// first operations it could not place after it.
func linExplain(t *testing.T, info porcupine.LinearizationInfo, ops []porcupine.Operation) {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	perKey := map[string]int{}
	for _, op := range ops {
		perKey[op.Input.(linInput).key]++
	}
	desc := func(op porcupine.Operation) string {
		ret := "never"
		if op.Return < int64(24*time.Hour) {
			ret = fmt.Sprintf("%.3fs", float64(op.Return)/1e9)
		}
		return fmt.Sprintf("client %d [%.3fs, %s] %s", op.ClientId, float64(op.Call)/1e9, ret, linModel.DescribeOperation(op.Input, op.Output))
	}
	for _, partials := range info.PartialLinearizationsOperations() {
		var best []porcupine.Operation
		for _, p := range partials {
			if len(p) > len(best) {
				best = p
			}
		}
		if len(best) == 0 {
			continue
		}
		key := best[0].Input.(linInput).key
		if len(best) == perKey[key] {
			continue
		}
		t.Logf("linearizability: key %s: %d of %d operations linearized; the last ones:", key, len(best), perKey[key])
		placed := map[int64]bool{}
		for _, op := range best {
			placed[op.Call] = true
		}
		for _, op := range best[max(0, len(best)-10):] {
			t.Logf("linearizability:   %s", desc(op))
		}
		t.Logf("linearizability: key %s: the first operations left over:", key)
		n := 0
		for _, op := range ops {
			if op.Input.(linInput).key == key && !placed[op.Call] {
				t.Logf("linearizability:   %s", desc(op))
				if n++; n == 15 {
					break
				}
			}
		}
	}
}

func envInt(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// TestLinearizability runs one nemesis history of about a minute (every
// fault kind twice) against a sync table and checks it with porcupine.
// ZEPPELIN_LIN_SEED repeats a run. The chaos build tag adds
// TestLinearizabilityLong, which runs many.
func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of faults")
	}
	seed := envInt("ZEPPELIN_LIN_SEED", uint64(time.Now().UnixNano()))
	runLinearizability(t, linConfig{seed: seed, faults: 2 * len(linNemeses), clients: 5, keys: 5, table: "lin"})
}
