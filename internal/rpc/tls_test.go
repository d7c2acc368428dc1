package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/auth/authtest"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
	"github.com/zeppelin-kv/zeppelin/placement"
)

// tlsNet is a TLS network presenting certFile, trusting ca, requiring
// client certificates when clientAuth.
func tlsNet(t *testing.T, ca *authtest.CA, certFile, keyFile string, clientAuth bool) transport.Network {
	t.Helper()
	src, err := auth.NewCertSource(certFile, keyFile, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	return transport.TLS(nil, src.ServerConfig(clientAuth), func(addr string) *tls.Config {
		host, _, _ := net.SplitHostPort(addr)
		return src.ClientConfig(host)
	})
}

// startTLSServer serves on network (the identity checks on) and returns
// the server and its address.
func startTLSServer(t *testing.T, network transport.Network) (*Server, string) {
	t.Helper()
	s := NewServer(ServerConfig{Hello: func(wire.Hello) wire.HelloReply { return wire.HelloReply{NodeID: "srv"} }})
	s.Handle(wire.KindRead, func(_ context.Context, body []byte) (any, error) {
		var e echo
		err := wire.Unmarshal(body, &e)
		return &e, err
	})
	s.Handle(wire.KindReplFetch, func(ctx context.Context, _ []byte) (any, error) {
		return &echo{V: []byte(PeerFromContext(ctx).Node)}, nil
	})
	ln, err := network.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// TestTLS covers mutual TLS on the RPC listener: a good certificate
// connects and its common name is the node's identity; a certificate of
// another CA, an expired one, a plain-text dialer on the TLS port and a
// TLS dialer on a plain port are each refused with a clear error on the
// dialer's side and counted on the server's, which goes on serving.
func TestTLS(t *testing.T) {
	ca := authtest.NewCA(t, "cluster")
	other := authtest.NewCA(t, "stranger")
	srvCert, srvKey := ca.Issue("n0")
	srv, addr := startTLSServer(t, tlsNet(t, ca, srvCert, srvKey, true))
	_, plainAddr := startTLSServer(t, transport.TCP{})

	n1Cert, n1Key := ca.Issue("n1")
	good := tlsNet(t, ca, n1Cert, n1Key, false)
	c, err := dialT(t, DialConfig{Network: good, From: "n1", Node: true}, addr)
	if err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	var out echo
	if err := c.Call(context.Background(), wire.KindReplFetch, &wire.FetchRequest{Node: "n1"}, &out); err != nil || string(out.V) != "n1" {
		t.Fatalf("identity from the certificate: %q %v", out.V, err)
	}
	if err := c.Call(context.Background(), wire.KindReplFetch, &wire.FetchRequest{Node: placement.NodeID("n2")}, &out); wire.CodeOf(err) != wire.CodeRefused {
		t.Fatalf("n1's certificate speaking for n2: %v", err)
	}
	if _, err := dialT(t, DialConfig{Network: good, From: "n2", Node: true}, addr); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), `certificate is "n1"`) {
		t.Fatalf("a hello naming another node than the certificate: %v", err)
	}

	foreignCert, foreignKey := other.Issue("n1")
	expiredCert, expiredKey := ca.Issue("n1", authtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	foreign, err := auth.NewCertSource(foreignCert, foreignKey, ca.File) // trusts the server, presents a stranger's cert
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		network transport.Network
		addr    string
		want    string // in the dialer's error
		counted string // the server's refusal reason
	}{
		{"foreign CA", transport.TLS(nil, nil, func(string) *tls.Config { return foreign.ClientConfig("127.0.0.1") }), addr,
			"refused this process's TLS certificate", "TLS handshake failed"},
		{"expired client certificate", tlsNet(t, ca, expiredCert, expiredKey, false), addr,
			"refused this process's TLS certificate", "TLS handshake failed"},
		{"no client certificate", transport.TLS(nil, nil, func(string) *tls.Config {
			return &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
		}), addr, "refused this process's TLS certificate", "TLS handshake failed"},
		{"plain-text dialer on the TLS port", nil, addr, "this port requires TLS", "plain-text dialer on a TLS port"},
		{"TLS dialer on a plain port", good, plainAddr, "does not speak TLS", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().Refused[tc.counted]
			_, err := dialT(t, DialConfig{Network: tc.network, From: "n1", Node: true}, tc.addr)
			if err == nil || !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.addr) {
				t.Fatalf("dial: %v; want ErrAuth naming %s saying %q", err, tc.addr, tc.want)
			}
			t.Logf("dialer: %v", err)
			if tc.counted != "" {
				waitFor(t, func() bool { return srv.Stats().Refused[tc.counted] > before }, "refusal counted: "+tc.counted)
			}
			if err := echoCall(c, "still serving"); err != nil {
				t.Fatal(err)
			}
		})
	}

	// An expired server certificate.
	oldCert, oldKey := ca.Issue("n0", authtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	_, oldAddr := startTLSServer(t, tlsNet(t, ca, oldCert, oldKey, false))
	if _, err := dialT(t, DialConfig{Network: good}, oldAddr); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired server certificate: %v", err)
	}
}

// TestTLSReload swaps a listener's certificate files: new connections get
// the new certificate without a restart.
func TestTLSReload(t *testing.T) {
	ca := authtest.NewCA(t, "cluster")
	certA, keyA := ca.Issue("a")
	certB, keyB := ca.Issue("b")
	dir := t.TempDir()
	cert, key := dir+"/cert.pem", dir+"/key.pem"
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".tmp", to); err != nil {
			t.Fatal(err)
		}
	}
	cp(certA, cert)
	cp(keyA, key)
	src, err := auth.NewCertSource(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	network := transport.TLS(nil, src.ServerConfig(false), nil)
	_, addr := startTLSServer(t, network)
	peerCN := func() string {
		tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := peerCN(); cn != "a" {
		t.Fatalf("first certificate %q", cn)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time
	cp(certB, cert)
	cp(keyB, key)
	if ok, err := src.Refresh(); !ok || err != nil {
		t.Fatalf("Refresh: %v %v", ok, err)
	}
	if cn := peerCN(); cn != "b" {
		t.Fatalf("after the reload: %q", cn)
	}
	// A broken file keeps the last good certificate.
	if err := os.WriteFile(cert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Refresh(); err == nil {
		t.Fatal("a broken certificate file loaded")
	}
	if cn := peerCN(); cn != "b" {
		t.Fatalf("after a failed reload: %q", cn)
	}
}
