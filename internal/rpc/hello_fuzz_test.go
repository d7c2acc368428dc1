package rpc

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// FuzzHello feeds arbitrary bytes to a server's handshake as what a dialer
// sends first: the hello, then the proof. Whatever arrives, the server
// must neither panic nor hang nor accept the connection without a proof,
// and it must go on serving.
func FuzzHello(f *testing.F) {
	ring := ring(f, secretA)
	users, err := auth.NewUsers([]auth.User{{Name: "alice", Password: "wonderland",
		Grants: []auth.Grant{{Access: auth.LevelRead}}}})
	if err != nil {
		f.Fatal(err)
	}
	frame := func(kind wire.Kind, v any) []byte {
		b, err := wire.AppendMessage(nil, kind, helloID, v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	nonce := make([]byte, auth.NonceLen)
	f.Add(frame(wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion}))
	f.Add(frame(wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion, From: "n1", Node: true, Nonce: nonce}))
	f.Add(append(frame(wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion, Nonce: nonce}),
		frame(wire.KindAuth, &wire.AuthProof{Proofs: [][]byte{make([]byte, 32), {1, 2}}})...))
	f.Add(append(frame(wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion, Nonce: nonce, User: "alice"}),
		frame(wire.KindAuth, &wire.AuthProof{User: make([]byte, 32)})...))
	f.Add(append(frame(wire.KindHello, &wire.Hello{Version: wire.ProtocolVersion, Nonce: nonce, User: "bob", Node: true}),
		frame(wire.KindRead, &echo{V: []byte("x")})...))
	f.Add([]byte("PING\r\n"))
	f.Add([]byte{0, 0, 0, 9, byte(wire.KindHello), 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01})

	s := NewServer(ServerConfig{Keyring: ring, Users: users, HelloTimeout: 20 * time.Millisecond})
	served := make(chan struct{}, 1)
	s.Handle(wire.KindRead, func(context.Context, []byte) (any, error) {
		served <- struct{}{}
		return &echo{}, nil
	})
	f.Cleanup(func() { s.Close() })

	f.Fuzz(func(t *testing.T, in []byte) {
		srvSide, cliSide := net.Pipe()
		s.serveConn(srvSide, func() {})
		go func() {
			_ = cliSide.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = cliSide.Write(in)
		}()
		// The server answers, then closes (no proof can be right) or
		// waits for more until its hello timeout.
		_ = cliSide.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, cliSide)
		cliSide.Close()
		if err != nil {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		select {
		case <-served:
			t.Fatal("a request was served without authentication")
		default:
		}
	})
}

// FuzzHelloDecode decodes arbitrary bodies as the handshake's messages
// and checks arbitrary proofs: nothing may panic, and no proof but the
// right one may pass.
func FuzzHelloDecode(f *testing.F) {
	ring := ring(f, secretA, secretB)
	for _, v := range []any{
		&wire.Hello{Version: 1, From: "n1", Node: true, Nonce: make([]byte, 32), User: "u"},
		&wire.AuthProof{Proofs: [][]byte{make([]byte, 32)}, User: []byte{1}},
		&wire.AuthChallenge{Nonce: make([]byte, 32), Salt: []byte{1}, Iterations: 4096},
	} {
		b, err := wire.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var h wire.Hello
		_ = wire.Unmarshal(body, &h)
		var ch wire.AuthChallenge
		_ = wire.Unmarshal(body, &ch)
		var p wire.AuthProof
		if wire.Unmarshal(body, &p) != nil {
			return
		}
		tr := auth.Transcript{Protocol: "rpc", ServerNonce: h.Nonce, ClientNonce: ch.Nonce, From: h.From, Node: h.Node, User: h.User}
		if _, _, ok := ring.VerifyClient(tr, p.Proofs); ok {
			t.Fatalf("forged proofs %x accepted", p.Proofs)
		}
	})
}
