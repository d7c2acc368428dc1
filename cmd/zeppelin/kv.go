package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
)

// The key-value commands: get, set, del, ttl, expire, incr, mget and mset.
// With --json, keys and values are written by entryJSON's rule: as strings
// when they are valid UTF-8, base64-encoded under key_base64 and
// value_base64 otherwise, so no byte is lost.

// entryJSON is one key in the JSON output of the key-value commands.
// Exactly one of Key and KeyBase64 is set, and for a key found with a
// value, exactly one of Value and ValueBase64.
type entryJSON struct {
	Key       *string `json:"key,omitempty"`
	KeyBase64 *string `json:"key_base64,omitempty"`
	// Found is set when the key exists.
	Found       *bool   `json:"found,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
	// Error is why this key of an mget failed.
	Error string `json:"error,omitempty"`
}

// textOrBase64 returns b as a string when it is valid UTF-8, and otherwise
// its base64 encoding (standard, padded) as the second result.
func textOrBase64(b []byte) (text, b64 *string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// keyEntry returns the entry of key, without a value.
func keyEntry(key []byte) entryJSON {
	var e entryJSON
	e.Key, e.KeyBase64 = textOrBase64(key)
	return e
}

// withValue sets the entry's value (found) or marks it missing.
func (e entryJSON) withValue(v []byte, found bool) entryJSON {
	e.Found = &found
	if found {
		e.Value, e.ValueBase64 = textOrBase64(v)
	}
	return e
}

// kvJSON is the JSON output of a single-key command: the table, the key
// and the command's own fields.
type kvJSON struct {
	Table string `json:"table"`
	entryJSON
	// Written (set), TTLMs and Expires (ttl, expire) and Persisted
	// (expire --persist) are the results of one command each.
	Written   *bool  `json:"written,omitempty"`
	Expires   *bool  `json:"expires,omitempty"`
	TTLMs     *int64 `json:"ttl_ms,omitempty"`
	Persisted *bool  `json:"persisted,omitempty"`
}

// incrJSON is the JSON output of incr: the value is the integer result.
type incrJSON struct {
	Table string `json:"table"`
	entryJSON
	Value int64 `json:"value"`
}

func ptr[T any](v T) *T { return &v }

// notFound is the exit-1 error of a command on a key that does not exist.
func notFound(table, key string) error {
	return exitError{code: 1, err: fmt.Errorf("key %q not found in table %s", key, table)}
}

func newGetCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "get TABLE KEY",
		Short: "Print the value of a key (exit status 1 when it does not exist)",
		Long: `Print the value of KEY in TABLE, as it is. Exit status 1 when the key does
not exist. With --json the value is a string when it is valid UTF-8 and
base64-encoded under "value_base64" otherwise.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := fmt.Sprintf("get %s %q", args[0], args[1])
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			v, err := tbl.Get(ctx, []byte(args[1]))
			found := err == nil
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				return co.failure(what, err)
			}
			if co.json {
				if err := writeJSON(stdout, kvJSON{Table: args[0], entryJSON: keyEntry([]byte(args[1])).withValue(v, found)}); err != nil {
					return err
				}
			} else if found {
				if _, err := fmt.Fprintf(stdout, "%s\n", v); err != nil {
					return err
				}
			}
			if !found {
				return notFound(args[0], args[1])
			}
			return nil
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newSetCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co             clientOptions
		ttl            time.Duration
		ifAbsent, ifPr bool
	)
	cmd := &cobra.Command{
		Use:   "set TABLE KEY VALUE",
		Short: "Write a value (exit status 1 when --nx or --xx stopped the write)",
		Args:  usageArgs(cobra.ExactArgs(3)),
		RunE: func(c *cobra.Command, args []string) error {
			if ifAbsent && ifPr {
				return usageError{cmd: c.CommandPath(), err: errors.New("--nx and --xx exclude each other")}
			}
			var opts []client.SetOption
			if ttl > 0 {
				opts = append(opts, client.WithTTL(ttl))
			}
			if ifAbsent {
				opts = append(opts, client.IfAbsent())
			}
			if ifPr {
				opts = append(opts, client.IfPresent())
			}
			what := fmt.Sprintf("set %s %q", args[0], args[1])
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			written, err := tbl.SetIf(ctx, []byte(args[1]), []byte(args[2]), opts...)
			if err != nil {
				return co.failure(what, err)
			}
			if co.json {
				if err := writeJSON(stdout, kvJSON{Table: args[0], entryJSON: keyEntry([]byte(args[1])), Written: &written}); err != nil {
					return err
				}
			} else if written {
				if _, err := fmt.Fprintln(stdout, "OK"); err != nil {
					return err
				}
			}
			if !written {
				return exitError{code: 1, err: fmt.Errorf("key %q not written: the --nx/--xx condition did not hold", args[1])}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the key after this long (0: never)")
	cmd.Flags().BoolVar(&ifAbsent, "nx", false, "write only if the key does not exist")
	cmd.Flags().BoolVar(&ifPr, "xx", false, "write only if the key exists")
	co.register(cmd.Flags())
	return cmd
}

func newDelCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "del TABLE KEY...",
		Short: "Delete keys and print how many existed",
		Args:  usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := "del " + args[0]
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			n, err := tbl.MDelete(ctx, byteArgs(args[1:]))
			if err != nil {
				return co.failure(what, err)
			}
			if co.json {
				return writeJSON(stdout, map[string]any{"table": args[0], "deleted": n})
			}
			_, err = fmt.Fprintln(stdout, n)
			return err
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newTTLCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "ttl TABLE KEY",
		Short: "Print the time a key has left to live (exit status 1 when it does not exist)",
		Long: `Print the time KEY in TABLE has left to live, as a duration (59.5s, 1h59m0s),
or "none" when it does not expire. Exit status 1 when the key does not
exist. With --json: "expires" and, when it does, "ttl_ms".`,
		Example: "  zeppelin ttl users alice",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := fmt.Sprintf("ttl %s %q", args[0], args[1])
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			d, err := tbl.TTL(ctx, []byte(args[1]))
			found := err == nil
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				return co.failure(what, err)
			}
			if co.json {
				v := kvJSON{Table: args[0], entryJSON: keyEntry([]byte(args[1]))}
				v.Found = &found
				if found {
					v.Expires = ptr(d != client.NoTTL)
					if d != client.NoTTL {
						v.TTLMs = ptr(d.Milliseconds())
					}
				}
				if err := writeJSON(stdout, v); err != nil {
					return err
				}
			} else if found {
				s := "none"
				if d != client.NoTTL {
					s = d.Round(time.Millisecond).String()
				}
				if _, err := fmt.Fprintln(stdout, s); err != nil {
					return err
				}
			}
			if !found {
				return notFound(args[0], args[1])
			}
			return nil
		},
	}
	co.register(cmd.Flags())
	return cmd
}

// parseTTL parses the DURATION of expire: a Go duration (90s, 1h30m) or a
// whole number of seconds.
func parseTTL(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("DURATION %q is too long", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("DURATION %q: want a duration such as 90s or 1h30m, or a number of seconds", s)
	}
	return d, nil
}

func newExpireCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co      clientOptions
		persist bool
	)
	cmd := &cobra.Command{
		Use:   "expire TABLE KEY {DURATION | --persist}",
		Short: "Set the time a key has left to live, or with --persist remove its expiry",
		Long: `Make KEY in TABLE expire DURATION from now: a duration such as 90s or 1h30m,
or a number of seconds. DURATION must be positive; to delete a key use
"zeppelin del". With --persist instead of DURATION the key's expiry is
removed and it lives until deleted.

Exit status 1 when the key does not exist.`,
		Example: "  zeppelin expire users alice 1h\n  zeppelin expire users alice --persist",
		Args: usageArgs(func(c *cobra.Command, args []string) error {
			if persist {
				return cobra.ExactArgs(2)(c, args)
			}
			if len(args) != 3 {
				return fmt.Errorf("want TABLE KEY DURATION (or TABLE KEY --persist), got %d argument(s)", len(args))
			}
			return nil
		}),
		RunE: func(c *cobra.Command, args []string) error {
			var ttl time.Duration
			if !persist {
				d, err := parseTTL(args[2])
				if err != nil {
					return usageError{cmd: c.CommandPath(), err: err}
				}
				if d <= 0 {
					return usageError{cmd: c.CommandPath(), err: fmt.Errorf("DURATION %q must be positive (\"zeppelin del\" deletes a key, --persist removes its expiry)", args[2])}
				}
				ttl = d
			}
			what := fmt.Sprintf("expire %s %q", args[0], args[1])
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			key := []byte(args[1])
			v := kvJSON{Table: args[0], entryJSON: keyEntry(key)}
			var found bool
			if persist {
				had, err := tbl.Persist(ctx, key)
				if err != nil {
					return co.failure(what, err)
				}
				found = had
				if !had {
					// No expiry removed: the key has none, or does not
					// exist.
					if _, err := tbl.TTL(ctx, key); err == nil {
						found = true
					} else if !errors.Is(err, client.ErrNotFound) {
						return co.failure(what, err)
					}
				}
				v.Persisted = &had
			} else {
				found, err = tbl.Expire(ctx, key, ttl)
				if err != nil {
					return co.failure(what, err)
				}
				if found {
					v.TTLMs = ptr(ttl.Milliseconds())
				}
			}
			v.Found = &found
			if co.json {
				if err := writeJSON(stdout, v); err != nil {
					return err
				}
			} else if found {
				msg := "OK"
				if persist && !*v.Persisted {
					msg = "OK (the key had no expiry)"
				}
				if _, err := fmt.Fprintln(stdout, msg); err != nil {
					return err
				}
			}
			if !found {
				return notFound(args[0], args[1])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&persist, "persist", false, "remove the key's expiry instead of setting one")
	co.register(cmd.Flags())
	return cmd
}

func newIncrCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co clientOptions
		by int64
	)
	cmd := &cobra.Command{
		Use:   "incr TABLE KEY",
		Short: "Add to the integer value of a key and print the result",
		Long: `Add --by (default 1; negative to subtract) to the integer value of KEY in
TABLE and print the result. A missing key counts as 0. The value must be a
base-10 signed 64-bit integer and the result must fit; otherwise nothing
changes and the exit status is 1. The key keeps its expiry.

An increment is never sent twice: when a connection fails after sending it,
the command fails with "outcome unknown" and the key may or may not have
been incremented.`,
		Example: "  zeppelin incr users visits\n  zeppelin incr users stock --by -3",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := fmt.Sprintf("incr %s %q", args[0], args[1])
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			n, err := tbl.IncrBy(ctx, []byte(args[1]), by)
			if err != nil {
				return co.failure(what, err)
			}
			if co.json {
				return writeJSON(stdout, incrJSON{Table: args[0], entryJSON: keyEntry([]byte(args[1])), Value: n})
			}
			_, err = fmt.Fprintln(stdout, n)
			return err
		},
	}
	cmd.Flags().Int64Var(&by, "by", 1, "amount to add (negative to subtract)")
	co.register(cmd.Flags())
	return cmd
}

// mgetJSON is the JSON output of mget.
type mgetJSON struct {
	Table   string      `json:"table"`
	Results []entryJSON `json:"results"`
}

func newMGetCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "mget TABLE KEY...",
		Short: "Print the values of keys",
		Long: `Print the value of each KEY in TABLE, one line per key: the key and its
value, "(nil)" for a key that does not exist. A value that is not one line
of printable text (or reads "(nil)") is printed quoted, with Go escapes.
With --json: "results", one per key in order, each with "found" and "value"
(or "value_base64" when the value is not valid UTF-8).

Keys are read per partition, in parallel; when some cannot be read the
others are printed and the exit status is 1.`,
		Example: "  zeppelin mget users alice bob",
		Args:    usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := "mget " + args[0]
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			keys := byteArgs(args[1:])
			rs, err := tbl.MGet(ctx, keys)
			var me *client.MultiError
			if err != nil && (rs == nil || !errors.As(err, &me)) {
				return co.failure(what, err)
			}
			failed := make(map[string]error)
			if me != nil {
				for _, f := range me.Failed {
					failed[string(f.Key)] = f.Err
				}
			}
			out := mgetJSON{Table: args[0], Results: make([]entryJSON, len(keys))}
			for i, k := range keys {
				e := keyEntry(k)
				if ferr, ok := failed[string(k)]; ok {
					e.Error = sayOnce("", ferr)
				} else {
					e = e.withValue(rs[i].Value, rs[i].Found)
				}
				out.Results[i] = e
			}
			if co.json {
				if err := writeJSON(stdout, out); err != nil {
					return err
				}
			} else {
				tw := newTab(stdout)
				fmt.Fprintln(tw, "KEY\tVALUE")
				for i, k := range keys {
					v := "(nil)"
					switch {
					case out.Results[i].Error != "":
						v = "(error: " + out.Results[i].Error + ")"
					case rs[i].Found:
						v = shown(rs[i].Value)
					}
					fmt.Fprintf(tw, "%s\t%s\n", shown(k), v)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if me != nil {
				return co.failure(what, err)
			}
			return nil
		},
	}
	co.register(cmd.Flags())
	return cmd
}

// shown returns b for a column of text: as it is when it is one line of
// printable text that cannot be mistaken for "(nil)" or lose spaces, and
// quoted with Go escapes otherwise.
func shown(b []byte) string {
	s := string(b)
	plain := s != "" && s != "(nil)" && utf8.ValidString(s) && strings.TrimSpace(s) == s && s[0] != '"' &&
		!strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '\t' })
	if plain {
		return s
	}
	return strconv.Quote(s)
}

func newMSetCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co  clientOptions
		ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mset TABLE KEY VALUE [KEY VALUE...]",
		Short: "Write several keys",
		Long: `Write each KEY VALUE pair into TABLE. The pairs of one partition are written
atomically; pairs of different partitions are independent: when some fail,
the others are written, the failed keys are named and the exit status is 1.
A key given twice gets its last value.`,
		Example: "  zeppelin mset users alice 42 bob 7 --ttl 1h",
		Args: usageArgs(func(_ *cobra.Command, args []string) error {
			if len(args) < 3 || len(args)%2 == 0 {
				return fmt.Errorf("want TABLE and KEY VALUE pairs, got %d argument(s)", len(args))
			}
			return nil
		}),
		RunE: func(_ *cobra.Command, args []string) error {
			var opts []client.SetOption
			if ttl > 0 {
				opts = append(opts, client.WithTTL(ttl))
			}
			pairs := args[1:]
			kvs := make([]client.KV, 0, len(pairs)/2)
			for i := 0; i < len(pairs); i += 2 {
				kvs = append(kvs, client.KV{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
			}
			what := "mset " + args[0]
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			if err := tbl.MSet(ctx, kvs, opts...); err != nil {
				return co.failure(what, err)
			}
			if co.json {
				return writeJSON(stdout, map[string]any{"table": args[0], "written": len(kvs)})
			}
			_, err = fmt.Fprintln(stdout, "OK")
			return err
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the keys after this long (0: never)")
	co.register(cmd.Flags())
	return cmd
}

// byteArgs converts command-line arguments to keys.
func byteArgs(args []string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func newCountCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "count TABLE",
		Short: "Print the number of live keys in a table",
		Long: `Print the number of live keys in TABLE (Redis: DBSIZE). Every partition's
master counts its own keys, so this takes time in proportion to the table's
keys. With --json: {"table": ..., "keys": N}.`,
		Example: "  zeppelin count users",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			what := "count " + args[0]
			tbl, ctx, done, err := co.table(stderr, what, args[0])
			if err != nil {
				return err
			}
			defer done()
			n, err := tbl.Count(ctx)
			if err != nil {
				return co.failure(what, err)
			}
			if co.json {
				return writeJSON(stdout, struct {
					Table string `json:"table"`
					Keys  int64  `json:"keys"`
				}{args[0], n})
			}
			_, err = fmt.Fprintln(stdout, n)
			return err
		},
	}
	co.register(cmd.Flags())
	return cmd
}
