package node

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// NewMetaClient returns a MetaClient that reaches the meta group through
// mc, giving each member at most attempt to answer one call (0: no bound
// but the call's own), so that a leader that stops answering — paused, cut
// off — costs a node one attempt, not its lease.
func NewMetaClient(mc *rpc.MetaCaller, attempt time.Duration) MetaClient {
	return rpcMeta{mc: mc, attempt: attempt}
}

type rpcMeta struct {
	mc      *rpc.MetaCaller
	attempt time.Duration
}

func (r rpcMeta) Register(ctx context.Context, req *wire.RegisterRequest) (placement.Epoch, error) {
	var reply wire.RegisterReply
	if err := r.mc.CallBounded(ctx, r.attempt, false, wire.KindMetaRegister, req, &reply); err != nil {
		return 0, err
	}
	return reply.Epoch, nil
}

func (r rpcMeta) Heartbeat(ctx context.Context, req *wire.HeartbeatRequest) (*wire.HeartbeatReply, error) {
	var reply wire.HeartbeatReply
	if err := r.mc.CallBounded(ctx, r.attempt, true, wire.KindMetaHeartbeat, req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

func (r rpcMeta) Pull(ctx context.Context, known placement.Epoch, leader bool) (*placement.Map, error) {
	var reply wire.PullReply
	if err := r.mc.CallBounded(ctx, r.attempt, leader, wire.KindMetaPull, &wire.PullRequest{Known: known}, &reply); err != nil {
		return nil, err
	}
	if reply.Map != nil {
		r.mc.SetMembers(reply.Map.Meta)
	}
	return reply.Map, nil
}

func (r rpcMeta) LeaderHint(addr string, term uint64) { r.mc.LeaderHint(addr, term) }

func (r rpcMeta) InSync(ctx context.Context, req *wire.InSyncRequest) (placement.Epoch, error) {
	var reply wire.EpochReply
	if err := r.mc.CallBounded(ctx, r.attempt, true, wire.KindMetaInSync, req, &reply); err != nil {
		return 0, err
	}
	return reply.Epoch, nil
}
