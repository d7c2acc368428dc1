package resp

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
)

// txState is a transaction being queued between MULTI and EXEC.
type txState struct {
	ops    []txOp
	nops   int  // batch operations queued
	size   int  // nops, counting commands without operations as one
	failed bool // a command was rejected: EXEC answers EXECABORT
}

// txOp is one queued command: the batch operations it adds at EXEC and
// how it renders its reply from their results.
type txOp struct {
	nops  int
	add   func(b *client.Batch, now time.Time) // nil when nops is 0
	reply func(w *writer, res []client.BatchResult)
}

// abortTx marks the transaction being queued, if any, as failed, as Redis
// does when a command is unknown or has the wrong number of arguments.
func (c *conn) abortTx() {
	if c.tx != nil {
		c.tx.failed = true
	}
}

// queue validates a command issued between MULTI and EXEC and queues it,
// or rejects it with an error that makes EXEC fail.
func (c *conn) queue(cmd *command, args [][]byte) {
	if cmd.tx == nil {
		name := strings.ToUpper(cmd.name)
		switch {
		case cmd.flags&flagReadonly != 0:
			c.error("ERR " + name + " is not supported inside MULTI: a transaction runs as one atomic batch of writes; read before MULTI or after EXEC")
		case cmd.name == "getset":
			c.error("ERR GETSET is not supported inside MULTI: a batch cannot return the old value")
		default:
			c.error("ERR " + name + " is not allowed inside MULTI")
		}
		c.tx.failed = true
		return
	}
	// The arguments alias the read buffer: keep copies.
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = bytes.Clone(a)
	}
	op, e := cmd.tx(c, cp)
	if e != "" {
		c.error(e)
		c.tx.failed = true
		return
	}
	// Commands without operations (PING) count as one, so that the queue
	// stays bounded too.
	if limit := c.s.c.Limits().MaxBatchOps; c.tx.size+max(op.nops, 1) > limit {
		c.error("ERR transaction exceeds the limit of " + strconv.Itoa(limit) + " operations")
		c.tx.failed = true
		return
	}
	c.tx.ops = append(c.tx.ops, op)
	c.tx.nops += op.nops
	c.tx.size += max(op.nops, 1)
	c.out.simple("QUEUED")
}

func (c *conn) cmdMulti(ctx context.Context, _ [][]byte) {
	if c.tx != nil {
		c.error(errNested)
		return
	}
	c.tx = &txState{}
	c.out.ok()
}

func (c *conn) cmdDiscard(ctx context.Context, _ [][]byte) {
	if c.tx == nil {
		c.error(errDiscardNoMult)
		return
	}
	c.tx = nil
	c.out.ok()
}

func (c *conn) cmdWatch(ctx context.Context, _ [][]byte) {
	if c.tx != nil {
		c.error("ERR WATCH inside MULTI is not allowed")
		return
	}
	c.error("ERR WATCH is not supported: transactions are atomic batches on keys of one hashtag")
}

func (c *conn) cmdUnwatch(ctx context.Context, _ [][]byte) { c.out.ok() }

// cmdExec commits the queued commands as one atomic client batch. The
// batch's routing key is fixed by the first key; a key that routes
// differently makes the whole transaction fail with CROSSSLOT before
// anything is sent. A command that fails at run time (INCR of a
// non-integer) fails the whole batch: nothing is written and EXEC answers
// that error instead of an array.
func (c *conn) cmdExec(ctx context.Context, _ [][]byte) {
	if c.tx == nil {
		c.error(errExecNoMulti)
		return
	}
	tx := c.tx
	c.tx = nil
	if tx.failed {
		c.error(errExecAbort)
		return
	}
	var res []client.BatchResult
	if tx.nops > 0 {
		b := c.table.Batch(nil)
		now := time.Now()
		for _, op := range tx.ops {
			if op.add != nil {
				op.add(b, now)
			}
		}
		var err error
		if res, err = b.Commit(ctx); err != nil {
			c.clientError(err)
			return
		}
	}
	c.out.array(len(tx.ops))
	off := 0
	for _, op := range tx.ops {
		op.reply(&c.out, res[off:off+op.nops])
		off += op.nops
	}
}

func replyOK(w *writer, _ []client.BatchResult) { w.ok() }

func replyDone(w *writer, res []client.BatchResult) { w.boolInt(res[0].Done) }

func txSet(_ *conn, args [][]byte) (txOp, string) {
	sp, e := parseSet(args)
	if e != "" {
		return txOp{}, e
	}
	if sp.get {
		return txOp{}, "ERR SET with the GET option is not supported inside MULTI"
	}
	if _, e := sp.ttl("set", time.Now()); e != "" {
		return txOp{}, e
	}
	return txOp{
		nops: 1,
		add: func(b *client.Batch, now time.Time) {
			ttl, _ := sp.ttl("set", now)
			b.Set(sp.key, sp.value, sp.options(ttl)...)
		},
		reply: func(w *writer, res []client.BatchResult) {
			if res[0].Done {
				w.ok()
			} else {
				w.null()
			}
		},
	}, ""
}

func txSetNX(_ *conn, args [][]byte) (txOp, string) {
	return txOp{
		nops:  1,
		add:   func(b *client.Batch, _ time.Time) { b.Set(args[1], args[2], client.IfAbsent()) },
		reply: replyDone,
	}, ""
}

func txSetEX(_ *conn, args [][]byte) (txOp, string) {
	ttl, e := setexTTL(args)
	if e != "" {
		return txOp{}, e
	}
	return txOp{
		nops:  1,
		add:   func(b *client.Batch, _ time.Time) { b.Set(args[1], args[3], client.WithTTL(ttl)) },
		reply: replyOK,
	}, ""
}

func txMSet(_ *conn, args [][]byte) (txOp, string) {
	kvs, ok := pairs(args)
	if !ok {
		return txOp{}, "ERR wrong number of arguments for 'mset' command"
	}
	return txOp{
		nops: len(kvs),
		add: func(b *client.Batch, _ time.Time) {
			for _, kv := range kvs {
				b.Set(kv.Key, kv.Value)
			}
		},
		reply: replyOK,
	}, ""
}

func txIncr(_ *conn, args [][]byte) (txOp, string) {
	delta, e := incrDelta(args)
	if e != "" {
		return txOp{}, e
	}
	return txOp{
		nops:  1,
		add:   func(b *client.Batch, _ time.Time) { b.IncrBy(args[1], delta) },
		reply: func(w *writer, res []client.BatchResult) { w.int(res[0].Int) },
	}, ""
}

func txDel(_ *conn, args [][]byte) (txOp, string) {
	keys := args[1:]
	return txOp{
		nops: len(keys),
		add: func(b *client.Batch, _ time.Time) {
			for _, k := range keys {
				b.Delete(k)
			}
		},
		reply: func(w *writer, res []client.BatchResult) {
			n := 0
			for _, r := range res {
				if r.Done {
					n++
				}
			}
			w.int(int64(n))
		},
	}, ""
}

func txExpire(_ *conn, args [][]byte) (txOp, string) {
	ttl, e := expireTTL(args)
	if e != "" {
		return txOp{}, e
	}
	return txOp{
		nops:  1,
		add:   func(b *client.Batch, _ time.Time) { b.Expire(args[1], ttl) },
		reply: replyDone,
	}, ""
}

func txPersist(_ *conn, args [][]byte) (txOp, string) {
	return txOp{
		nops:  1,
		add:   func(b *client.Batch, _ time.Time) { b.Persist(args[1]) },
		reply: replyDone,
	}, ""
}

func txPing(_ *conn, args [][]byte) (txOp, string) {
	if len(args) > 2 {
		return txOp{}, "ERR wrong number of arguments for 'ping' command"
	}
	return txOp{reply: func(w *writer, _ []client.BatchResult) {
		if len(args) == 2 {
			w.bulk(args[1])
		} else {
			w.simple("PONG")
		}
	}}, ""
}

func txEcho(_ *conn, args [][]byte) (txOp, string) {
	return txOp{reply: func(w *writer, _ []client.BatchResult) { w.bulk(args[1]) }}, ""
}
