package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// How the commands that talk to a cluster report failures: "what: why",
// each thing said once (opError), or, when no --addr led to the cluster,
// one line per address saying why (reachError).

// opError is the failure of an operation: "what: err". The client's
// sentinels and the meta group's messages may say a thing twice ("outcome
// unknown: outcome unknown: ...") or name the operation again ("migrate:
// unknown node n9" under "migrate table t partition 0 from n1 to n9"):
// Error says each once. The error itself is kept for errors.Is.
type opError struct {
	what string
	err  error
}

func (e opError) Error() string { return e.what + ": " + sayOnce(e.what, e.err) }

func (e opError) Unwrap() error { return e.err }

// sentinelTexts are the texts of the client's sentinels, without the
// "zeppelin: " prefix, as they lead the messages of the errors wrapping
// them.
func sentinelTexts() []string {
	var out []string
	for _, s := range []error{
		client.ErrNotFound, client.ErrTableNotFound, client.ErrTableExists, client.ErrClosed,
		client.ErrUnavailable, client.ErrInvalid, client.ErrNotInteger, client.ErrOverflow,
		client.ErrCrossSlot, client.ErrNotEnoughReplicas, client.ErrAmbiguous, client.ErrUnknownName,
		client.ErrNoMeta, client.ErrMetaMemberNotFound,
	} {
		out = append(out, strings.TrimPrefix(s.Error(), "zeppelin: "))
	}
	return out
}

// sayOnce returns err's message for the operation what: without the
// "zeppelin: " prefixes, with a part repeated at once said once, with the
// operation's name dropped when the message starts with it (after the
// client's sentinels), and without "no such meta member", which the meta
// group's message says in its own words.
func sayOnce(what string, err error) string {
	var parts []string
	for p := range strings.SplitSeq(err.Error(), ": ") {
		if p == "zeppelin" || len(parts) > 0 && parts[len(parts)-1] == p {
			continue
		}
		parts = append(parts, p)
	}
	sentinels := sentinelTexts()
	memberGone := strings.TrimPrefix(client.ErrMetaMemberNotFound.Error(), "zeppelin: ")
	for i := 0; i < len(parts)-1; i++ {
		if parts[i] == memberGone && errors.Is(err, client.ErrMetaMemberNotFound) {
			parts = slices.Delete(parts, i, i+1)
			i--
			continue
		}
		if slices.Contains(sentinels, parts[i]) {
			continue
		}
		if namesOp(what, parts[i]) {
			parts = slices.Delete(parts, i, i+1)
		}
		break
	}
	return strings.Join(parts, ": ")
}

// namesOp reports whether part names the operation what: its first word
// is what's and its words are some of what's, in order ("migrate" and
// "remove member 9" name "migrate table t partition 0 from n1 to n2" and
// "remove meta member 9").
func namesOp(what, part string) bool {
	ww, pw := strings.Fields(what), strings.Fields(part)
	if len(pw) == 0 || len(pw) > 4 || len(ww) == 0 || pw[0] != ww[0] {
		return false
	}
	i := 0
	for _, w := range ww {
		if i < len(pw) && w == pw[i] {
			i++
		}
	}
	return i == len(pw)
}

// reachError is the failure of a command that reached no cluster member:
// why says, one line per --addr, what answered there. It wraps the
// client's error too (ErrNoMeta).
type reachError struct {
	why error
	err error
}

func (e reachError) Error() string { return e.why.Error() }

func (e reachError) Unwrap() []error { return []error{e.why, e.err} }

// probeTimeout bounds the probe of one address.
const probeTimeout = 500 * time.Millisecond

// unreachable returns a reachError when err says no meta member could be
// found through --addr and probing each address afresh tells why: nothing
// listens there, another kind of server answers, or a Zeppelin process
// that knows no meta member yet. It returns nil when err is another error
// or some address answers as a member that knows the meta group (its
// members did not answer, which err says).
func (o *clientOptions) unreachable(err error) error {
	if !errors.Is(err, client.ErrNoMeta) || len(o.addrs) == 0 {
		return nil
	}
	whys := make([]error, len(o.addrs))
	var wg sync.WaitGroup
	for i, addr := range o.addrs {
		wg.Go(func() { whys[i] = probe(addr) })
	}
	wg.Wait()
	if slices.Contains(whys, nil) {
		return nil
	}
	return reachError{why: errors.Join(whys...), err: err}
}

// probe dials addr and says hello, and returns why addr does not lead to
// the cluster, or nil when it answers as a member that knows the meta
// group.
func probe(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c, err := rpc.Dial(ctx, rpc.DialConfig{}, addr)
	if err == nil {
		h := c.Hello()
		c.Close()
		if len(h.Meta) == 0 && h.Roles&wire.RoleMeta == 0 {
			return fmt.Errorf("%s is a Zeppelin node that knows no meta member yet (is it still joining?)", addr)
		}
		return nil
	}
	var (
		pe *rpc.ProtocolError
		op *net.OpError
	)
	switch {
	case errors.As(err, &pe):
		hint := "give the RPC address (zeppelin serve --rpc-addr)"
		if pe.Peer == "RESP" {
			hint = "use redis-cli there or give the RPC address (zeppelin serve --rpc-addr)"
		}
		return fmt.Errorf("%s; %s", strings.TrimPrefix(pe.Error(), "rpc: "), hint)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot connect to %s: %s", addr, dialCause(op))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%s closed the connection without answering the Zeppelin hello (not a Zeppelin RPC port?)", addr)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s accepted the connection but did not answer the Zeppelin hello within %v (a paused process, or not a Zeppelin RPC port?)", addr, probeTimeout)
	}
	return fmt.Errorf("cannot talk to %s: %w", addr, err)
}

// dialCause is why a dial failed, in the words of the system call
// ("connection refused") when there is one.
func dialCause(op *net.OpError) string {
	if op.Timeout() {
		return "timed out"
	}
	var se *os.SyscallError
	if errors.As(op.Err, &se) {
		return se.Err.Error()
	}
	return op.Err.Error()
}

// failure is the error of a command that failed doing what: why the
// cluster could not be reached through --addr when that is the reason
// (unreachable), and "what: err" said once otherwise, err made actionable
// by clusterErr.
func (o *clientOptions) failure(what string, err error) error {
	if re := o.unreachable(err); re != nil {
		return re
	}
	return opError{what: what, err: o.clusterErr(err)}
}

// problemLines returns err's message as printError prints it: one line per
// problem (errors.Join separates problems with newlines), without the
// "zeppelin: " prefixes.
func problemLines(err error) []string {
	var out []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		line = strings.TrimSpace(strings.ReplaceAll(line, ": zeppelin: ", ": "))
		line = strings.TrimPrefix(line, "zeppelin: ")
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}
