package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/zeppelin-kv/zeppelin/internal/auth"
	"github.com/zeppelin-kv/zeppelin/internal/rpc"
	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// ErrAuth is wrapped by the error of a call that could not connect
// because authentication failed: this client's secret is not one the
// server accepts, or the server requires one and none is configured, or
// the user or password is wrong, or the server could not prove that it
// knows the secret. The message names the server.
var ErrAuth = rpc.ErrAuth

// ErrNoPerm is wrapped by the error of a call the client's user is not
// granted (Config.User).
var ErrNoPerm = errors.New("zeppelin: permission denied")

func (c Config) validateAuth() []error {
	var errs []error
	if err := auth.CheckSecrets(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("client: Secret: %w", err))
	}
	if c.User != "" && c.Password == "" {
		errs = append(errs, errors.New("client: User is set without a Password"))
	}
	if c.User == "" && c.Password != "" {
		errs = append(errs, errors.New("client: Password is set without a User"))
	}
	return errs
}

// dialConfig is how the client dials the cluster's nodes.
func (c Config) dialConfig(limits wire.Limits) (rpc.DialConfig, error) {
	ring, err := auth.NewKeyring(c.Secret)
	if err != nil {
		return rpc.DialConfig{}, fmt.Errorf("client: Secret: %w", err)
	}
	network := c.network
	if c.TLS != nil {
		base := c.TLS
		network = transport.TLS(network, nil, func(addr string) *tls.Config {
			cfg := base.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
			}
			return cfg
		})
	}
	return rpc.DialConfig{
		Network:  network,
		From:     c.Name,
		MaxFrame: limits.FrameLimit(),
		Keyring:  ring,
		User:     c.User,
		Password: c.Password,
	}, nil
}
