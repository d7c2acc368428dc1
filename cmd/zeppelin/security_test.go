package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth/authtest"
)

const cliSecret = "cli-cluster-secret-0123456789"

// writeSecretFile writes a file only its owner can read.
func writeSecretFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeSecretFile runs a process with --secret-file: commands with the
// secret file work, commands without it, or with another, fail with a
// clear error naming the server.
func TestServeSecretFile(t *testing.T) {
	secret := writeSecretFile(t, "secret", "# the cluster secret\n"+cliSecret+"\n")
	other := writeSecretFile(t, "other", "another-secret-0123456789\n")
	args := append(singleArgs(t, t.TempDir(), "s1"), "--secret-file", secret)
	p := startProc(t, "s1", args...)
	ready := p.waitReady(t, 30*time.Second)
	addr := ready["rpc"]

	run := func(args ...string) cliResult {
		return runBin(t, 30*time.Second, append(args, "--addr", addr, "--timeout", "5s")...)
	}
	if r := run("table", "create", "t", "--partitions", "2", "--replication", "1", "--secret-file", secret); r.code != 0 {
		t.Fatalf("table create with the secret: exit %d: %s", r.code, r.stderr)
	}
	if r := run("set", "t", "k", "v", "--secret-file", secret); r.code != 0 || r.stdout != "OK\n" {
		t.Fatalf("set with the secret: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"no secret", nil, "requires a cluster secret"},
		{"another secret", []string{"--secret-file", other}, "does not accept this cluster secret"},
	} {
		r := run(append([]string{"get", "t", "k"}, tc.extra...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "authentication failed") || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, addr) {
			t.Errorf("%s: exit %d, stderr %q; want a failure saying %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
	if r := run("get", "t", "k", "--secret-file", secret); r.code != 0 || r.stdout != "v\n" {
		t.Fatalf("get with the secret: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	// The secret never shows in --dry-run.
	r := runBin(t, 30*time.Second, append(args, "--dry-run")...)
	if r.code != 0 || strings.Contains(r.stdout, cliSecret) || !strings.Contains(r.stdout, `"secret-file"`) {
		t.Errorf("dry-run: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestServeUsers runs a process with --users-file: the CLI authenticates
// with --user and a password from --password-file or $ZEPPELIN_PASSWORD,
// redis-cli with --user and --pass, each within its grants.
func TestServeUsers(t *testing.T) {
	hash := func(pw string) string {
		r := runTool(t, 30*time.Second, pw+"\n", zeppelinBin, "user", "hash")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "scram-sha-256$") {
			t.Fatalf("user hash: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	users := `[
  {"name": "admin", "password_hash": "` + hash("adminpw") + `", "grants": [{"access": "admin"}]},
  {"name": "alice", "password_hash": "` + hash("alicepw") + `", "grants": [{"tables": ["t"], "access": "write"}]}
]`
	secret := writeSecretFile(t, "secret", cliSecret+"\n")
	usersFile := writeSecretFile(t, "users.json", users)
	adminPW := writeSecretFile(t, "admin.pw", "adminpw\n")
	ports := freePorts(t, 1)
	respAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := append(singleArgs(t, t.TempDir(), "u1"), "--secret-file", secret, "--users-file", usersFile, "--resp-addr", respAddr, "--resp-table", "t")
	p := startProc(t, "u1", args...)
	addr := p.waitReady(t, 30*time.Second)["rpc"]
	run := func(args ...string) cliResult {
		return runBin(t, 30*time.Second, append(args, "--addr", addr, "--timeout", "5s")...)
	}
	if r := run("table", "create", "t", "--partitions", "2", "--replication", "1", "--user", "admin", "--password-file", adminPW); r.code != 0 {
		t.Fatalf("admin creates a table: exit %d: %s", r.code, r.stderr)
	}
	t.Setenv("ZEPPELIN_PASSWORD", "alicepw")
	if r := run("set", "t", "k", "v", "--user", "alice"); r.code != 0 {
		t.Fatalf("alice sets (password from the environment): exit %d: %s", r.code, r.stderr)
	}
	if r := run("table", "create", "t2", "--partitions", "1", "--replication", "1", "--user", "alice"); r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("alice creates a table: exit %d: %s", r.code, r.stderr)
	}
	t.Setenv("ZEPPELIN_PASSWORD", "nope")
	if r := run("get", "t", "k", "--user", "alice"); r.code == 0 || !strings.Contains(r.stderr, "authentication failed") {
		t.Errorf("alice with a wrong password: exit %d: %s", r.code, r.stderr)
	}
	t.Setenv("ZEPPELIN_PASSWORD", "")
	if r := run("get", "t", "k", "--user", "alice"); r.code != 2 || !strings.Contains(r.stderr, "ZEPPELIN_PASSWORD") {
		t.Errorf("--user without a password: exit %d: %s", r.code, r.stderr)
	}

	if out := redisCLI(t, respAddr, "", "--user", "alice", "--pass", "alicepw", "--no-auth-warning", "GET", "k"); out != "v\n" {
		t.Errorf("redis-cli --user alice GET k: %q", out)
	}
	if out := redisCLI(t, respAddr, "", "--user", "alice", "--pass", "alicepw", "--no-auth-warning", "FLUSHDB"); !strings.Contains(out, "NOPERM") {
		t.Errorf("redis-cli alice FLUSHDB: %q", out)
	}
	if out := redisCLI(t, respAddr, "", "--user", "alice", "--pass", "wrong", "--no-auth-warning", "GET", "k"); !strings.Contains(out, "WRONGPASS") && !strings.Contains(out, "NOAUTH") {
		t.Errorf("redis-cli with a wrong password: %q", out)
	}
	if out := redisCLI(t, respAddr, "", "GET", "k"); !strings.Contains(out, "NOAUTH Authentication required") {
		t.Errorf("redis-cli without AUTH: %q", out)
	}
}

// TestServeTLS runs a process with mutual TLS on RPC and TLS on RESP: the
// CLI with --tls-ca, --tls-cert and --tls-key works, without them it gets
// a clear error; redis-cli --tls works, plain redis-cli is refused.
func TestServeTLS(t *testing.T) {
	ca := authtest.NewCA(t, "cluster")
	srvCert, srvKey := ca.Issue("t1")
	cliCert, cliKey := ca.Issue("operator")
	ports := freePorts(t, 1)
	respAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := append(singleArgs(t, t.TempDir(), "t1"), "--tls-cert", srvCert, "--tls-key", srvKey, "--tls-ca", ca.File,
		"--tls-client-auth", "--resp-addr", respAddr, "--resp-table", "t")
	p := startProc(t, "t1", args...)
	addr := p.waitReady(t, 30*time.Second)["rpc"]
	tlsArgs := []string{"--tls-ca", ca.File, "--tls-cert", cliCert, "--tls-key", cliKey}
	run := func(args ...string) cliResult {
		return runBin(t, 30*time.Second, append(args, "--addr", addr, "--timeout", "5s")...)
	}
	if r := run(append([]string{"table", "create", "t", "--partitions", "2", "--replication", "1"}, tlsArgs...)...); r.code != 0 {
		t.Fatalf("table create over TLS: exit %d: %s", r.code, r.stderr)
	}
	if r := run(append([]string{"set", "t", "k", "v"}, tlsArgs...)...); r.code != 0 {
		t.Fatalf("set over TLS: exit %d: %s", r.code, r.stderr)
	}
	if r := run("get", "t", "k"); r.code == 0 || !strings.Contains(r.stderr, "requires TLS") {
		t.Errorf("get without TLS: exit %d: %s", r.code, r.stderr)
	}
	if r := run("get", "t", "k", "--tls-ca", ca.File); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("get without a client certificate: exit %d: %s", r.code, r.stderr)
	}
	if out := redisCLI(t, respAddr, "", "--tls", "--cacert", ca.File, "GET", "k"); out != "v\n" {
		t.Errorf("redis-cli --tls GET k: %q", out)
	}
	host, port, _ := strings.Cut(respAddr, ":")
	r := runTool(t, 30*time.Second, "", "redis-cli", "-h", host, "-p", port, "GET", "k")
	if !strings.Contains(r.stdout+r.stderr, "requires TLS") && r.code == 0 {
		t.Errorf("plain redis-cli on the TLS port: exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("plain redis-cli: exit %d: %s%s", r.code, r.stdout, r.stderr)
	// SIGHUP reloads the certificates and the process goes on.
	p.signal(t, syscall.SIGHUP)
	if r := run(append([]string{"get", "t", "k"}, tlsArgs...)...); r.code != 0 || r.stdout != "v\n" {
		t.Fatalf("get after SIGHUP: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
