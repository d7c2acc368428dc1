package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
)

func newGetCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "get TABLE KEY",
		Short: "Print the value of a key (exit status 1 when it does not exist)",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			cl, ctx, done, err := co.connect(stderr)
			if err != nil {
				return err
			}
			defer done()
			v, err := cl.Table(args[0]).Get(ctx, []byte(args[1]))
			found := err == nil
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("get %s %q: %w", args[0], args[1], co.clusterErr(err))
			}
			if co.json {
				out := map[string]any{"table": args[0], "key": args[1], "found": found}
				if found {
					out["value"] = string(v)
				}
				if err := writeJSON(stdout, out); err != nil {
					return err
				}
			} else if found {
				if _, err := fmt.Fprintf(stdout, "%s\n", v); err != nil {
					return err
				}
			}
			if !found {
				return exitError{code: 1, err: fmt.Errorf("key %q not found in table %s", args[1], args[0])}
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
			cl, ctx, done, err := co.connect(stderr)
			if err != nil {
				return err
			}
			defer done()
			written, err := cl.Table(args[0]).Set(ctx, []byte(args[1]), []byte(args[2]), opts...)
			if err != nil {
				return fmt.Errorf("set %s %q: %w", args[0], args[1], co.clusterErr(err))
			}
			if co.json {
				if err := writeJSON(stdout, map[string]any{"table": args[0], "key": args[1], "written": written}); err != nil {
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
			cl, ctx, done, err := co.connect(stderr)
			if err != nil {
				return err
			}
			defer done()
			keys := make([][]byte, len(args)-1)
			for i, k := range args[1:] {
				keys[i] = []byte(k)
			}
			n, err := cl.Table(args[0]).MDelete(ctx, keys)
			if err != nil {
				return fmt.Errorf("del %s: %w", args[0], co.clusterErr(err))
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
