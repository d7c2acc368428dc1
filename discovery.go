package zeppelin

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// gossipMeta is what each process announces through memberlist (at most
// memberlist.MetaMaxSize bytes).
type gossipMeta struct {
	NodeID string     `msgpack:"i"`
	RPC    string     `msgpack:"r"`
	Roles  wire.Roles `msgpack:"o"`
	MetaID uint64     `msgpack:"m,omitempty"`
	Raft   string     `msgpack:"f,omitempty"`
}

// discovery runs memberlist. It only finds peers: every decision is the
// meta group's.
type discovery struct {
	ml   *memberlist.Memberlist
	self []byte
	log  *slog.Logger

	mu    sync.Mutex
	peers map[string]gossipMeta // by memberlist name (node ID)

	onChange func(*discovery)
}

// startDiscovery starts memberlist on addr. With keys (derived from the
// cluster secrets, the first primary) every gossip message is encrypted
// and authenticated with them, so a process without the secret can
// neither join nor read the gossip.
func startDiscovery(addr string, self gossipMeta, local bool, keys [][]byte, log *slog.Logger, onChange func(*discovery)) (*discovery, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	meta, err := wire.Marshal(&self)
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("zeppelin: gossip metadata of %d bytes exceeds %d", len(meta), memberlist.MetaMaxSize)
	}
	d := &discovery{self: meta, log: log, peers: make(map[string]gossipMeta), onChange: onChange}
	var c *memberlist.Config
	if local {
		c = memberlist.DefaultLocalConfig()
		c.ProbeInterval = 200 * time.Millisecond
		c.ProbeTimeout = 100 * time.Millisecond
		c.GossipInterval = 50 * time.Millisecond
		c.PushPullInterval = 2 * time.Second
		c.TCPTimeout = time.Second
	} else {
		c = memberlist.DefaultLANConfig()
	}
	c.Name = self.NodeID
	if host == "" {
		host = "0.0.0.0"
	}
	c.BindAddr = host
	c.BindPort = port
	c.AdvertisePort = port
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		c.AdvertiseAddr = host
	}
	// A restarted process may come back on another port under the same
	// name; accept it at once.
	c.DeadNodeReclaimTime = time.Millisecond
	if len(keys) > 0 {
		ring, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err != nil {
			return nil, fmt.Errorf("zeppelin: gossip keyring: %w", err)
		}
		c.Keyring = ring
		c.SecretKey = keys[0]
		c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	}
	c.Delegate = d
	c.Events = d
	c.LogOutput = logWriter{log}
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("zeppelin: start gossip on %s: %w", addr, err)
	}
	d.ml = ml
	return d, nil
}

// Addr returns the advertised gossip address.
func (d *discovery) Addr() string {
	n := d.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// join joins the memberlist cluster through addrs.
func (d *discovery) join(addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	_, err := d.ml.Join(addrs)
	return err
}

// metaMembers returns the meta members announced through gossip.
func (d *discovery) metaMembers() []placement.MetaMember {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []placement.MetaMember
	for _, p := range d.peers {
		if p.Roles&wire.RoleMeta != 0 && p.MetaID != 0 {
			out = append(out, placement.MetaMember{ID: p.MetaID, RaftAddr: p.Raft, RPCAddr: p.RPC})
		}
	}
	slices.SortFunc(out, func(a, b placement.MetaMember) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (d *discovery) close() {
	if d == nil || d.ml == nil {
		return
	}
	_ = d.ml.Leave(500 * time.Millisecond)
	_ = d.ml.Shutdown()
}

// memberlist.Delegate: only node metadata is used.

func (d *discovery) NodeMeta(int) []byte                 { return d.self }
func (d *discovery) NotifyMsg([]byte)                    {}
func (d *discovery) GetBroadcasts(int, int) [][]byte     { return nil }
func (d *discovery) LocalState(bool) []byte              { return nil }
func (d *discovery) MergeRemoteState(buf []byte, _ bool) {}

// memberlist.EventDelegate: calls are serialised and must not block.

func (d *discovery) NotifyJoin(n *memberlist.Node)   { d.upsert(n) }
func (d *discovery) NotifyUpdate(n *memberlist.Node) { d.upsert(n) }
func (d *discovery) NotifyLeave(n *memberlist.Node) {
	d.mu.Lock()
	delete(d.peers, n.Name)
	d.mu.Unlock()
	d.changed()
}

func (d *discovery) upsert(n *memberlist.Node) {
	var gm gossipMeta
	if err := wire.Unmarshal(n.Meta, &gm); err != nil {
		d.log.Debug("zeppelin: ignoring peer with unreadable gossip metadata", "peer", n.Name, "err", err)
		return
	}
	d.mu.Lock()
	d.peers[n.Name] = gm
	d.mu.Unlock()
	d.changed()
}

func (d *discovery) changed() {
	if d.onChange != nil {
		d.onChange(d)
	}
}

// logWriter routes memberlist's log lines to slog.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	// memberlist reports routine events (a peer that left, a closed
	// socket at shutdown) as errors: it decides nothing here, so they are
	// at most warnings.
	level := slog.LevelDebug
	if bytes.Contains(p, []byte("[ERR]")) || bytes.Contains(p, []byte("[WARN]")) {
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, line, "component", "gossip")
	return len(p), nil
}

var _ io.Writer = logWriter{}
