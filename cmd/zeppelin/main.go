package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code:
// 0 on success, 2 for a usage or configuration error, 1 otherwise. Errors
// are printed to stderr, one line per problem, or as one JSON object when
// the command was given --json.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	if wantsJSON(cmd) {
		printErrorJSON(stderr, err)
	} else {
		printError(stderr, err)
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// newRootCmd builds the command tree. Commands write their results to
// stdout and their logs and errors to stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "zeppelin",
		Short: "Zeppelin: a distributed, persistent key-value store",
		Long: `Zeppelin is a distributed, persistent key-value store.

"zeppelin serve" runs one process of a cluster with the roles you choose
(meta: a member of the meta Raft group; data: a node holding partition
replicas) and, optionally, a Redis-protocol (RESP) listener.

The other commands drive a running cluster through any member given with
--addr (default 127.0.0.1:7070): create and drop tables, list, drain and
remove nodes, show the cluster status, move replicas and rebalance, read
and write keys, and generate load. Add --json for machine-readable output.`,
		Version:       currentVersion().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// No "completion" command: the binary is an operator tool.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.InitDefaultVersionFlag()
	root.Flags().Lookup("version").Usage = "print the version of this binary (as \"zeppelin version\" does)"
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(
		newServeCmd(stdout, stderr),
		newTableCmd(stdout, stderr),
		newNodesCmd(stdout, stderr),
		newNodeCmd(stdout, stderr),
		newStatusCmd(stdout, stderr),
		newMigrateCmd(stdout, stderr),
		newMigrationsCmd(stdout, stderr),
		newRebalanceCmd(stdout, stderr),
		newMetaCmd(stdout, stderr),
		newGetCmd(stdout, stderr),
		newSetCmd(stdout, stderr),
		newDelCmd(stdout, stderr),
		newTTLCmd(stdout, stderr),
		newCountCmd(stdout, stderr),
		newExpireCmd(stdout, stderr),
		newIncrCmd(stdout, stderr),
		newMGetCmd(stdout, stderr),
		newMSetCmd(stdout, stderr),
		newBenchCmd(stdout, stderr),
		newUserCmd(stdout, stderr),
		newVersionCmd(stdout),
	)
	return root
}

// usageError is a bad command line or configuration: exit code 2, and the
// message points at --help.
type usageError struct {
	cmd string
	err error
}

func (e usageError) Error() string {
	if e.cmd == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.cmd)
}

func (e usageError) Unwrap() error { return e.err }

// exitError carries a specific exit code; its message (when not empty) is
// printed like any other error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// usageArgs wraps a cobra positional-argument check so that its failures
// are usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError{cmd: c.CommandPath(), err: err}
		}
		return nil
	}
}

// printError prints err as one line per problem (errors.Join separates
// problems with newlines), each starting with "zeppelin: ".
func printError(w io.Writer, err error) {
	for _, line := range problemLines(err) {
		fmt.Fprintln(w, "zeppelin: "+line)
	}
}

// printErrorJSON prints err as {"error": "..."}, its problems joined by
// "; ".
func printErrorJSON(w io.Writer, err error) {
	b, _ := json.Marshal(map[string]string{"error": strings.Join(problemLines(err), "; ")})
	fmt.Fprintf(w, "%s\n", b)
}

// wantsJSON reports whether cmd, the command that ran, was given --json.
func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}
