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
}

func (o *clientOptions) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.addrs, "addr", []string{"127.0.0.1:7070"}, "RPC `host:port` of any cluster member (several, comma-separated, are tried in turn)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of the whole command")
	fs.BoolVar(&o.json, "json", false, "print machine-readable JSON")
}

// connect returns a client of the cluster and a context bounded by
// --timeout. Warnings the client logs (placement rules a table could not
// meet) go to stderr.
func (o *clientOptions) connect(stderr io.Writer) (*client.Client, context.Context, context.CancelFunc, error) {
	cfg := client.DefaultConfig(o.addrs...)
	cfg.Timeout = o.timeout
	cfg.Name = "zeppelin-cli"
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.New(cfg)
	if err != nil {
		return nil, nil, nil, usageError{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	return c, ctx, func() { cancel(); c.Close() }, nil
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
// reported as "what: error", the error made actionable by clusterErr.
func runAdmin[V any](o *clientOptions, stdout, stderr io.Writer, what string,
	call func(context.Context, *client.Client) (V, error), text func(io.Writer, V) error) error {
	cl, ctx, done, err := o.connect(stderr)
	if err != nil {
		return err
	}
	defer done()
	v, err := call(ctx, cl)
	if err != nil {
		return fmt.Errorf("%s: %w", what, o.clusterErr(err))
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
	cmd.AddCommand(newTableCreateCmd(stdout, stderr), newTableDropCmd(stdout, stderr), newTableListCmd(stdout, stderr))
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
when the meta group has committed the table.`,
		Example: "  zeppelin table create users --partitions 64 --replication 3 --fenced",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			if partitions < 1 || replication < 1 {
				return usageError{cmd: c.CommandPath(), err: errors.New("--partitions and --replication must be at least 1")}
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
				fenceNote := ""
				if v.Fenced {
					fenceNote = ", fenced"
				}
				_, err := fmt.Fprintf(w, "created table %s (id %d): %d partitions, replication %d, %s%s, replicas on distinct %ss\n",
					v.Name, v.ID, v.PartitionCount, v.Replication, v.Mode, fenceNote, v.Domain)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&partitions, "partitions", 16, "number of partitions (fixed for the table's life)")
	fs.IntVar(&replication, "replication", 3, "replicas of each partition, master included (at most the number of data nodes)")
	fs.Var(mode, "mode", "replication mode: async (acknowledge on the master's commit); sync (acknowledge when every in-sync replica has the write) is not built yet and is refused")
	fs.BoolVar(&fenced, "fenced", false, "masters stop accepting writes when their meta lease lapses, so two masters never accept writes at once (always on with --mode sync)")
	fs.IntVar(&minInSync, "min-in-sync", 0, "smallest in-sync set a sync table accepts writes with (default: replication/2+1)")
	fs.Var(domain, "domain", "failure domain replicas are spread across")
	co.register(fs)
	return cmd
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
