package rpc

import (
	"context"
	"testing"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// BenchmarkAuthorize measures the per-request check of each kind of
// connection: nothing to check (no authentication), a node sending a data
// request (one switch), a node's replication fetch (its node ID decoded
// and compared), a user's read (the table ID decoded, named and looked up
// in the grants).
func BenchmarkAuthorize(b *testing.B) {
	users, err := auth.NewUsers([]auth.User{{Name: "app", Password: "pw",
		Grants: []auth.Grant{{Tables: []string{"t"}, Access: auth.LevelWrite}}}})
	if err != nil {
		b.Fatal(err)
	}
	access, _ := users.Check("app", "pw")
	s := NewServer(ServerConfig{TableName: func(placement.TableID) (string, bool) { return "t", true }})
	read, _ := wire.Marshal(&wire.ReadRequest{Table: 7, Keys: []wire.KeyRef{{Partition: 1, Key: []byte("key")}}})
	fetch, _ := wire.Marshal(&wire.FetchRequest{Table: 7, Partition: 1, Node: "n1", From: 100, MaxBytes: 1 << 20})
	for _, tc := range []struct {
		name string
		peer *Peer
		f    wire.Frame
	}{
		{"open/read", &Peer{check: checkNone}, wire.Frame{Kind: wire.KindRead, Body: read}},
		{"node/read", &Peer{check: checkNode, Node: "n1"}, wire.Frame{Kind: wire.KindRead, Body: read}},
		{"node/fetch", &Peer{check: checkNode, Node: "n1"}, wire.Frame{Kind: wire.KindReplFetch, Body: fetch}},
		{"user/read", &Peer{check: checkUser, User: "app", Access: access}, wire.Frame{Kind: wire.KindRead, Body: read}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := &serverConn{s: s, peer: tc.peer}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.authorize(ctx, tc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
