package zeppelin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/internal/auth/authtest"
	"github.com/zeppelin-kv/zeppelin/internal/testcluster"
)

// BenchmarkClientSecurity is BenchmarkClient's one-server workload with
// each security setting: none, a cluster secret, the secret and a client
// authenticated as a user (grants checked on every request), TLS, and
// mutual TLS. The secret and the user cost nothing per request once the
// connection is open; TLS costs its encryption.
func BenchmarkClientSecurity(b *testing.B) {
	value := make([]byte, 100)
	ca := authtest.NewCA(b, "bench")
	modes := []struct {
		name   string
		server func(*zeppelin.Config)
		client func(*client.Config)
	}{
		{"plain", nil, nil},
		{"secret", func(c *zeppelin.Config) { c.Secret = []string{testSecretA} },
			func(c *client.Config) { c.Secret = []string{testSecretA} }},
		{"user", func(c *zeppelin.Config) {
			c.Secret = []string{testSecretA}
			c.Users = []zeppelin.User{{Name: "app", Password: "pw", Grants: []zeppelin.Grant{{Tables: []string{"bench"}, Access: zeppelin.AccessWrite}}}}
		}, func(c *client.Config) { c.User, c.Password = "app", "pw" }},
		{"tls", func(c *zeppelin.Config) {
			cert, key := ca.Issue(c.NodeID)
			c.TLS = zeppelin.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File}
		}, func(c *client.Config) { c.TLS = ca.ClientConfig("", "") }},
		{"mtls", func(c *zeppelin.Config) {
			cert, key := ca.Issue(c.NodeID)
			c.TLS = zeppelin.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File, ClientAuth: true}
		}, func(c *client.Config) {
			cert, key := ca.Issue("bench-client")
			c.TLS = ca.ClientConfig(cert, key)
		}},
	}
	for _, m := range modes {
		setup := func(b *testing.B) *client.Table {
			c := testcluster.New(b, testcluster.Options{Servers: 1, Configure: func(_ int, cfg *zeppelin.Config) {
				if m.server != nil {
					m.server(cfg)
				}
			}})
			c.CreateTable("bench", client.TableOptions{Partitions: 64, Replication: 1})
			return c.NewClientConfig("bench", m.client).Table("bench")
		}
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/Set/goroutines=%d", m.name, g), func(b *testing.B) {
				tb := setup(b)
				runLoad(b, g, func(ctx context.Context, _, i int) error {
					err := tb.Set(ctx, fmt.Appendf(nil, "k%d", i%100_000), value)
					return err
				})
			})
			b.Run(fmt.Sprintf("%s/Get/goroutines=%d", m.name, g), func(b *testing.B) {
				tb := setup(b)
				ctx := context.Background()
				kvs := make([]client.KV, 10_000)
				for i := range kvs {
					kvs[i] = client.KV{Key: fmt.Appendf(nil, "k%d", i), Value: value}
				}
				for lo := 0; lo < len(kvs); lo += 1000 {
					if err := tb.MSet(ctx, kvs[lo:lo+1000]); err != nil {
						b.Fatal(err)
					}
				}
				runLoad(b, g, func(ctx context.Context, _, i int) error {
					_, err := tb.Get(ctx, kvs[i%len(kvs)].Key)
					return err
				})
			})
		}
	}
}
