package zeppelin_test

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/internal/auth/authtest"
)

// TestHTTPAuth checks the HTTP endpoint of a cluster with a secret, users
// and a token, over TLS: the dashboard, /status and /debug/pprof need the
// token or a user's password (pprof an admin's), /metrics and the probes
// stay open, and a plain-text request to the TLS port is refused.
func TestHTTPAuth(t *testing.T) {
	ca := authtest.NewCA(t, "cluster")
	cert, key := ca.Issue("h1")
	cfg := zeppelin.DefaultLocalConfig(t.TempDir())
	cfg.NodeID = "h1"
	cfg.GossipAddr = "off"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Secret = []string{testSecretA}
	cfg.Users = []zeppelin.User{
		{Name: "root", Password: "rootpw", Grants: []zeppelin.Grant{{Access: zeppelin.AccessAdmin}}},
		{Name: "ro", Password: "ropw", Grants: []zeppelin.Grant{{Access: zeppelin.AccessRead}}},
		{Name: "app", Password: "apppw", Grants: []zeppelin.Grant{{Tables: []string{"t"}, Access: zeppelin.AccessWrite}}},
	}
	const token = "http-token-0123456789abcdef"
	cfg.HTTPAuth.Tokens = []string{token}
	cfg.TLS = zeppelin.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File}
	srv, err := zeppelin.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "https://" + srv.HTTPAddr()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	get := func(path string, set func(*http.Request)) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, tc := range []struct {
		path string
		set  func(*http.Request)
		want int
	}{
		{"/metrics", nil, 200},
		{"/healthz", nil, 200},
		{"/status", nil, 401},
		{"/", nil, 401},
		{"/debug/pprof/", nil, 401},
		{"/status", bearer("wrong-token-0123456789"), 401},
		{"/status", bearer(token), 200},
		{"/debug/pprof/", bearer(token), 200},
		{"/status", basic("ro", "ropw"), 200},
		{"/debug/pprof/", basic("ro", "ropw"), 401},
		{"/debug/pprof/", basic("root", "rootpw"), 200},
		{"/status", basic("app", "apppw"), 401}, // read on one table only
		{"/status", basic("root", "nope"), 401},
	} {
		if got := get(tc.path, tc.set); got != tc.want {
			t.Errorf("GET %s (%v): %d, want %d", tc.path, tc.set != nil, got, tc.want)
		}
	}
	// Plain HTTP on the TLS port.
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
	if n := authFailures(t, srv, "http"); n < 7 {
		t.Errorf("HTTP authentication failures counted: %v", n)
	}
}
