package resp

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// Runs: a pipelined command of some kinds (GET, plain SET, MSET, INCR and its
// kin) is answered together with the commands of the same kind that
// immediately follow it in the read buffer, as long as the client's map
// places their keys on the same master node: they are sent as one
// multi-key client call, one request to that node, instead of one round
// trip each. Replies keep the commands' order, and the command after the
// run is not executed before the run is answered, so a connection always
// sees its own writes.

// Bounds of one run.
const (
	maxRun      = 256
	maxRunBytes = 4 << 20 // of a write run's keys and values
)

// masterOf returns the master of key's partition in tbl.
func masterOf(tbl *placement.Table, key []byte) placement.NodeID {
	return tbl.Partitions[placement.PartitionOf(key, len(tbl.Partitions))].Master
}

// runNode returns the connection's table in the client's map and the
// master node of key's partition, which a run's keys must all have; node
// is empty when the map is not at hand or the table has no partitions.
func (c *conn) runNode(ctx context.Context, key []byte) (tbl *placement.Table, node placement.NodeID) {
	m, err := c.s.c.Map(ctx)
	if err != nil {
		return nil, ""
	}
	tbl = m.Table(c.table.Name())
	if tbl == nil || len(tbl.Partitions) == 0 {
		return nil, ""
	}
	return tbl, masterOf(tbl, key)
}

// runItem is one command of a run: its key and the argument the run needs
// (a SET's value, an INCRBY's delta as written).
type runItem struct {
	key, arg []byte
	cmd      *command
}

// collectRun looks past the command being run (whose key is first) for
// the commands that take accepts, up to limit in all and maxBytes of keys
// and arguments, all on first's master node. It fills c.runKeys, c.runVals
// and c.runCmds with the run, first included (its arg is firstArg and its
// command cmd), advances c.r past the run and counts its commands. It
// reports false, having done nothing, when not even one command follows.
// The slices alias the read buffer: call endRun once the run is answered.
func (c *conn) collectRun(ctx context.Context, cmd *command, first, firstArg []byte, limit, maxBytes int,
	accept func(a [][]byte) (runItem, bool)) bool {
	if limit < 2 {
		return false
	}
	next := func(pos int) (runItem, int) {
		a, n, _, err := parse(c.rbuf[pos:c.w], c.peek, c.s.cfg.MaxBulk, c.s.cfg.MaxArgs)
		c.peek = a
		if err != nil || n == 0 || len(a) == 0 {
			return runItem{}, 0
		}
		it, ok := accept(a)
		if !ok {
			return runItem{}, 0
		}
		return it, n
	}
	// Look at the next command before anything else: most commands are
	// not followed by another of their kind.
	second, n := next(c.r)
	if n == 0 {
		return false
	}
	tbl, node := c.runNode(ctx, first)
	if node == "" || masterOf(tbl, second.key) != node {
		return false
	}
	keys := append(c.runKeys[:0], first, second.key)
	vals := append(c.runVals[:0], firstArg, second.arg)
	cmds := append(c.runCmds[:0], cmd, second.cmd)
	size := len(first) + len(firstArg) + len(second.key) + len(second.arg)
	pos := c.r + n
	for len(keys) < limit {
		it, n := next(pos)
		if n == 0 || masterOf(tbl, it.key) != node || size+len(it.key)+len(it.arg) > maxBytes {
			break
		}
		keys, vals, cmds = append(keys, it.key), append(vals, it.arg), append(cmds, it.cmd)
		size += len(it.key) + len(it.arg)
		pos += n
	}
	c.runKeys, c.runVals, c.runCmds = keys, vals, cmds
	c.r = pos
	c.cmds += uint64(len(keys) - 1)
	c.s.runs.Add(1)
	c.s.runCmds.Add(uint64(len(keys)))
	return true
}

// endRun counts the run's commands after the first (exec counts that one)
// with their errors, given errs[i] for each, and lets go of the read buffer.
func (c *conn) endRun(errs []error) {
	for i, cmd := range c.runCmds[1:] {
		c.s.countCalls(cmd, 1, errs != nil && errs[i+1] != nil)
	}
	clear(c.runKeys)
	clear(c.runVals)
	clear(c.runCmds)
	clear(c.peek)
	c.runKeys, c.runVals, c.runCmds = c.runKeys[:0], c.runVals[:0], c.runCmds[:0]
}

// getRun answers a GET of first with the GETs that follow it (see Runs),
// as one MGet, which the node answers by reading the keys one after
// another in order: the same as separate GETs. Keys on another node end
// the run, because the client reads different nodes in parallel, which
// could show two keys out of order.
func (c *conn) getRun(ctx context.Context, cmd *command, first []byte) bool {
	// What a run may return is bounded, whatever the values' sizes: at
	// most MaxRunBytes.
	lim := c.s.c.Limits()
	limit := min(maxRun, lim.MaxMultiKeys, c.s.cfg.MaxRunBytes/max(lim.MaxValueSize, 1))
	ok := c.collectRun(ctx, cmd, first, nil, limit, maxRunBytes, func(a [][]byte) (runItem, bool) {
		if len(a) != 2 || !equalFold(a[0], "get") {
			return runItem{}, false
		}
		return runItem{key: a[1], cmd: cmd}, true
	})
	if !ok {
		return false
	}
	keys := c.runKeys
	res, err := c.table.MGet(ctx, keys)
	if err != nil {
		c.getRunFailed(ctx, keys, res, err)
		c.endRun(nil)
		return true
	}
	for _, r := range res {
		if r.Found {
			c.out.bulk(r.Value)
		} else {
			c.out.null()
		}
	}
	c.endRun(nil)
	return true
}

// setRun answers a plain SET (SET key value, nothing else) with the plain
// SETs that follow it (see Runs), as one client.Table.SetEach: the node
// applies the SETs of each partition in order as one group and commits the
// partitions' groups in parallel. SETs of one key keep their order; other
// connections may see the run's keys of different partitions change in
// another order than they were sent, until the replies are sent.
func (c *conn) setRun(ctx context.Context, cmd *command, key, value []byte) bool {
	lim := c.s.c.Limits()
	ok := c.collectRun(ctx, cmd, key, value, min(maxRun, lim.MaxMultiKeys, lim.MaxBatchOps), maxRunBytes,
		func(a [][]byte) (runItem, bool) {
			if len(a) != 3 || !equalFold(a[0], "set") {
				return runItem{}, false
			}
			return runItem{key: a[1], arg: a[2], cmd: cmd}, true
		})
	if !ok {
		return false
	}
	kvs := c.runKVs[:0]
	for i, k := range c.runKeys {
		kvs = append(kvs, client.KV{Key: k, Value: c.runVals[i]})
	}
	errs := c.table.SetEach(ctx, kvs)
	for i := range kvs {
		if errs != nil && errs[i] != nil {
			c.clientError(errs[i])
		} else {
			c.out.ok()
		}
	}
	clear(kvs)
	c.runKVs = kvs[:0]
	c.endRun(errs)
	return true
}

// incrRun answers an INCR, DECR, INCRBY or DECRBY with the commands of
// those four that follow it (see Runs), as one client.Table.IncrEach, in
// the order setRun describes. A command with a bad argument ends the run
// before it, and is then answered on its own.
func (c *conn) incrRun(ctx context.Context, cmd *command, key []byte, delta int64) bool {
	lim := c.s.c.Limits()
	deltas := append(c.runDelta[:0], delta)
	ok := c.collectRun(ctx, cmd, key, nil, min(maxRun, lim.MaxMultiKeys, lim.MaxBatchOps), maxRunBytes,
		func(a [][]byte) (runItem, bool) {
			next := c.s.lookup(a[0])
			if next == nil || next.run == nil || !isIncr(next) || !next.arityOK(len(a)) {
				return runItem{}, false
			}
			d, e := incrDelta(a)
			if e != "" {
				return runItem{}, false
			}
			deltas = append(deltas, d)
			return runItem{key: a[1], cmd: next}, true
		})
	if !ok {
		c.runDelta = deltas[:0]
		return false
	}
	// deltas may hold one more than the run when the command that ended
	// it was an increment on another node.
	deltas = deltas[:len(c.runKeys)]
	vals, errs := c.table.IncrEach(ctx, c.runKeys, deltas)
	for i := range c.runKeys {
		if errs != nil && errs[i] != nil {
			c.clientError(errs[i])
		} else {
			c.out.int(vals[i])
		}
	}
	c.runDelta = deltas[:0]
	c.endRun(errs)
	return true
}

// isIncr reports whether cmd is INCR, DECR, INCRBY or DECRBY.
func isIncr(cmd *command) bool {
	switch cmd.name {
	case "incr", "decr", "incrby", "decrby":
		return true
	}
	return false
}

// msetRun answers an MSET with the MSETs that follow it (see Runs), as
// one client.Table.SetEach of all their pairs in order: each partition's
// pairs, from every MSET of the run, are written in order as one atomic
// group, so each MSET is as atomic per partition as on its own and a key
// set twice keeps the later value. An MSET is answered OK when all its
// pairs were written, else with the first of its pairs' errors. Every key
// of the run is on one master node, and an MSET the client's limits would
// refuse ends the run before it (the first one: there is no run), so that
// it fails whole, as on its own. first are the first MSET's pairs.
func (c *conn) msetRun(ctx context.Context, cmd *command, first []client.KV) bool {
	lim := c.s.c.Limits()
	limit := min(maxRun, lim.MaxMultiKeys, lim.MaxBatchOps)
	inLimits := func(key, value []byte) bool {
		return len(key) > 0 && len(key) <= lim.MaxKeySize && len(value) <= lim.MaxValueSize
	}
	// next parses the command at pos: an MSET in the limits, its pairs
	// appended to kvs, and its length; 0 for anything else.
	next := func(pos int, kvs []client.KV) ([]client.KV, int) {
		a, n, _, err := parse(c.rbuf[pos:c.w], c.peek, c.s.cfg.MaxBulk, c.s.cfg.MaxArgs)
		c.peek = a
		if err != nil || n == 0 || len(a) < 3 || len(a)%2 != 1 || !equalFold(a[0], "mset") || len(kvs)+len(a)/2 > limit {
			return kvs, 0
		}
		mark := len(kvs)
		for i := 1; i+1 < len(a); i += 2 {
			if !inLimits(a[i], a[i+1]) {
				clear(kvs[mark:])
				return kvs[:mark], 0
			}
			kvs = append(kvs, client.KV{Key: a[i], Value: a[i+1]})
		}
		return kvs, n
	}
	if len(first) > limit {
		return false
	}
	for _, kv := range first {
		if !inLimits(kv.Key, kv.Value) {
			return false
		}
	}
	tbl, node := c.runNode(ctx, first[0].Key)
	onNode := func(kvs []client.KV) bool {
		for _, kv := range kvs {
			if masterOf(tbl, kv.Key) != node {
				return false
			}
		}
		return true
	}
	if node == "" || !onNode(first) {
		return false
	}
	kvs := append(c.runKVs[:0], first...)
	// ends[i] is where the pairs of the run's MSET i end in kvs.
	ends := append(c.runEnds[:0], len(kvs))
	size := 0
	for _, kv := range kvs {
		size += len(kv.Key) + len(kv.Value)
	}
	pos := c.r
	for len(ends) < maxRun {
		mark := len(kvs)
		var n int
		if kvs, n = next(pos, kvs); n == 0 {
			break
		}
		add := 0
		for _, kv := range kvs[mark:] {
			add += len(kv.Key) + len(kv.Value)
		}
		if size+add > maxRunBytes || !onNode(kvs[mark:]) {
			clear(kvs[mark:])
			kvs = kvs[:mark]
			break
		}
		size += add
		ends = append(ends, len(kvs))
		pos += n
	}
	defer func() {
		clear(kvs)
		clear(c.peek)
		c.runKVs, c.runEnds = kvs[:0], ends[:0]
	}()
	if len(ends) < 2 {
		return false
	}
	c.r = pos
	c.cmds += uint64(len(ends) - 1)
	c.s.runs.Add(1)
	c.s.runCmds.Add(uint64(len(ends)))
	errs := c.table.SetEach(ctx, kvs)
	start := 0
	for i, end := range ends {
		var failed error
		for j := start; errs != nil && j < end && failed == nil; j++ {
			failed = errs[j]
		}
		if failed != nil {
			c.clientError(failed)
		} else {
			c.out.ok()
		}
		if i > 0 {
			c.s.countCalls(cmd, 1, failed != nil)
		}
		start = end
	}
	return true
}
