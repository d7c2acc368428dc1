package wire

import "fmt"

// ProtocolVersion is the version carried by Hello. A server refuses other
// versions.
const ProtocolVersion = 1

// Kind identifies the message type of a frame.
type Kind uint8

// Message kinds. A successful reply carries its request's kind.
const (
	KindError Kind = 1 // reply only: body is an Error
	KindHello Kind = 2 // Hello → HelloReply
	KindAuth  Kind = 3 // AuthChallenge ← Hello; AuthProof → HelloReply (authenticated connections)

	// Meta service (answered by meta members).
	KindMetaPull        Kind = 10 // PullRequest → PullReply
	KindMetaRegister    Kind = 11 // RegisterRequest → RegisterReply
	KindMetaHeartbeat   Kind = 12 // HeartbeatRequest → HeartbeatReply
	KindMetaCreateTable Kind = 13 // CreateTableRequest → TableReply
	KindMetaDropTable   Kind = 14 // DropTableRequest → EpochReply
	KindMetaSetMaster   Kind = 15 // SetMasterRequest → EpochReply
	KindMetaStatus      Kind = 16 // StatusRequest → StatusReply
	KindMetaPlan        Kind = 17 // PlanRequest → PlanReply
	KindMetaRebalance   Kind = 18 // RebalanceRequest → EpochReply
	KindMetaHandOff     Kind = 19 // HandOffRequest → HandOffReply
	KindMetaMigrate     Kind = 20 // MigrateRequest → MigrateReply
	KindMetaCancel      Kind = 21 // CancelMigrationRequest → EpochReply
	KindMetaMigrations  Kind = 22 // MigrationsRequest → MigrationsReply
	KindMetaNodeAdmin   Kind = 23 // NodeAdminRequest → EpochReply
	KindMetaMembers     Kind = 24 // MemberChangeRequest → MemberChangeReply
	KindMetaInSync      Kind = 25 // InSyncRequest → EpochReply
	KindMetaAlterTable  Kind = 26 // AlterTableRequest → TableReply

	// Data service (answered by data nodes).
	KindRead       Kind = 30 // ReadRequest → ReadReply
	KindWrite      Kind = 31 // WriteRequest → WriteReply
	KindList       Kind = 32 // ListRequest → ListReply
	KindNodeStatus Kind = 33 // NodeStatusRequest → NodeStatusReply
	KindNodeNotify Kind = 34 // NotifyRequest → EpochReply
	KindWaitRepl   Kind = 35 // WaitReplicasRequest → WaitReplicasReply
	KindCount      Kind = 36 // CountRequest → CountReply

	// Replication (slave → master).
	KindReplHandshake Kind = 40 // HandshakeRequest → HandshakeReply
	KindReplFetch     Kind = 41 // FetchRequest → FetchReply
	KindSnapBegin     Kind = 42 // SnapBeginRequest → SnapBeginReply
	KindSnapChunk     Kind = 43 // SnapChunkRequest → SnapChunkReply
	KindSnapEnd       Kind = 44 // SnapEndRequest → EpochReply

	// Process service (answered by every process, whatever its roles).
	KindServerStats Kind = 50 // ServerStatsRequest → ServerStatsReply
)

var kindNames = map[Kind]string{
	KindError:           "error",
	KindHello:           "hello",
	KindAuth:            "auth",
	KindMetaPull:        "meta.pull",
	KindMetaRegister:    "meta.register",
	KindMetaHeartbeat:   "meta.heartbeat",
	KindMetaCreateTable: "meta.create_table",
	KindMetaDropTable:   "meta.drop_table",
	KindMetaSetMaster:   "meta.set_master",
	KindMetaStatus:      "meta.status",
	KindMetaPlan:        "meta.plan",
	KindMetaRebalance:   "meta.rebalance",
	KindMetaHandOff:     "meta.hand_off",
	KindMetaMigrate:     "meta.migrate",
	KindMetaCancel:      "meta.cancel_migration",
	KindMetaMigrations:  "meta.migrations",
	KindMetaNodeAdmin:   "meta.node_admin",
	KindMetaMembers:     "meta.members",
	KindMetaInSync:      "meta.in_sync",
	KindMetaAlterTable:  "meta.alter_table",
	KindRead:            "read",
	KindWrite:           "write",
	KindList:            "list",
	KindNodeStatus:      "node.status",
	KindNodeNotify:      "node.notify",
	KindWaitRepl:        "wait_replicas",
	KindCount:           "count",
	KindReplHandshake:   "repl.handshake",
	KindReplFetch:       "repl.fetch",
	KindSnapBegin:       "snap.begin",
	KindSnapChunk:       "snap.chunk",
	KindSnapEnd:         "snap.end",
	KindServerStats:     "server.stats",
}

// Known reports whether k is a kind of this protocol version.
func (k Kind) Known() bool {
	_, ok := kindNames[k]
	return ok
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}
