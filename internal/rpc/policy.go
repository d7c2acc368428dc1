package rpc

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// kindClass says who may send a kind of request on an authenticated
// connection.
type kindClass uint8

const (
	classUnknown   kindClass = iota // not a request of this protocol
	classHandshake                  // Hello and Auth: only to open a connection
	classStatus                     // any authenticated peer: maps, status, statistics
	classData                       // reads and writes: a user needs a grant on the table
	classAdmin                      // administration: a user needs admin on the table, or on every table
	classNode                       // only cluster nodes (data nodes, meta members)
)

// Frame limits by class, below the server's MaxFrame.
const (
	// controlMaxFrame bounds status and administration requests, and
	// every request of a peer that may not send its kind (it is read only
	// to be refused).
	controlMaxFrame = 16 << 20
	// nodeMaxFrame bounds node-only requests of nodes: heartbeats list
	// every replica of a node.
	nodeMaxFrame = 64 << 20
)

// policy is what the server checks about one kind of request.
type policy struct {
	class kindClass
	// level is what a data request needs on its table.
	level auth.Level
	// node decodes the node a node-only request speaks for (nil when it
	// names none).
	node func(body []byte) (placement.NodeID, error)
	// table decodes the table an administration request is about ("":
	// the cluster); nil for requests about the cluster.
	table func(body []byte) (string, error)
}

// policyOf returns the policy of kind k.
func policyOf(k wire.Kind) policy {
	switch k {
	case wire.KindHello, wire.KindAuth:
		return policy{class: classHandshake}
	case wire.KindMetaPull, wire.KindMetaStatus, wire.KindMetaMigrations, wire.KindNodeStatus, wire.KindServerStats:
		return policy{class: classStatus}
	case wire.KindRead, wire.KindList, wire.KindCount:
		return policy{class: classData, level: auth.LevelRead}
	case wire.KindWrite, wire.KindWaitRepl:
		return policy{class: classData, level: auth.LevelWrite}
	case wire.KindMetaCreateTable, wire.KindMetaDropTable, wire.KindMetaAlterTable:
		return policy{class: classAdmin, table: nameField}
	case wire.KindMetaSetMaster, wire.KindMetaMigrate, wire.KindMetaPlan, wire.KindMetaRebalance:
		return policy{class: classAdmin, table: tableField}
	case wire.KindMetaCancel, wire.KindMetaNodeAdmin, wire.KindMetaMembers:
		return policy{class: classAdmin}
	case wire.KindMetaRegister:
		return policy{class: classNode, node: registerNode}
	case wire.KindMetaHeartbeat, wire.KindMetaHandOff, wire.KindMetaInSync,
		wire.KindReplHandshake, wire.KindReplFetch, wire.KindSnapBegin:
		return policy{class: classNode, node: nodeField}
	case wire.KindSnapChunk, wire.KindSnapEnd, wire.KindNodeNotify:
		return policy{class: classNode}
	}
	return policy{}
}

func nodeField(body []byte) (placement.NodeID, error) {
	var r struct {
		Node placement.NodeID `msgpack:"n"`
	}
	err := wire.Unmarshal(body, &r)
	return r.Node, err
}

func registerNode(body []byte) (placement.NodeID, error) {
	var r struct {
		Node struct {
			ID placement.NodeID `msgpack:"id"`
		} `msgpack:"n"`
	}
	err := wire.Unmarshal(body, &r)
	return r.Node.ID, err
}

func nameField(body []byte) (string, error) {
	var r struct {
		Name string `msgpack:"n"`
	}
	err := wire.Unmarshal(body, &r)
	return r.Name, err
}

func tableField(body []byte) (string, error) {
	var r struct {
		Table string `msgpack:"t"`
	}
	err := wire.Unmarshal(body, &r)
	return r.Table, err
}

func tableIDField(body []byte) (placement.TableID, error) {
	var r struct {
		Table placement.TableID `msgpack:"t"`
	}
	err := wire.Unmarshal(body, &r)
	return r.Table, err
}

// frameMax returns the largest frame of kind k that peer may send, 0 for
// a kind that is no request.
func (c *serverConn) frameMax(k wire.Kind) int {
	p := policyOf(k)
	switch p.class {
	case classUnknown:
		// A kind this table does not know yet but a handler serves (one
		// added since): members may send it as before; users are refused
		// it after reading at most a control frame.
		if c.s.handler(k) == nil {
			return 0
		}
		if c.peer.check == checkUser {
			return min(c.s.cfg.MaxFrame, controlMaxFrame)
		}
		return c.s.cfg.MaxFrame
	case classHandshake:
		return 0 // a Hello after the first is a protocol error
	case classData:
		if c.peer.check == checkUser && c.peer.Access.Max() < p.level {
			return controlMaxFrame
		}
		return c.s.cfg.MaxFrame
	case classNode:
		if c.peer.check == checkNone || c.peer.check == checkNode {
			return min(c.s.cfg.MaxFrame, nodeMaxFrame)
		}
	}
	return min(c.s.cfg.MaxFrame, controlMaxFrame)
}

// authorize checks that the connection's peer may send request f: the
// identity the handshake proved against what the request says. It
// returns nil, or the error to answer with. Connections of a server that
// authenticates nobody, and of nodes sending anything but node-only
// requests, cost one switch.
func (c *serverConn) authorize(ctx context.Context, f wire.Frame) *wire.Error {
	pr := c.peer
	if pr.check == checkNone {
		return nil
	}
	p := policyOf(f.Kind)
	switch pr.check {
	case checkNode:
		if p.node == nil {
			return nil
		}
		n, err := p.node(f.Body)
		if err != nil {
			return wire.Errorf(wire.CodeBadRequest, "bad %v request: %v", f.Kind, err)
		}
		if string(n) != pr.Node {
			return wire.Errorf(wire.CodeRefused, "%v for node %q refused: this connection authenticated as node %q", f.Kind, n, pr.Node)
		}
		return nil
	case checkClient:
		if p.class == classNode {
			return wire.Errorf(wire.CodeRefused, "%v is for cluster nodes only; this connection authenticated as a client", f.Kind)
		}
		return nil
	}
	// A user.
	switch p.class {
	case classUnknown:
		return wire.Errorf(wire.CodeNoPerm, "user %s may not send %v", pr.User, f.Kind)
	case classStatus:
		return nil
	case classNode:
		return wire.Errorf(wire.CodeRefused, "%v is for cluster nodes only; this connection authenticated as user %s", f.Kind, pr.User)
	case classAdmin:
		table := ""
		if p.table != nil {
			t, err := p.table(f.Body)
			if err != nil {
				return wire.Errorf(wire.CodeBadRequest, "bad %v request: %v", f.Kind, err)
			}
			table = t
		}
		if !pr.Access.Can(table, auth.LevelAdmin) {
			if table == "" {
				return wire.Errorf(wire.CodeNoPerm, "user %s may not run %v: it needs admin on every table", pr.User, f.Kind)
			}
			return wire.Errorf(wire.CodeNoPerm, "user %s may not run %v on table %s: it needs admin on it", pr.User, f.Kind, table)
		}
		return nil
	case classData:
		if pr.Access.Can("", p.level) {
			return nil
		}
		id, err := tableIDField(f.Body)
		if err != nil {
			return wire.Errorf(wire.CodeBadRequest, "bad %v request: %v", f.Kind, err)
		}
		var name string
		ok := false
		if tn := c.s.cfg.TableName; tn != nil {
			name, ok = tn(id)
		}
		if !ok {
			// The server's map does not have the table yet: the
			// client retries, by when it has.
			return wire.Errorf(wire.CodeWait, "table %d is not in this server's map yet", id)
		}
		if !pr.Access.Can(name, p.level) {
			return wire.Errorf(wire.CodeNoPerm, "user %s has no %s access to table %s", pr.User, p.level, name)
		}
		return nil
	}
	return wire.Errorf(wire.CodeBadRequest, "unknown message kind %v", f.Kind)
}

// checkLevel says what authorize checks on a connection.
type checkLevel uint8

const (
	checkNone   checkLevel = iota // the server authenticates nobody: everything goes
	checkNode                     // a node: node-only requests must speak for it
	checkClient                   // a client with the cluster secret: no node-only requests
	checkUser                     // a user: grants
)

func (l checkLevel) String() string {
	return [...]string{"open", "node", "client", "user"}[l]
}
