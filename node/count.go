package node

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

func (s *Server) handleCount(ctx context.Context, body []byte) (any, error) {
	req, err := wire.Decode[wire.CountRequest](body, s.cfg.Limits.MaxRequestElements())
	if err != nil {
		return nil, err
	}
	if werr := s.cfg.Limits.CheckMulti(len(req.Partitions)); werr != nil {
		return nil, werr
	}
	reply := &wire.CountReply{Results: make([]wire.CountResult, len(req.Partitions))}
	for i, p := range req.Partitions {
		start := time.Now()
		n, werr := s.count1(ctx, req, p)
		reply.Results[i] = wire.CountResult{Keys: n, Err: werr}
		s.observe("count", req.Table, start, werr)
	}
	return reply, nil
}

// count1 counts the live keys of one partition this node masters.
func (s *Server) count1(ctx context.Context, req *wire.CountRequest, p placement.PartitionID) (int64, *wire.Error) {
	r, _, werr := s.serving(ctx, req.Table, p, req.Epoch, false, false)
	if werr != nil {
		return 0, werr
	}
	n, seq, err := r.part.Count()
	if err != nil {
		return 0, s.partErr(ctx, err)
	}
	if werr := s.readReplicated(ctx, r, seq, false); werr != nil {
		return 0, werr
	}
	return n, nil
}
