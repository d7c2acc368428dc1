package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
)

// metaMemberJSON describes one meta member.
type metaMemberJSON struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	// RPCAddr is empty until an added member has started.
	RPCAddr   string `json:"rpc_addr,omitempty"`
	Leader    bool   `json:"leader"`
	Voting    bool   `json:"voting"`
	Reachable bool   `json:"reachable"`
}

func metaMemberViews(ms []client.MetaMemberStatus) []metaMemberJSON {
	out := make([]metaMemberJSON, len(ms))
	for i, m := range ms {
		out[i] = metaMemberJSON{ID: m.ID, RaftAddr: m.RaftAddr, RPCAddr: m.RPCAddr,
			Leader: m.Leader, Voting: m.Voting, Reachable: m.Reachable}
	}
	return out
}

func writeMetaMembers(w io.Writer, ms []metaMemberJSON) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "ID\tRAFT\tRPC\tLEADER\tVOTING\tREACHABLE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%v\t%v\n", m.ID, dash(m.RaftAddr), dash(m.RPCAddr), m.Leader, m.Voting, m.Reachable)
	}
	return tw.Flush()
}

func newMetaCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meta",
		Short: "List, add, remove and replace the members of the meta group",
		Long: `List, add, remove and replace the members of the meta Raft group, online.

A change goes to the meta leader and returns once it is committed; the
commands print the members afterwards (with --json, as a JSON array).
Changes that would leave the group unable to commit are refused and
change nothing: removing the only member, removing a member when fewer
than a quorum of the remaining members are live, and adding a member
when the grown group would need it to commit before it has started.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{cmd: c.CommandPath(), err: errors.New("missing subcommand: members, add, remove or replace")}
		},
	}
	cmd.AddCommand(newMetaMembersCmd(stdout, stderr), newMetaAddCmd(stdout, stderr),
		newMetaRemoveCmd(stdout, stderr), newMetaReplaceCmd(stdout, stderr))
	return cmd
}

// runMetaChange runs one membership command: call, then print note and
// the members.
func runMetaChange(co *clientOptions, stdout, stderr io.Writer, what string,
	call func(context.Context, *client.Client) ([]client.MetaMemberStatus, error), note string) error {
	return runAdmin(co, stdout, stderr, what, func(ctx context.Context, cl *client.Client) ([]metaMemberJSON, error) {
		ms, err := call(ctx, cl)
		if err != nil {
			return nil, err
		}
		return metaMemberViews(ms), nil
	}, func(w io.Writer, ms []metaMemberJSON) error {
		if note != "" {
			if _, err := fmt.Fprintln(w, note); err != nil {
				return err
			}
		}
		return writeMetaMembers(w, ms)
	})
}

func newMetaMembersCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the meta members, with the leader and which members are reachable",
		Long: `List the members of the meta group as the leader sees them. A member is
reachable when it answered the leader just now and named it as the leader
of the current term. A member added but not started yet has no RPC address.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runMetaChange(&co, stdout, stderr, "list meta members", func(ctx context.Context, cl *client.Client) ([]client.MetaMemberStatus, error) {
				return cl.MetaMembers(ctx)
			}, "")
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newMetaAddCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "add ID RAFT_ADDR",
		Short: "Add a meta member, then start it with serve --meta-join",
		Long: `Add member ID, whose Raft transport will listen at RAFT_ADDR, to the meta
group. Then start the new process with the same ID and address:

  zeppelin serve --meta-join --meta-id ID --raft-addr RAFT_ADDR --join EXISTING_RPC_ADDRS ...

Refused: an ID in use or used before (IDs are never used twice), a
malformed RAFT_ADDR or one another member has, and an addition the group
would need before the new member has started (fewer live members than the
grown group's quorum, a three-member group with a member down, say: use
"zeppelin meta replace" then). A single-member group may always grow.`,
		Example: "  zeppelin meta add 4 10.0.0.4:7100",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := memberID(c, "ID", args[0])
			if err != nil {
				return err
			}
			raft := args[1]
			note := fmt.Sprintf("added meta member %d at %s; start it with --meta-join --meta-id %d --raft-addr %s", id, raft, id, raft)
			return runMetaChange(&co, stdout, stderr, fmt.Sprintf("add meta member %d", id), func(ctx context.Context, cl *client.Client) ([]client.MetaMemberStatus, error) {
				return cl.AddMetaMember(ctx, id, raft)
			}, note)
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newMetaRemoveCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a meta member",
		Long: `Remove member ID from the meta group, then stop its process (and do not
start its meta role from the same directory again). Removing the leader
is allowed: it hands the leadership to another member first.

Refused: removing the only member, and removing a member when fewer than
a quorum of the remaining members would be live.`,
		Example: "  zeppelin meta remove 2",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := memberID(c, "ID", args[0])
			if err != nil {
				return err
			}
			return runMetaChange(&co, stdout, stderr, fmt.Sprintf("remove meta member %d", id), func(ctx context.Context, cl *client.Client) ([]client.MetaMemberStatus, error) {
				return cl.RemoveMetaMember(ctx, id)
			}, fmt.Sprintf("removed meta member %d; stop its process", id))
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newMetaReplaceCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "replace DEAD_ID NEW_ID RAFT_ADDR",
		Short: "Replace a meta member that is down for good with a new one",
		Long: `Replace member DEAD_ID with a new member NEW_ID whose Raft transport will
listen at RAFT_ADDR, then start the new process as after "zeppelin meta
add". The group adds the new member first when it can commit without it,
and removes the dead one first otherwise (a three-member group with one
member down), so it can commit at every step. NEW_ID must be a new ID.`,
		Example: "  zeppelin meta replace 2 6 10.0.0.6:7100",
		Args:    usageArgs(cobra.ExactArgs(3)),
		RunE: func(c *cobra.Command, args []string) error {
			dead, err := memberID(c, "DEAD_ID", args[0])
			if err != nil {
				return err
			}
			id, err := memberID(c, "NEW_ID", args[1])
			if err != nil {
				return err
			}
			if id == dead {
				return usageError{cmd: c.CommandPath(), err: errors.New("NEW_ID must differ from DEAD_ID: IDs of removed members are never used again")}
			}
			raft := args[2]
			note := fmt.Sprintf("replaced meta member %d with %d at %s; start it with --meta-join --meta-id %d --raft-addr %s", dead, id, raft, id, raft)
			return runMetaChange(&co, stdout, stderr, fmt.Sprintf("replace meta member %d", dead), func(ctx context.Context, cl *client.Client) ([]client.MetaMemberStatus, error) {
				return cl.ReplaceMetaMember(ctx, dead, id, raft)
			}, note)
		},
	}
	co.register(cmd.Flags())
	return cmd
}

// memberID parses a meta member ID argument.
func memberID(c *cobra.Command, name, arg string) (uint64, error) {
	id, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError{cmd: c.CommandPath(), err: fmt.Errorf("%s %q: want a positive integer", name, arg)}
	}
	return id, nil
}
