package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// pendingJSON is "zeppelin node pending --json".
type pendingJSON struct {
	Pending  []pendingNodeJSON `json:"pending"`
	Approved []string          `json:"approved"`
}

type pendingNodeJSON struct {
	Node       string           `json:"node"`
	Addr       string           `json:"addr"`
	Labels     placement.Labels `json:"labels"`
	Weight     int              `json:"weight,omitempty"`
	RemoteAddr string           `json:"remote_addr,omitempty"`
	First      time.Time        `json:"first"`
	Last       time.Time        `json:"last"`
	Attempts   int              `json:"attempts"`
}

func newNodePendingCmd(stdout, stderr io.Writer) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "pending",
		Short: "List the data nodes waiting for approval to join",
		Long: `List the data nodes the meta leader refused because the cluster admits new
nodes only once approved (zeppelin serve --node-admission admin-approved),
with the address each registered with and where its request came from,
and the approved node IDs that have not joined yet. Admit one with
"zeppelin node approve NODE". The leader lists the nodes it refused itself:
after a leader change the list fills again as the nodes retry.`,
		Example: "  zeppelin node pending",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			return runAdmin(&co, stdout, stderr, "list pending nodes", func(ctx context.Context, cl *client.Client) (pendingJSON, error) {
				a, err := cl.Admissions(ctx)
				if err != nil {
					return pendingJSON{}, err
				}
				v := pendingJSON{Pending: []pendingNodeJSON{}, Approved: []string{}}
				for _, p := range a.Pending {
					v.Pending = append(v.Pending, pendingNodeJSON{Node: string(p.Node.ID), Addr: p.Node.Addr, Labels: p.Node.Labels,
						Weight: p.Node.Weight, RemoteAddr: p.RemoteAddr, First: p.First.UTC(), Last: p.Last.UTC(), Attempts: p.Attempts})
				}
				for _, id := range a.Approved {
					v.Approved = append(v.Approved, string(id))
				}
				return v, nil
			}, func(w io.Writer, v pendingJSON) error {
				if len(v.Pending) == 0 {
					fmt.Fprintln(w, "no node waits for approval")
				} else {
					tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NODE\tADDR\tFROM\tASKING SINCE\tATTEMPTS")
					for _, p := range v.Pending {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", p.Node, p.Addr, p.RemoteAddr, p.First.Format(time.RFC3339), p.Attempts)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				if len(v.Approved) > 0 {
					fmt.Fprintf(w, "approved, not joined yet: %v\n", v.Approved)
				}
				return nil
			})
		},
	}
	co.register(cmd.Flags())
	return cmd
}

// newNodeApproveCmd is "node approve" (approve) or "node revoke".
func newNodeApproveCmd(stdout, stderr io.Writer, approve bool) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "approve NODE",
		Short: "Admit a data node to a cluster that admits new nodes only once approved",
		Long: `Approve data node ID NODE in a cluster started with --node-admission
admin-approved: its next registration is accepted and placement may put
replicas on it ("zeppelin rebalance" gives it its share). The approval may
come before the node first starts; it is used up when the node joins.
"zeppelin node pending" lists the nodes waiting.

With a shared secret any holder of the secret can claim any node ID; with
--tls-client-auth a node's ID is its certificate's common name, so an
approval admits exactly the holder of that certificate.

Refused (exit 1): a node that is a member already.`,
		Example: "  zeppelin node approve n4",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			return runAdmin(&co, stdout, stderr, "approve node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				if err := cl.ApproveNode(ctx, node); err != nil {
					return nodeChangeJSON{}, err
				}
				return nodeChangeJSON{Node: string(node), Change: "approve"}, nil
			}, func(w io.Writer, v nodeChangeJSON) error {
				_, err := fmt.Fprintf(w, "approved node %s: it joins at its next registration\n", v.Node)
				return err
			})
		},
	}
	if !approve {
		cmd.Use = "revoke NODE"
		cmd.Short = "Withdraw a node approval that has not been used yet"
		cmd.Long = `Withdraw the approval of data node ID NODE before the node has joined, and
forget its pending request. A node that joined already stays: drain and
remove it instead ("zeppelin node drain", "zeppelin node remove").

Refused (exit 1): a node neither approved nor pending.`
		cmd.Example = "  zeppelin node revoke n4"
		cmd.RunE = func(_ *cobra.Command, args []string) error {
			node := placement.NodeID(args[0])
			return runAdmin(&co, stdout, stderr, "revoke the approval of node "+string(node), func(ctx context.Context, cl *client.Client) (nodeChangeJSON, error) {
				if err := cl.RevokeNodeApproval(ctx, node); err != nil {
					return nodeChangeJSON{}, err
				}
				return nodeChangeJSON{Node: string(node), Change: "revoke"}, nil
			}, func(w io.Writer, v nodeChangeJSON) error {
				_, err := fmt.Fprintf(w, "node %s is not approved\n", v.Node)
				return err
			})
		}
	}
	co.register(cmd.Flags())
	return cmd
}
