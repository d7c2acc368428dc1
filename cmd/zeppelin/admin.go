package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// clientOptions are the flags every command that talks to a cluster takes.
type clientOptions struct {
	addrs   []string
	timeout time.Duration
	json    bool
	auth    clientAuth // security_flags.go
}

func (o *clientOptions) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.addrs, "addr", []string{"127.0.0.1:7070"}, "RPC `host:port` of any cluster member (several, comma-separated, are tried in turn)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of the whole command")
	fs.BoolVar(&o.json, "json", false, "print machine-readable JSON")
	o.auth.register(fs)
}

// connect returns a client of the cluster and a context bounded by
// --timeout. Warnings the client logs (placement rules a table could not
// meet) go to stderr.
func (o *clientOptions) connect(stderr io.Writer) (*client.Client, context.Context, context.CancelFunc, error) {
	cfg := client.DefaultConfig(o.addrs...)
	cfg.Timeout = o.timeout
	cfg.Name = "zeppelin-cli"
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := o.auth.apply(&cfg); err != nil {
		return nil, nil, nil, usageError{err: err}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, nil, nil, usageError{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	return c, ctx, func() { cancel(); c.Close() }, nil
}

// table connects (as connect does), pulls the cluster map and returns the
// handle of table name. A call on a table pulls the map first anyway; a
// write looks for it twice when it cannot, so pulling it here makes an
// unreachable cluster cost one wait (about a second), not two. A failed
// pull is reported by failure under what.
func (o *clientOptions) table(stderr io.Writer, what, name string) (*client.Table, context.Context, func(), error) {
	cl, ctx, done, err := o.connect(stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := cl.Refresh(ctx); err != nil {
		done()
		return nil, nil, nil, o.failure(what, err)
	}
	return cl.Table(name), ctx, done, nil
}

// clusterErr makes a client error an operator can act on: it names the
// address tried when the cluster cannot be reached.
func (o *clientOptions) clusterErr(err error) error {
	switch {
	case errors.Is(err, client.ErrNoMeta), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the cluster through %s: %w", strings.Join(o.addrs, ","), err)
	}
	return err
}

// runAdmin runs one command against the cluster: it connects, runs call
// with the client and a context bounded by --timeout, and prints call's
// result, as JSON with --json and through text otherwise. A failed call is
// reported by failure: "what: error", or why --addr led to no member.
func runAdmin[V any](o *clientOptions, stdout, stderr io.Writer, what string,
	call func(context.Context, *client.Client) (V, error), text func(io.Writer, V) error) error {
	cl, ctx, done, err := o.connect(stderr)
	if err != nil {
		return err
	}
	defer done()
	v, err := call(ctx, cl)
	if err != nil {
		return o.failure(what, err)
	}
	if o.json {
		return writeJSON(stdout, v)
	}
	return text(stdout, v)
}

func newTableCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Create, drop and list tables",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{cmd: c.CommandPath(), err: errors.New("missing subcommand: create, drop or list")}
		},
	}
	cmd.AddCommand(newTableCreateCmd(stdout, stderr), newTableAlterCmd(stdout, stderr), newTableDropCmd(stdout, stderr), newTableListCmd(stdout, stderr))
	return cmd
}

func newTableCreateCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co          clientOptions
		partitions  int
		replication int
		minInSync   int
		fenced      bool
		mode        = newChoice("async", "async", "sync")
		domain      = newChoice("host", "node", "host", "rack", "zone")
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a table",
		Long: `Create a table with a fixed number of partitions, each replicated on
--replication data nodes in distinct failure domains. The command returns
when the meta group has committed the table.

NAME is 1 to 64 ASCII letters, digits, '_', '-' and '.', starting with a
letter, a digit or '_' (users, orders-2024, 1); the meta group refuses
other names, and existing ones.

An async table acknowledges a write once its master has committed it: a
master that fails before shipping a write loses it. A sync table (always
fenced) acknowledges a write only once every replica in the partition's
in-sync set has it durably, so no acknowledged write is lost while fewer
than --min-in-sync replicas fail; when fewer than --min-in-sync replicas
keep up, writes fail with a retryable "not enough replicas" error instead.
Replication 1 is allowed for a sync table (it then only adds fencing).`,
		Example: "  zeppelin table create users --partitions 64 --replication 3 --fenced\n" +
			"  zeppelin table create orders --replication 3 --mode sync --min-in-sync 2",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			if partitions < 1 || replication < 1 {
				return usageError{cmd: c.CommandPath(), err: errors.New("--partitions and --replication must be at least 1")}
			}
			if c.Flags().Changed("min-in-sync") && (minInSync < 1 || minInSync > replication) {
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("--min-in-sync %d is outside 1..%d (the replication factor)", minInSync, replication)}
			}
			m, _ := placement.ParseMode(mode.value)
			d, _ := placement.ParseDomain(domain.value)
			opts := client.TableOptions{Partitions: partitions, Replication: replication, Mode: m, Fenced: fenced, MinInSync: minInSync, Domain: d}
			return runAdmin(&co, stdout, stderr, "create table "+args[0], func(ctx context.Context, cl *client.Client) (tableJSON, error) {
				t, err := cl.CreateTable(ctx, args[0], opts)
				if err != nil {
					return tableJSON{}, err
				}
				return tableView(t), nil
			}, func(w io.Writer, v tableJSON) error {
				_, err := fmt.Fprintf(w, "created table %s (id %d): %s, replicas on distinct %ss\n",
					v.Name, v.ID, tableSummary(v), v.Domain)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&partitions, "partitions", 16, "number of partitions (fixed for the table's life)")
	fs.IntVar(&replication, "replication", 3, "replicas of each partition, master included (at most the number of data nodes)")
	fs.Var(mode, "mode", "replication mode: async (acknowledge on the master's commit) or sync (acknowledge once every in-sync replica has the write)")
	fs.BoolVar(&fenced, "fenced", false, "masters stop accepting writes when their meta lease lapses, so two masters never accept writes at once (always on with --mode sync)")
	fs.IntVar(&minInSync, "min-in-sync", 0, "smallest in-sync set (master included) a sync table accepts writes with, 1..replication (default: replication/2+1)")
	fs.Var(domain, "domain", "failure domain replicas are spread across")
	co.register(fs)
	return cmd
}

func newTableAlterCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co        clientOptions
		minInSync int
		fenced    bool
		mode      = newChoice("", "async", "sync")
	)
	cmd := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a table's replication mode, minimum in-sync set or fencing online",
		Long: `Change a table while it serves. Only the flags given change.

--mode sync starts every partition's in-sync set with its master alone; each
slave joins as soon as it has caught up (usually within milliseconds), and
until --min-in-sync members have, writes wait and then fail retryably with
"not enough replicas". Writes acknowledged before the switch were async:
they are as safe as they were. --mode async drops the in-sync sets: from
then on a write is acknowledged once its master has it.`,
		Example: "  zeppelin table alter orders --mode sync --min-in-sync 2\n  zeppelin table alter orders --mode async",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			var o client.AlterOptions
			fs := c.Flags()
			if fs.Changed("mode") {
				m, _ := placement.ParseMode(mode.value)
				o.Mode = &m
			}
			if fs.Changed("min-in-sync") {
				if minInSync < 1 {
					return usageError{cmd: c.CommandPath(), err: fmt.Errorf("--min-in-sync %d: must be at least 1", minInSync)}
				}
				o.MinInSync = &minInSync
			}
			if fs.Changed("fenced") {
				o.Fenced = &fenced
			}
			if o.Mode == nil && o.MinInSync == nil && o.Fenced == nil {
				return usageError{cmd: c.CommandPath(), err: errors.New("nothing to change: give --mode, --min-in-sync or --fenced")}
			}
			return runAdmin(&co, stdout, stderr, "alter table "+args[0], func(ctx context.Context, cl *client.Client) (tableJSON, error) {
				t, err := cl.AlterTable(ctx, args[0], o)
				if err != nil {
					return tableJSON{}, err
				}
				return tableView(t), nil
			}, func(w io.Writer, v tableJSON) error {
				_, err := fmt.Fprintf(w, "altered table %s: %s\n", v.Name, tableSummary(v))
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.Var(mode, "mode", "new replication mode: async or sync")
	fs.IntVar(&minInSync, "min-in-sync", 0, "new minimum in-sync set of a sync table, 1..replication")
	fs.BoolVar(&fenced, "fenced", false, "turn fencing on (--fenced) or off (--fenced=false); a sync table is always fenced")
	co.register(fs)
	return cmd
}

// tableSummary describes a table's replication in one phrase.
func tableSummary(v tableJSON) string {
	s := fmt.Sprintf("%d partitions, replication %d, %s", v.PartitionCount, v.Replication, v.Mode)
	if v.Mode == "sync" {
		s += fmt.Sprintf(" (min in-sync %d)", v.MinInSync)
	}
	if v.Fenced {
		s += ", fenced"
	}
	return s
}

func newTableDropCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "drop NAME",
		Short: "Drop a table and its data",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			return runAdmin(&co, stdout, stderr, "drop table "+args[0], func(ctx context.Context, cl *client.Client) (map[string]any, error) {
				if err := cl.DropTable(ctx, args[0]); err != nil {
					return nil, err
				}
				return map[string]any{"dropped": args[0]}, nil
			}, func(w io.Writer, _ map[string]any) error {
				_, err := fmt.Fprintf(w, "dropped table %s\n", args[0])
				return err
			})
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newTableListCmd(stdout, stderr io.Writer) *cobra.Command {
	return newMapListCmd(stdout, stderr, "list", "List tables", "list tables", func(m *placement.Map) []tableJSON {
		views := make([]tableJSON, len(m.Tables))
		for i := range m.Tables {
			views[i] = tableView(&m.Tables[i])
		}
		return views
	}, writeTables)
}

func newNodesCmd(stdout, stderr io.Writer) *cobra.Command {
	return newMapListCmd(stdout, stderr, "nodes", "List data nodes with their state, labels and replica counts", "list nodes", func(m *placement.Map) []nodeJSON {
		views := make([]nodeJSON, len(m.Nodes))
		for i, n := range m.Nodes {
			views[i] = nodeView(n, m)
		}
		return views
	}, writeNodes)
}

// newMapListCmd returns a command without arguments that pulls the cluster
// map afresh and lists the views list makes of it, printed by text.
func newMapListCmd[V any](stdout, stderr io.Writer, use, short, what string,
	list func(*placement.Map) []V, text func(io.Writer, []V) error) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runAdmin(&co, stdout, stderr, what, func(ctx context.Context, cl *client.Client) ([]V, error) {
				m, err := cl.Refresh(ctx)
				if err != nil {
					return nil, err
				}
				return list(m), nil
			}, text)
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newStatusCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co    clientOptions
		table string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster: meta members, nodes, tables, partitions, (gen, seq) and lag",
		Long: `Show the cluster as the meta leader sees it: the meta members, every data
node with its state and the age of its last heartbeat, every table, and every
partition with its master and slaves, its generation in the map, the
master's (gen, seq) (of the last binlog record it holds) and each
slave's lag in records and milliseconds, from the replica reports of the
nodes' last heartbeats.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runAdmin(&co, stdout, stderr, "status", func(ctx context.Context, cl *client.Client) (statusJSON, error) {
				st, err := cl.Status(ctx)
				if err != nil {
					return statusJSON{}, err
				}
				if table != "" && (st.Map == nil || st.Map.Table(table) == nil) {
					return statusJSON{}, fmt.Errorf("%w: %s", client.ErrTableNotFound, table)
				}
				return statusView(st, table), nil
			}, writeStatus)
		},
	}
	cmd.Flags().StringVar(&table, "table", "", "show only this `table`'s partitions (default: every table)")
	co.register(cmd.Flags())
	return cmd
}
