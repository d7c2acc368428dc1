package client

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// PendingNode is a data node that asked to join a cluster whose meta group
// admits new nodes only once an administrator approves them
// (zeppelin.Config.NodeAdmission "admin-approved").
type PendingNode struct {
	// Node is the node as it registered: ID, RPC address, labels, weight.
	Node placement.Node
	// RemoteAddr is the address its last registration came from.
	RemoteAddr string
	// First and Last are when its first and last refused registrations
	// reached the meta leader; Attempts counts them.
	First, Last time.Time
	Attempts    int
}

// Admissions lists the nodes waiting for approval and the node IDs
// approved that have not registered yet.
type Admissions struct {
	// Pending are the nodes the meta leader refused for want of
	// approval, by ID. A leader remembers those it refused itself, so
	// after a leader change the list fills again as the nodes retry
	// (within a heartbeat interval).
	Pending []PendingNode
	// Approved are approved IDs whose node has not registered yet.
	Approved []placement.NodeID
}

// ApproveNode admits the data node ID node to a cluster whose meta group
// admits new nodes only once approved. It may come before the node first
// registers; the approval is used up when the node registers. Approving a
// node that is a member already fails with ErrInvalid. It needs admin
// access.
func (c *Client) ApproveNode(ctx context.Context, node placement.NodeID) error {
	_, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeApprove, Node: node})
	return err
}

// RevokeNodeApproval withdraws an approval that has not been used yet and
// forgets the node's pending request; ErrUnknownName when there is neither.
// It does not remove a node that registered already (see RemoveNode).
func (c *Client) RevokeNodeApproval(ctx context.Context, node placement.NodeID) error {
	_, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodeRevoke, Node: node})
	return err
}

// Admissions returns the nodes waiting for approval and the approvals not
// used yet.
func (c *Client) Admissions(ctx context.Context) (Admissions, error) {
	reply, err := c.nodeAdmin(ctx, wire.NodeAdminRequest{Op: wire.NodePending})
	if err != nil {
		return Admissions{}, err
	}
	out := Admissions{Approved: reply.Approved, Pending: make([]PendingNode, len(reply.Pending))}
	for i, p := range reply.Pending {
		out.Pending[i] = PendingNode{Node: p.Node, RemoteAddr: p.RemoteAddr,
			First: time.UnixMilli(p.FirstMs), Last: time.UnixMilli(p.LastMs), Attempts: p.Attempts}
	}
	return out, nil
}
