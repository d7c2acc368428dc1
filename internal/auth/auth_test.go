package auth

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const (
	secretA = "secret-A-0123456789abcdef"
	secretB = "secret-B-0123456789abcdef"
)

func mustRing(t *testing.T, s ...string) *Keyring {
	t.Helper()
	k, err := NewKeyring(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheckSecrets(t *testing.T) {
	if err := CheckSecrets([]string{"short"}); err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Errorf("short secret: %v", err)
	}
	if err := CheckSecrets([]string{secretA, secretA}); err == nil {
		t.Error("duplicate secret accepted")
	}
	if err := CheckSecrets([]string{secretA, secretB}); err != nil {
		t.Error(err)
	}
	if got := ParseSecrets("# comment\n\n " + secretB + " \n" + secretA + "\n"); len(got) != 2 || got[0] != secretB {
		t.Errorf("ParseSecrets: %q", got)
	}
}

// TestStreamNetwork runs the Raft stream's challenge-response over TCP:
// lists that share a secret connect, others fail on both sides.
func TestStreamNetwork(t *testing.T) {
	cases := []struct {
		server, dialer []string
		ok             bool
	}{
		{[]string{secretA}, []string{secretA}, true},
		{[]string{secretA}, []string{secretB, secretA}, true},
		{[]string{secretB, secretA}, []string{secretB}, true},
		{[]string{secretA}, []string{secretB}, false},
	}
	for _, tc := range cases {
		failed := make(chan error, 1)
		srv := Network(nil, mustRing(t, tc.server...), "raft", func(_ net.Addr, err error) { failed <- err })
		ln, err := srv.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			b, _ := io.ReadAll(nc)
			got <- string(b)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nc, err := Network(nil, mustRing(t, tc.dialer...), "raft", nil).Dial(ctx, ln.Addr().String())
		cancel()
		if tc.ok {
			if err != nil {
				t.Fatalf("%v → %v: %v", tc.dialer, tc.server, err)
			}
			nc.Write([]byte("raft bytes"))
			nc.Close()
			if g := <-got; g != "raft bytes" {
				t.Fatalf("server read %q", g)
			}
		} else {
			if err == nil || !errors.Is(err, ErrStreamAuth) || !strings.Contains(err.Error(), "does not accept this cluster secret") {
				t.Fatalf("%v → %v: %v, want refused", tc.dialer, tc.server, err)
			}
			if err := <-failed; err == nil {
				t.Fatal("the server did not report the failure")
			}
			if g := <-got; g != "" {
				t.Fatalf("server read %q from a stranger", g)
			}
		}
		ln.Close()
	}
}

func TestUsers(t *testing.T) {
	hash, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "s3cret") {
		t.Fatal("hash holds the password")
	}
	u, err := NewUsers([]User{
		{Name: "alice", Password: "wonderland", Grants: []Grant{{Tables: []string{"users"}, Access: LevelWrite}}},
		{Name: "root", PasswordHash: hash, Grants: []Grant{{Access: LevelAdmin}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := u.Check("alice", "wonderland")
	if !ok || !a.Can("users", LevelRead) || !a.Can("users", LevelWrite) || a.Can("users", LevelAdmin) || a.Can("other", LevelRead) || a.Can("", LevelRead) {
		t.Fatalf("alice: %v %+v", ok, a)
	}
	if _, ok := u.Check("alice", "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := u.Check("nobody", "wonderland"); ok {
		t.Fatal("unknown user accepted")
	}
	r, ok := u.Check("root", "s3cret")
	if !ok || !r.Can("", LevelAdmin) || !r.Can("any", LevelWrite) {
		t.Fatalf("root: %v %+v", ok, r)
	}
	// The challenge-response.
	salt, iter := u.Params("root")
	msg := []byte("transcript")
	proof, wantSig := ClientProof("s3cret", salt, iter, msg)
	sig, acc, ok := u.Verify("root", msg, proof)
	if !ok || string(sig) != string(wantSig) || acc != r {
		t.Fatalf("Verify: %v", ok)
	}
	if _, _, ok := u.Verify("root", []byte("another transcript"), proof); ok {
		t.Fatal("a proof replayed over another transcript passed")
	}
	bad, _ := ClientProof("wrong", salt, iter, msg)
	if _, _, ok := u.Verify("root", msg, bad); ok {
		t.Fatal("a proof of the wrong password passed")
	}
	// Unknown users get stable made-up parameters.
	s1, _ := u.Params("ghost")
	s2, _ := u.Params("ghost")
	if string(s1) != string(s2) || len(s1) != saltLen {
		t.Fatal("unstable salt for an unknown user")
	}
	if err := CheckUsers([]User{{Name: "x"}, {Name: "x", Password: "p", PasswordHash: "h"}}); err == nil ||
		!strings.Contains(err.Error(), "neither") || !strings.Contains(err.Error(), "twice") || !strings.Contains(err.Error(), "both") {
		t.Fatalf("CheckUsers: %v", err)
	}
}
