package meta

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/zeppelin-kv/zeppelin/internal/run"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
)

// The meta group's Raft traffic normally runs over dragonboat's own TCP
// transport (with its mutual TLS). When the process is given a
// transport.Network (tests inject partitions and pauses through one),
// Raft messages and snapshot chunks travel over that network instead, so
// a fault between two hosts cuts their Raft traffic as it cuts their RPCs.
//
// Each sender dials its own connection and writes frames
// [u32 length][u8 type][protobuf body]; the receiver reads them in order
// and hands them to dragonboat. Nothing is ever answered on a connection.

// Raft frame types.
const (
	raftFrameBatch byte = 1 // a pb.MessageBatch
	raftFrameChunk byte = 2 // a pb.Chunk (snapshot transfer)
)

const (
	// raftMaxFrame bounds one Raft frame; dragonboat's snapshot chunks are
	// a few MiB.
	raftMaxFrame = 64 << 20
	// raftWriteTimeout bounds one frame write: a peer that stops reading
	// (paused, cut off) fails the send, and dragonboat reconnects later.
	raftWriteTimeout = 2 * time.Second
	// raftDialTimeout bounds connecting to a peer.
	raftDialTimeout = 2 * time.Second
)

// netTransportFactory makes dragonboat carry Raft traffic over a
// transport.Network.
type netTransportFactory struct {
	network transport.Network
	log     *slog.Logger
}

var _ config.TransportFactory = netTransportFactory{}

// Create implements config.TransportFactory.
func (f netTransportFactory) Create(nhc config.NodeHostConfig, mh raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	return &netTransport{
		network: f.network,
		log:     f.log,
		addr:    nhc.GetListenAddress(),
		onBatch: mh,
		onChunk: ch,
		conns:   make(map[net.Conn]struct{}),
	}
}

// Validate implements config.TransportFactory: addresses are host:port.
func (netTransportFactory) Validate(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	return err == nil && host != "" && port != ""
}

// netTransport is a raftio.ITransport over a transport.Network.
type netTransport struct {
	network transport.Network
	log     *slog.Logger
	addr    string
	onBatch raftio.MessageHandler
	onChunk raftio.ChunkHandler

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{} // accepted and dialed, closed by Close
	closed bool
	// group runs the accept loop and one receive loop per connection.
	group run.Group
}

var _ raftio.ITransport = (*netTransport)(nil)

// Name implements raftio.ITransport.
func (t *netTransport) Name() string { return "zeppelin-network" }

// Start implements raftio.ITransport: it listens on the Raft address.
func (t *netTransport) Start() error {
	ln, err := t.network.Listen(t.addr)
	if err != nil {
		return fmt.Errorf("meta: raft listen on %s: %w", t.addr, err)
	}
	t.mu.Lock()
	t.ln = ln
	t.mu.Unlock()
	if !t.group.Go(func() { t.acceptLoop(ln) }) {
		_ = ln.Close()
	}
	return nil
}

// Close implements raftio.ITransport: it stops the listener and closes
// every connection, then waits for the receive loops.
func (t *netTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.group.Stop()
	if t.ln != nil {
		_ = t.ln.Close()
	}
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.group.Wait()
	return nil
}

// track registers c so Close closes it; it reports false (and closes c)
// when the transport is already closed.
func (t *netTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *netTransport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	_ = c.Close()
}

func (t *netTransport) acceptLoop(ln net.Listener) {
	backoff := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if t.group.Stopped() || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Warn("meta: raft accept failed; retrying", "err", err)
			select {
			case <-t.group.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if !t.track(c) {
			return
		}
		if !t.group.Go(func() { t.serve(c) }) {
			t.untrack(c)
			return
		}
	}
}

// serve reads frames from one peer until the connection ends or a frame is
// malformed.
func (t *netTransport) serve(c net.Conn) {
	defer t.untrack(c)
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > raftMaxFrame {
			t.log.Warn("meta: raft frame too large; closing the connection", "bytes", n, "peer", c.RemoteAddr().String())
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch hdr[4] {
		case raftFrameBatch:
			var b pb.MessageBatch
			if err := b.Unmarshal(body); err != nil {
				t.log.Warn("meta: undecodable raft message batch; closing the connection", "err", err)
				return
			}
			t.onBatch(b)
		case raftFrameChunk:
			var ch pb.Chunk
			if err := ch.Unmarshal(body); err != nil {
				t.log.Warn("meta: undecodable raft snapshot chunk; closing the connection", "err", err)
				return
			}
			if !t.onChunk(ch) {
				return
			}
		default:
			t.log.Warn("meta: unknown raft frame type; closing the connection", "type", hdr[4])
			return
		}
	}
}

func (t *netTransport) dial(ctx context.Context, target string) (*raftConn, error) {
	dctx, cancel := context.WithTimeout(ctx, raftDialTimeout)
	defer cancel()
	c, err := t.network.Dial(dctx, target)
	if err != nil {
		return nil, fmt.Errorf("meta: raft dial %s: %w", target, err)
	}
	if !t.track(c) {
		return nil, fmt.Errorf("meta: raft transport closed")
	}
	return &raftConn{t: t, c: c}, nil
}

// GetConnection implements raftio.ITransport.
func (t *netTransport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	return t.dial(ctx, target)
}

// GetSnapshotConnection implements raftio.ITransport.
func (t *netTransport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	return t.dial(ctx, target)
}

// raftConn is one outgoing connection; dragonboat uses each from a single
// goroutine.
type raftConn struct {
	t   *netTransport
	c   net.Conn
	buf []byte
}

var (
	_ raftio.IConnection         = (*raftConn)(nil)
	_ raftio.ISnapshotConnection = (*raftConn)(nil)
)

// Close implements raftio.IConnection.
func (rc *raftConn) Close() { rc.t.untrack(rc.c) }

// SendMessageBatch implements raftio.IConnection.
func (rc *raftConn) SendMessageBatch(b pb.MessageBatch) error {
	return rc.send(raftFrameBatch, b.SizeUpperLimit(), func(dst []byte) ([]byte, error) {
		n, err := b.MarshalTo(dst)
		return dst[:n], err
	})
}

// SendChunk implements raftio.ISnapshotConnection.
func (rc *raftConn) SendChunk(ch pb.Chunk) error {
	return rc.send(raftFrameChunk, ch.Size(), func(dst []byte) ([]byte, error) {
		n, err := ch.MarshalTo(dst)
		return dst[:n], err
	})
}

func (rc *raftConn) send(kind byte, size int, marshal func([]byte) ([]byte, error)) error {
	if size > raftMaxFrame {
		return fmt.Errorf("meta: raft frame of %d bytes exceeds %d", size, raftMaxFrame)
	}
	if cap(rc.buf) < 5+size {
		rc.buf = make([]byte, 5+size)
	}
	body, err := marshal(rc.buf[5 : 5+size])
	if err != nil {
		return fmt.Errorf("meta: encode raft frame: %w", err)
	}
	frame := rc.buf[:5+len(body)]
	binary.BigEndian.PutUint32(frame[:4], uint32(len(body)))
	frame[4] = kind
	if err := rc.c.SetWriteDeadline(time.Now().Add(raftWriteTimeout)); err != nil {
		return err
	}
	_, err = rc.c.Write(frame)
	return err
}
