package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// ErrMetaMemberNotFound is returned by RemoveMetaMember and
// ReplaceMetaMember when the member named is not in the meta group.
var ErrMetaMemberNotFound = errors.New("zeppelin: no such meta member")

// MetaMemberStatus describes one member of the meta Raft group as the
// meta leader sees it.
type MetaMemberStatus struct {
	// ID is the member's replica ID in the group.
	ID uint64
	// RaftAddr is the address of the member's Raft transport.
	RaftAddr string
	// RPCAddr is the member's RPC address; it is empty until a member
	// that was added has started and recorded itself.
	RPCAddr string
	// Leader is set for the member leading the group.
	Leader bool
	// Voting is set for members that vote in elections and count towards
	// the quorum (every member added by this version).
	Voting bool
	// Reachable is set when the member answered the leader just now and
	// named it as the leader of the current term: its RPC listener and
	// its Raft link to the leader work. The leader is always reachable.
	Reachable bool
}

// MetaMembers lists the members of the meta group, from the leader, in
// the order of their IDs.
func (c *Client) MetaMembers(ctx context.Context) ([]MetaMemberStatus, error) {
	return c.changeMembers(ctx, &wire.MemberChangeRequest{Op: wire.MemberList})
}

// AddMetaMember adds member id, whose Raft transport listens at raftAddr,
// to the meta group and returns the members after the change. Then start
// the new member with zeppelin.Config.MetaJoin (serve --meta-join) and the
// same ID and Raft address: until it runs it is listed as unreachable,
// without an RPC address.
//
// The call is refused with ErrInvalid, and nothing changes, when id is in
// use or belonged to a removed member (IDs are never used twice), when
// raftAddr is malformed or another member's, or when the grown group
// would need the new member to commit: fewer of its members live than its
// quorum, not counting the new one (a three-member group with a member
// down, say; replace that member instead). A single-member group may
// always grow.
func (c *Client) AddMetaMember(ctx context.Context, id uint64, raftAddr string) ([]MetaMemberStatus, error) {
	return c.changeMembers(ctx, &wire.MemberChangeRequest{Op: wire.MemberAdd, ID: id, RaftAddr: raftAddr})
}

// RemoveMetaMember removes member id from the meta group and returns the
// members after the change. Stop the removed member's process afterwards
// and do not start its meta role again from the same directory. Removing
// the leader is allowed: it hands the leadership to another member, which
// removes it.
//
// The call returns ErrMetaMemberNotFound when id is not a member and never
// was (removing a removed member again succeeds and changes nothing), and
// is refused with ErrInvalid, nothing changed, when id is the only member
// or when fewer than a quorum of the remaining members are live.
func (c *Client) RemoveMetaMember(ctx context.Context, id uint64) ([]MetaMemberStatus, error) {
	return c.changeMembers(ctx, &wire.MemberChangeRequest{Op: wire.MemberRemove, ID: id})
}

// ReplaceMetaMember replaces member dead (usually one that is down for
// good) with a new member id at raftAddr, and returns the members after
// the change; then start the new member as for AddMetaMember. The group
// adds the new member first when it can commit without it, and removes
// the dead one first otherwise (a three-member group with the dead member
// down), so it can commit at every step.
//
// The call returns ErrMetaMemberNotFound when dead is not a member and
// never was, and is refused with ErrInvalid, nothing changed, when id
// equals dead, for the reasons AddMetaMember gives about id and raftAddr,
// or when the group could not commit in either order. Repeating a
// replacement that was interrupted (a lost reply, a leader change)
// finishes what is left of it.
func (c *Client) ReplaceMetaMember(ctx context.Context, dead, id uint64, raftAddr string) ([]MetaMemberStatus, error) {
	return c.changeMembers(ctx, &wire.MemberChangeRequest{Op: wire.MemberReplace, ID: id, RaftAddr: raftAddr, Replace: dead})
}

// changeMembers sends a membership request to the meta leader and, after
// a change, waits until the client's map has it (the map lists the meta
// members the client calls).
func (c *Client) changeMembers(ctx context.Context, req *wire.MemberChangeRequest) ([]MetaMemberStatus, error) {
	var reply wire.MemberChangeReply
	if err := c.adminCall(ctx, true, wire.KindMetaMembers, req, &reply); err != nil {
		if errors.Is(err, ErrUnknownName) {
			return nil, fmt.Errorf("%w: %w", ErrMetaMemberNotFound, err)
		}
		return nil, err
	}
	if req.Op != wire.MemberList {
		c.waitEpoch(ctx, reply.Epoch)
	}
	out := make([]MetaMemberStatus, len(reply.Members))
	for i, m := range reply.Members {
		out[i] = MetaMemberStatus{ID: m.ID, RaftAddr: m.RaftAddr, RPCAddr: m.RPCAddr,
			Leader: m.Leader, Voting: m.Voting, Reachable: m.Reachable}
	}
	return out, nil
}
