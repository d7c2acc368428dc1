package wire

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/placement"
)

// decoders decode a body into each message a peer or a client can send (a
// request) or answer (a reply), as the handlers and callers do.
var decoders = []func([]byte) error{
	decodeAs[HelloReply], decodeAs[EpochReply], decodeAs[PullRequest], decodeAs[PullReply],
	decodeAs[RegisterRequest], decodeAs[RegisterReply], decodeAs[HeartbeatRequest], decodeAs[HeartbeatReply],
	decodeAs[CreateTableRequest], decodeAs[TableReply], decodeAs[DropTableRequest], decodeAs[SetMasterRequest],
	decodeAs[StatusRequest], decodeAs[StatusReply], decodeAs[PlanRequest], decodeAs[PlanReply],
	decodeAs[RebalanceRequest], decodeAs[RebalanceReply], decodeAs[InSyncRequest], decodeAs[AlterTableRequest],
	decodeAs[MigrateRequest], decodeAs[MigrateReply], decodeAs[CancelMigrationRequest], decodeAs[MigrationsRequest],
	decodeAs[MigrationsReply], decodeAs[NodeAdminRequest], decodeAs[NodeAdminReply], decodeAs[MemberChangeRequest],
	decodeAs[MemberChangeReply], decodeAs[HandOffRequest], decodeAs[HandOffReply], decodeAs[WriteRequest],
	decodeAs[WriteReply], decodeAs[ReadRequest], decodeAs[ReadReply], decodeAs[ListRequest], decodeAs[ListReply],
	decodeAs[CountRequest], decodeAs[CountReply],
	decodeAs[NotifyRequest], decodeAs[NodeStatusRequest], decodeAs[NodeStatusReply], decodeAs[WaitReplicasRequest],
	decodeAs[WaitReplicasReply], decodeAs[HandshakeRequest], decodeAs[HandshakeReply], decodeAs[FetchRequest],
	decodeAs[FetchReply], decodeAs[SnapBeginRequest], decodeAs[SnapBeginReply], decodeAs[SnapChunkRequest],
	decodeAs[SnapChunkReply], decodeAs[SnapEndRequest], decodeAs[Error],
}

func decodeAs[T any](b []byte) error {
	_, err := Decode[T](b, DefaultLimits().MaxRequestElements())
	return err
}

// FuzzDecodeMessages feeds arbitrary bodies to every message decoder: each
// must fail cleanly or succeed, never panic or allocate past its budget.
func FuzzDecodeMessages(f *testing.F) {
	mode := placement.ModeSync
	minIn := 2
	for _, v := range []any{
		&WriteRequest{Table: 1, Epoch: 7, Groups: []WriteGroup{{Partition: 3, Ops: []Op{{Type: OpSet, Key: []byte("k"), Value: []byte("v")}}}}},
		&InSyncRequest{Table: 1, Partition: 2, Node: "n1", Gen: 4, Remove: []placement.NodeID{"n2"}},
		&AlterTableRequest{Name: "t", Mode: &mode, MinInSync: &minIn},
		&WaitReplicasRequest{Table: 1, Epoch: 3, Seqs: []WaitSeq{{Partition: 1, Seq: 99}}, Replicas: 2, TimeoutMs: 100},
		&HeartbeatRequest{Node: "n", Replicas: []ReplicaStatus{{Table: 1, Gen: 2, Slaves: []SlaveProgress{{Node: "s", Acked: 5}}}}},
		&FetchRequest{},
		&CountRequest{Table: 1, Epoch: 2, Partitions: []placement.PartitionID{0, 5}},
		&Error{Code: CodeMoved, Msg: "moved", Addr: "x:1", Epoch: 2},
	} {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range decoders {
			_ = d(b)
		}
	})
}
