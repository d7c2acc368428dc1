package resp

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// waitStep bounds one wait of WAIT on the data nodes; a longer (or
// unbounded) WAIT asks again until it has its replicas or its time is up.
const waitStep = time.Second

// cmdWait is Redis WAIT numreplicas timeout: it blocks until numreplicas
// slaves of every partition this connection has written to have
// acknowledged everything it wrote there, or timeout milliseconds pass (0:
// no limit), and replies with the smallest number of slaves that had. A
// connection that has written nothing gets 0 at once, as from a Redis
// master without replicas.
func (c *conn) cmdWait(ctx context.Context, args [][]byte) {
	n, ok := wire.ParseInt(args[1])
	if !ok || n > 1<<20 {
		c.error(errNotInteger)
		return
	}
	ms, ok := wire.ParseInt(args[2])
	if !ok {
		c.error("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.error("ERR timeout is negative")
		return
	}
	want := int(max(n, 0))
	var deadline time.Time
	if ms > 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	if c.writes.Len() == 0 {
		c.out.int(0)
		return
	}
	for {
		step := waitStep
		if !deadline.IsZero() {
			step = min(step, time.Until(deadline))
		}
		start := time.Now()
		got, err := c.s.c.WaitReplicas(ctx, want, max(step, time.Millisecond))
		if err != nil {
			c.clientError(err)
			return
		}
		if got >= want || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			c.out.int(int64(got))
			return
		}
		if time.Since(start) < step/2 {
			// The nodes answered early without enough replicas (a master
			// changing hands): ask again shortly rather than at once.
			select {
			case <-time.After(min(50*time.Millisecond, step)):
			case <-ctx.Done():
				c.clientError(ctx.Err())
				return
			}
		}
	}
}
