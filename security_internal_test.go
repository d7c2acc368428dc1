package zeppelin

import (
	"log/slog"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
)

// TestGossipRefusesStrangers starts two gossip members with the cluster's
// keys and shows that a process without them, or with other ones, can
// neither join nor be seen, while a process with a rotated keyring that
// holds the cluster's key joins.
func TestGossipRefusesStrangers(t *testing.T) {
	keys := func(secrets ...string) [][]byte {
		if len(secrets) == 0 {
			return nil
		}
		k, err := auth.NewKeyring(secrets)
		if err != nil {
			t.Fatal(err)
		}
		return k.GossipKeys()
	}
	const a, b = "gossip-secret-A-0123456789", "gossip-secret-B-0123456789"
	log := slog.New(slog.DiscardHandler)
	start := func(name string, k [][]byte) *discovery {
		d, err := startDiscovery("127.0.0.1:0", gossipMeta{NodeID: name, RPC: "127.0.0.1:1"}, true, k, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.close)
		return d
	}
	d1 := start("n1", keys(a))
	d2 := start("n2", keys(a))
	if err := d2.join([]string{d1.Addr()}); err != nil {
		t.Fatalf("a member with the key: %v", err)
	}
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{{"no key", nil}, {"another key", keys(b)}} {
		s := start("stranger-"+tc.name, tc.keys)
		if err := s.join([]string{d1.Addr()}); err == nil {
			t.Errorf("%s: joined the gossip", tc.name)
		}
	}
	// Rotation: the primary key differs, the ring shares the old one.
	d3 := start("n3", keys(a, b))
	if err := d3.join([]string{d1.Addr()}); err != nil {
		t.Fatalf("a member with a rotated keyring holding the key: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		names := map[string]bool{}
		for _, m := range d1.ml.Members() {
			names[m.Name] = true
		}
		stranger := false
		for n := range names {
			if n != "n1" && n != "n2" && n != "n3" {
				stranger = true
			}
		}
		if stranger {
			t.Fatalf("a stranger became a member: %v", names)
		}
		if len(names) == 3 || time.Now().After(deadline) {
			if len(names) != 2 && len(names) != 3 {
				t.Fatalf("members %v", names)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
