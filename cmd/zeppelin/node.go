package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// nodeChangeJSON is the result of a node command: the node, and for a
// drain the batch of migrations that empties it (0 when it held nothing)
// and, after --wait, how the batch ended.
type nodeChangeJSON struct {
	Node       string       `json:"node"`
	Change     string       `json:"change"` // drain, undrain, remove, weight, approve or revoke
	Weight     int          `json:"weight,omitempty"`
	Batch      uint64       `json:"batch,omitempty"`
	Migrations int          `json:"migrations,omitempty"`
	Outcome    *outcomeJSON `json:"outcome,omitempty"`
}

func newNodeCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Drain, undrain, remove, weigh and approve data nodes",
		Long: `Change one data node: drain it (move its replicas away), undrain it, remove
it from the cluster once it is empty, or set its weight. "zeppelin nodes"
lists the nodes. In a cluster started with --node-admission admin-approved,
"zeppelin node pending" lists the nodes waiting to join, "zeppelin node
approve NODE" admits one (before or after it first asks) and "zeppelin node
revoke NODE" withdraws an approval not used yet.

To retire a node: "zeppelin node drain NODE --wait", then "zeppelin node
remove NODE", then stop its process.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{cmd: c.CommandPath(), err: errors.New("missing subcommand: drain, undrain, remove, weight, pending, approve or revoke")}
		},
	}
	cmd.AddCommand(newNodeDrainCmd(stdout, stderr), newNodeUndrainCmd(stdout, stderr),
		newNodeRemoveCmd(stdout, stderr), newNodeWeightCmd(stdout, stderr),
		newNodePendingCmd(stdout, stderr), newNodeApproveCmd(stdout, stderr, true), newNodeApproveCmd(stdout, stderr, false))
	return cmd
}

func newNodeDrainCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		co clientOptions
		wo waitOptions
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move every replica off a data node",
		Long: `Mark data node NODE as draining and queue, as one batch, the migrations
that move every replica it holds to other nodes (keeping each partition's
replicas in distinct failure domains); masters it holds move by planned
handover. No write is lost, and the node keeps serving until its last
replica has moved. Placement puts no new replica on a draining node;
"zeppelin node undrain NODE" ends the drain.

The command prints the batch; follow it with --wait (the same progress as
"zeppelin rebalance --wait") or "zeppelin migrations --batch N". Once the
node holds nothing, "zeppelin node remove NODE" forgets it.

Refused (exit 1): an unknown node, and a drain that would leave some
replica nowhere to go (fewer other nodes able to hold it than its table's
replication). With --wait, exit 1 if a move failed or was cancelled.`,
		Example: "  zeppelin node drain n4 --wait",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			label := fmt.Sprintf("drain of %s", node)
			var outcome *outcomeJSON
			err := runAdmin(&co, stdout, stderr, "drain node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				batch, n, err := cl.DrainNode(ctx, node)
				if err != nil {
					return nodeChangeJSON{}, err
				}
				v := nodeChangeJSON{Node: string(node), Change: "drain", Batch: batch, Migrations: n}
				if !wo.wait || batch == 0 {
					return v, nil
				}
				label = fmt.Sprintf("drain of %s (batch %d)", node, batch)
				fmt.Fprintf(stderr, "draining %s: batch %d, %d moves queued\n", node, batch, n)
				v.Outcome, err = followBatch(&wo, &co, cl, stderr, label, batch)
				outcome = v.Outcome
				return v, err
			}, func(w io.Writer, v nodeChangeJSON) error {
				switch {
				case v.Batch == 0:
					_, err := fmt.Fprintf(w, "%s is draining and holds no replica; \"zeppelin node remove %s\" forgets it\n", v.Node, v.Node)
					return err
				case v.Outcome != nil:
					if err := writeOutcome(w, label, v.Outcome); err != nil {
						return err
					}
					if v.Outcome.Failed+v.Outcome.Cancelled == 0 {
						_, err := fmt.Fprintf(w, "%s holds no replica now; \"zeppelin node remove %s\" forgets it\n", v.Node, v.Node)
						return err
					}
					return nil
				}
				_, err := fmt.Fprintf(w, "draining %s: batch %d, %d replica moves queued\n"+
					"follow it with \"zeppelin migrations --batch %d\"; then \"zeppelin node remove %s\"\n",
					v.Node, v.Batch, v.Migrations, v.Batch, v.Node)
				return err
			})
			if err != nil {
				return err
			}
			return outcome.err(label)
		},
	}
	wo.register(cmd.Flags(), "the drain")
	co.register(cmd.Flags())
	return cmd
}

func newNodeUndrainCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "undrain NODE",
		Short: "Let a drained data node hold replicas again",
		Long: `End the drain of data node NODE: placement may put replicas on it again.
Nothing moves back by itself: "zeppelin rebalance" gives the node its share.
Moves of the drain still running go on; "zeppelin migrate cancel --batch N"
stops them. Undraining a node that is not draining changes nothing.

Refused (exit 1): an unknown node.`,
		Example: "  zeppelin node undrain n4",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			return runAdmin(&co, stdout, stderr, "undrain node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				if err := cl.UndrainNode(ctx, node); err != nil {
					return nodeChangeJSON{}, err
				}
				return nodeChangeJSON{Node: string(node), Change: "undrain"}, nil
			}, func(w io.Writer, v nodeChangeJSON) error {
				_, err := fmt.Fprintf(w, "%s may hold replicas again; \"zeppelin rebalance\" gives it its share\n", v.Node)
				return err
			})
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newNodeRemoveCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Forget a data node that holds no replica",
		Long: `Remove data node NODE from the cluster map, then stop its process. The
node must hold no replica and take part in no unfinished migration: drain
it first ("zeppelin node drain NODE --wait"). A removed node cannot register
again with the same data directory; to bring the machine back, start it
with an empty --dir.

Refused (exit 1): an unknown node, a node that still holds replicas, and
a node a migration is still moving data to or from.`,
		Example: "  zeppelin node remove n4",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			return runAdmin(&co, stdout, stderr, "remove node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				if err := cl.RemoveNode(ctx, node); err != nil {
					return nodeChangeJSON{}, err
				}
				return nodeChangeJSON{Node: string(node), Change: "remove"}, nil
			}, func(w io.Writer, v nodeChangeJSON) error {
				_, err := fmt.Fprintf(w, "removed node %s; stop its process\n", v.Node)
				return err
			})
		},
	}
	co.register(cmd.Flags())
	return cmd
}

func newNodeWeightCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "weight NODE W",
		Short: "Set a data node's weight, its relative capacity",
		Long: `Set the weight of data node NODE to W, an integer from 1 to 1000: its
capacity relative to the other nodes. A node of weight 2 is meant to hold
twice the replicas of a node of weight 1. The weight is kept in the map
(the node's --weight counts only when it first joins); nothing moves until
the next "zeppelin rebalance" ("zeppelin rebalance --dry-run" shows what
it would move).

Refused (exit 1): an unknown node. A W that is not an integer from 1 to
1000 exits 2.`,
		Example: "  zeppelin node weight n4 2",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			w, err := strconv.Atoi(args[1])
			if err != nil || w < 1 || w > 1000 {
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("weight %q: want an integer from 1 to 1000", args[1])}
			}
			return runAdmin(&co, stdout, stderr, "set the weight of node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				if err := cl.SetNodeWeight(ctx, node, w); err != nil {
					return nodeChangeJSON{}, err
				}
				return nodeChangeJSON{Node: string(node), Change: "weight", Weight: w}, nil
			}, func(out io.Writer, v nodeChangeJSON) error {
				_, err := fmt.Fprintf(out, "node %s has weight %d; \"zeppelin rebalance --dry-run\" shows what a rebalance would move\n", v.Node, v.Weight)
				return err
			})
		},
	}
	co.register(cmd.Flags())
	return cmd
}
