package node

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// NewMetaClient returns a MetaClient that reaches the meta group through mc.
func NewMetaClient(mc *rpc.MetaCaller) MetaClient { return rpcMeta{mc} }

type rpcMeta struct{ mc *rpc.MetaCaller }

func (r rpcMeta) Register(ctx context.Context, n placement.Node) error {
	var reply wire.RegisterReply
	return r.mc.Call(ctx, false, wire.KindMetaRegister, &wire.RegisterRequest{Node: n}, &reply)
}

func (r rpcMeta) Heartbeat(ctx context.Context, req *wire.HeartbeatRequest) (*wire.HeartbeatReply, error) {
	var reply wire.HeartbeatReply
	if err := r.mc.Call(ctx, true, wire.KindMetaHeartbeat, req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

func (r rpcMeta) Pull(ctx context.Context, known placement.Epoch, leader bool) (*placement.Map, error) {
	var reply wire.PullReply
	if err := r.mc.Call(ctx, leader, wire.KindMetaPull, &wire.PullRequest{Known: known}, &reply); err != nil {
		return nil, err
	}
	if reply.Map != nil {
		r.mc.SetMembers(reply.Map.Meta)
	}
	return reply.Map, nil
}
