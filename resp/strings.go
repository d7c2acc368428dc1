package resp

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// maxTTLMillis is the longest TTL a time.Duration can carry.
const maxTTLMillis = math.MaxInt64 / int64(time.Millisecond)

func invalidExpire(cmd string) string { return "ERR invalid expire time in '" + cmd + "' command" }

// equalFold reports whether b equals the lower-case ASCII word s, ignoring
// case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		ch := b[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

func (c *conn) cmdGet(ctx context.Context, args [][]byte) {
	if c.r < c.w && c.tx == nil && c.getRun(ctx, c.s.lookup(args[0]), args[1]) {
		return
	}
	c.get(ctx, args[1])
}

func (c *conn) get(ctx context.Context, key []byte) {
	v, err := c.table.Get(ctx, key)
	switch {
	case err == nil:
		c.out.bulk(v)
	case errors.Is(err, client.ErrNotFound):
		c.out.null()
	default:
		c.clientError(err)
	}
}

// getRunFailed answers the GETs of a run whose MGet failed.
func (c *conn) getRunFailed(ctx context.Context, keys [][]byte, res []client.Result, err error) {
	var me *client.MultiError
	switch {
	case errors.As(err, &me) && len(res) == len(keys):
		failed := make(map[string]error, len(me.Failed))
		for _, f := range me.Failed {
			failed[string(f.Key)] = f.Err
		}
		for i, k := range keys {
			if e, ok := failed[string(k)]; ok {
				c.clientError(e)
			} else if res[i].Found {
				c.out.bulk(res[i].Value)
			} else {
				c.out.null()
			}
		}
	case errors.Is(err, client.ErrInvalid):
		// A key over the limits fails the whole MGet: answer each GET on
		// its own, so only that key gets the error.
		for _, k := range keys {
			c.get(ctx, k)
		}
	default:
		for range keys {
			c.clientError(err)
		}
	}
}

// setSpec is a parsed SET: SET key value [NX | XX] [GET] [EX s | PX ms |
// EXAT unix-s | PXAT unix-ms | KEEPTTL].
type setSpec struct {
	key, value []byte
	nx, xx     bool
	get        bool
	keepTTL    bool
	expUnit    string // "", "ex", "px", "exat", "pxat"
	expArg     []byte
}

func parseSet(args [][]byte) (setSpec, string) {
	sp := setSpec{key: args[1], value: args[2]}
	for i := 3; i < len(args); i++ {
		a := args[i]
		switch {
		case equalFold(a, "nx") && !sp.xx:
			sp.nx = true
		case equalFold(a, "xx") && !sp.nx:
			sp.xx = true
		case equalFold(a, "get"):
			sp.get = true
		case equalFold(a, "keepttl") && sp.expUnit == "":
			sp.keepTTL = true
		case (equalFold(a, "ex") || equalFold(a, "px") || equalFold(a, "exat") || equalFold(a, "pxat")) &&
			sp.expUnit == "" && !sp.keepTTL && i+1 < len(args):
			sp.expUnit = string(toLower(a))
			sp.expArg = args[i+1]
			i++
		default:
			return sp, errSyntax
		}
	}
	return sp, ""
}

func toLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return out
}

// ttl converts the expiry option to a relative TTL (0: none). An absolute
// expiry already past becomes 1 ms, so the key vanishes at once.
func (sp *setSpec) ttl(cmd string, now time.Time) (time.Duration, string) {
	if sp.expUnit == "" {
		return 0, ""
	}
	v, ok := wire.ParseInt(sp.expArg)
	if !ok {
		return 0, errNotInteger
	}
	if v <= 0 {
		return 0, invalidExpire(cmd)
	}
	ms := v
	if sp.expUnit == "ex" || sp.expUnit == "exat" {
		if v > math.MaxInt64/1000 {
			return 0, invalidExpire(cmd)
		}
		ms = v * 1000
	}
	if sp.expUnit == "exat" || sp.expUnit == "pxat" {
		ms -= now.UnixMilli()
		if ms <= 0 {
			ms = 1
		}
	}
	if ms > maxTTLMillis {
		return 0, invalidExpire(cmd)
	}
	return time.Duration(ms) * time.Millisecond, ""
}

func (sp *setSpec) options(ttl time.Duration) []client.SetOption {
	opts := make([]client.SetOption, 0, 3)
	if sp.nx {
		opts = append(opts, client.IfAbsent())
	}
	if sp.xx {
		opts = append(opts, client.IfPresent())
	}
	if sp.keepTTL {
		opts = append(opts, client.KeepTTL())
	}
	if ttl > 0 {
		opts = append(opts, client.WithTTL(ttl))
	}
	return opts
}

func (c *conn) cmdSet(ctx context.Context, args [][]byte) {
	if len(args) == 3 {
		// Plain SET, the common case.
		if c.r < c.w && c.tx == nil && c.setRun(ctx, c.s.lookup(args[0]), args[1], args[2]) {
			return
		}
		if err := c.table.Set(ctx, args[1], args[2]); err != nil {
			c.clientError(err)
			return
		}
		c.out.ok()
		return
	}
	sp, e := parseSet(args)
	if e != "" {
		c.error(e)
		return
	}
	ttl, e := sp.ttl("set", time.Now())
	if e != "" {
		c.error(e)
		return
	}
	opts := sp.options(ttl)
	if sp.get {
		r, err := c.table.SetGet(ctx, sp.key, sp.value, opts...)
		switch {
		case err != nil:
			c.clientError(err)
		case r.Existed:
			c.out.bulk(r.Old)
		default:
			c.out.null()
		}
		return
	}
	written, err := c.table.SetIf(ctx, sp.key, sp.value, opts...)
	switch {
	case err != nil:
		c.clientError(err)
	case written:
		c.out.ok()
	default:
		c.out.null()
	}
}

func (c *conn) cmdSetNX(ctx context.Context, args [][]byte) {
	written, err := c.table.SetIf(ctx, args[1], args[2], client.IfAbsent())
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.boolInt(written)
}

// setexTTL parses the TTL of SETEX (seconds) or PSETEX (milliseconds).
func setexTTL(args [][]byte) (time.Duration, string) {
	cmd := string(toLower(args[0]))
	v, ok := wire.ParseInt(args[2])
	if !ok {
		return 0, errNotInteger
	}
	if v <= 0 || (cmd == "setex" && v > math.MaxInt64/1000) {
		return 0, invalidExpire(cmd)
	}
	if cmd == "setex" {
		v *= 1000
	}
	if v > maxTTLMillis {
		return 0, invalidExpire(cmd)
	}
	return time.Duration(v) * time.Millisecond, ""
}

func (c *conn) cmdSetEX(ctx context.Context, args [][]byte) {
	ttl, e := setexTTL(args)
	if e != "" {
		c.error(e)
		return
	}
	if err := c.table.Set(ctx, args[1], args[3], client.WithTTL(ttl)); err != nil {
		c.clientError(err)
		return
	}
	c.out.ok()
}

func (c *conn) cmdGetSet(ctx context.Context, args [][]byte) {
	r, err := c.table.SetGet(ctx, args[1], args[2])
	switch {
	case err != nil:
		c.clientError(err)
	case r.Existed:
		c.out.bulk(r.Old)
	default:
		c.out.null()
	}
}

func (c *conn) cmdMGet(ctx context.Context, args [][]byte) {
	res, err := c.table.MGet(ctx, args[1:])
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.array(len(res))
	for _, r := range res {
		if r.Found {
			c.out.bulk(r.Value)
		} else {
			c.out.null()
		}
	}
}

// pairs returns the key-value pairs of MSET's arguments.
func pairs(args [][]byte) ([]client.KV, bool) {
	if len(args)%2 != 1 {
		return nil, false
	}
	kvs := make([]client.KV, 0, len(args)/2)
	for i := 1; i+1 < len(args); i += 2 {
		kvs = append(kvs, client.KV{Key: args[i], Value: args[i+1]})
	}
	return kvs, true
}

func (c *conn) cmdMSet(ctx context.Context, args [][]byte) {
	kvs, ok := pairs(args)
	if !ok {
		c.error("ERR wrong number of arguments for 'mset' command")
		return
	}
	if c.r < c.w && c.tx == nil && c.msetRun(ctx, c.s.lookup(args[0]), kvs) {
		return
	}
	if err := c.table.MSet(ctx, kvs); err != nil {
		c.clientError(err)
		return
	}
	c.out.ok()
}

// incrDelta returns the increment of INCR, DECR, INCRBY or DECRBY: the
// first letter tells the sign, the arity whether there is an argument.
func incrDelta(args [][]byte) (int64, string) {
	neg := args[0][0] == 'd' || args[0][0] == 'D'
	delta := int64(1)
	if len(args) == 3 {
		v, ok := wire.ParseInt(args[2])
		if !ok {
			return 0, errNotInteger
		}
		if neg && v == math.MinInt64 {
			return 0, "ERR decrement would overflow"
		}
		delta = v
	}
	if neg {
		delta = -delta
	}
	return delta, ""
}

func (c *conn) cmdIncr(ctx context.Context, args [][]byte) {
	delta, e := incrDelta(args)
	if e != "" {
		c.error(e)
		return
	}
	if c.r < c.w && c.tx == nil && c.incrRun(ctx, c.s.lookup(args[0]), args[1], delta) {
		return
	}
	n, err := c.table.IncrBy(ctx, args[1], delta)
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.int(n)
}

func (c *conn) cmdDel(ctx context.Context, args [][]byte) {
	if len(args) == 2 {
		found, err := c.table.Delete(ctx, args[1])
		if err != nil {
			c.clientError(err)
			return
		}
		c.out.boolInt(found)
		return
	}
	n, err := c.table.MDelete(ctx, args[1:])
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.int(int64(n))
}

func (c *conn) cmdExists(ctx context.Context, args [][]byte) {
	if len(args) == 2 {
		found, err := c.table.Exists(ctx, args[1])
		if err != nil {
			c.clientError(err)
			return
		}
		c.out.boolInt(found)
		return
	}
	// Redis counts a key as many times as it is named.
	found, err := c.table.MExists(ctx, args[1:])
	if err != nil {
		c.clientError(err)
		return
	}
	n := 0
	for _, f := range found {
		if f {
			n++
		}
	}
	c.out.int(int64(n))
}

func (c *conn) cmdType(ctx context.Context, args [][]byte) {
	found, err := c.table.Exists(ctx, args[1])
	switch {
	case err != nil:
		c.clientError(err)
	case found:
		c.out.simple("string")
	default:
		c.out.simple("none")
	}
}

// expireTTL parses EXPIRE key seconds or PEXPIRE key milliseconds. A TTL
// ≤ 0 deletes the key, as in Redis.
func expireTTL(args [][]byte) (time.Duration, string) {
	cmd := string(toLower(args[0]))
	if len(args) > 3 {
		for _, a := range args[3:] {
			if !(equalFold(a, "nx") || equalFold(a, "xx") || equalFold(a, "gt") || equalFold(a, "lt")) {
				return 0, "ERR Unsupported option " + string(a)
			}
		}
		return 0, "ERR the NX, XX, GT and LT options of " + cmd + " are not supported"
	}
	v, ok := wire.ParseInt(args[2])
	if !ok {
		return 0, errNotInteger
	}
	if cmd == "expire" {
		if v > math.MaxInt64/1000 || v < math.MinInt64/1000 {
			return 0, invalidExpire(cmd)
		}
		v *= 1000
	}
	if v > maxTTLMillis {
		return 0, invalidExpire(cmd)
	}
	if v <= 0 {
		return -1, ""
	}
	return time.Duration(v) * time.Millisecond, ""
}

func (c *conn) cmdExpire(ctx context.Context, args [][]byte) {
	ttl, e := expireTTL(args)
	if e != "" {
		c.error(e)
		return
	}
	found, err := c.table.Expire(ctx, args[1], ttl)
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.boolInt(found)
}

func (c *conn) cmdTTL(ctx context.Context, args [][]byte) {
	d, err := c.table.TTL(ctx, args[1])
	switch {
	case errors.Is(err, client.ErrNotFound):
		c.out.int(-2)
	case err != nil:
		c.clientError(err)
	case d == client.NoTTL:
		c.out.int(-1)
	case len(args[0]) == 4: // PTTL
		c.out.int(d.Milliseconds())
	default:
		// Redis rounds to the nearest second.
		c.out.int((d.Milliseconds() + 500) / 1000)
	}
}

func (c *conn) cmdPersist(ctx context.Context, args [][]byte) {
	had, err := c.table.Persist(ctx, args[1])
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.boolInt(had)
}

func (c *conn) cmdFlushDB(ctx context.Context, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !equalFold(args[1], "async") && !equalFold(args[1], "sync")) {
		c.error(errSyntax)
		return
	}
	if err := c.table.Flush(ctx); err != nil {
		c.clientError(err)
		return
	}
	c.out.ok()
}

func (c *conn) cmdDBSize(ctx context.Context, _ [][]byte) {
	n, err := c.table.Count(ctx)
	if err != nil {
		c.clientError(err)
		return
	}
	c.out.int(n)
}

func (c *conn) cmdTime(ctx context.Context, _ [][]byte) {
	now := time.Now()
	c.out.array(2)
	c.out.bulk(strconv.AppendInt(nil, now.Unix(), 10))
	c.out.bulk(strconv.AppendInt(nil, int64(now.Nanosecond()/1000), 10))
}
