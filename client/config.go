package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zeppelin-kv/zeppelin/internal/transport"
	"github.com/zeppelin-kv/zeppelin/internal/wire"
)

// Limits bound keys, values and multi-key requests; see DefaultLimits.
// Exceeding one is an ErrInvalid error that names the limit, and nothing
// is written. A zero field stands for its default (see WithDefaults).
type Limits struct {
	// MaxKeySize is the largest key in bytes (default 60 KiB: the store
	// caps stored keys at 65,000 bytes).
	MaxKeySize int `json:"max_key_size"`
	// MaxValueSize is the largest value in bytes (default 16 MiB).
	MaxValueSize int `json:"max_value_size"`
	// MaxBatchOps is the most operations in one atomic batch (default
	// 10,000).
	MaxBatchOps int `json:"max_batch_ops"`
	// MaxMultiKeys is the most keys in one MGet, MSet or MDelete (default
	// 10,000).
	MaxMultiKeys int `json:"max_multi_keys"`
}

// DefaultLimits returns the default limits: keys ≤ 60 KiB, values ≤ 16 MiB,
// batches ≤ 10,000 operations, MGet/MSet/MDelete ≤ 10,000 keys.
func DefaultLimits() Limits { return limitsFromWire(wire.DefaultLimits()) }

// WithDefaults returns l with its zero (or negative) fields set to their
// defaults.
func (l Limits) WithDefaults() Limits { return limitsFromWire(l.toWire().WithDefaults()) }

// String describes the limits.
func (l Limits) String() string { return l.toWire().String() }

// toWire returns l as the protocol's limits, which check requests.
func (l Limits) toWire() wire.Limits {
	return wire.Limits{MaxKeySize: l.MaxKeySize, MaxValueSize: l.MaxValueSize, MaxBatchOps: l.MaxBatchOps, MaxMultiKeys: l.MaxMultiKeys}
}

func limitsFromWire(w wire.Limits) Limits {
	return Limits{MaxKeySize: w.MaxKeySize, MaxValueSize: w.MaxValueSize, MaxBatchOps: w.MaxBatchOps, MaxMultiKeys: w.MaxMultiKeys}
}

// DefaultTimeout is the Timeout of DefaultConfig, and the one a Client
// applies when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultRerouteAfter is the RerouteAfter a Client applies when it is
// zero.
const DefaultRerouteAfter = 500 * time.Millisecond

// Config configures a Client.
type Config struct {
	// Seeds are RPC addresses of any cluster members (meta or data). The
	// client asks them where the meta group is.
	Seeds []string
	// Timeout bounds each call whose context has no deadline (default
	// DefaultTimeout).
	Timeout time.Duration
	// RerouteAfter is how long a request may wait for its reply before the
	// client looks at the cluster map again (one goroutine of the client
	// checks every RerouteAfter, so between one and two RerouteAfter after
	// the request was sent, and again every RerouteAfter after that): a
	// request to a master that has been replaced meanwhile — the old one
	// was paused or cut off — is abandoned and sent to the new master, or,
	// when it may not be repeated, fails with ErrAmbiguous. One stalled
	// node thus holds a caller up for about the failover time, not its
	// whole deadline. Default DefaultRerouteAfter; negative disables it.
	RerouteAfter time.Duration
	// Limits are checked before anything is sent. Zero fields take the
	// defaults; they should match the servers' limits.
	Limits Limits
	// Name identifies the client to servers (optional).
	Name string
	// Logger receives debug logs of retries (discarded when nil).
	Logger *slog.Logger

	// Secret lists the cluster secrets (the first used; the others are
	// offered too, so a client works while secrets rotate). A cluster
	// with a secret refuses clients without one; a client with one
	// refuses servers that cannot prove they know it.
	Secret []string
	// User and Password authenticate the client as a user of the
	// cluster instead of with the secret: it may then do what the user's
	// grants allow. The password never crosses the network.
	User, Password string
	// TLS, when set, dials every node with TLS under this configuration
	// (RootCAs: the cluster's CA; Certificates or GetClientCertificate:
	// this client's certificate, for a cluster with client
	// authentication). An empty ServerName is the host of the address
	// dialed.
	TLS *tls.Config

	// network dials nodes; TCP when nil. Set by the zeppelin package and
	// tests through NewWithNetwork.
	network transport.Network
}

// DefaultConfig returns a configuration that bootstraps from seeds.
func DefaultConfig(seeds ...string) Config {
	return Config{
		Seeds:   seeds,
		Timeout: DefaultTimeout,
		Limits:  DefaultLimits(),
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Seeds) == 0 {
		errs = append(errs, errors.New("client: no seed addresses"))
	}
	for _, s := range c.Seeds {
		if s == "" {
			errs = append(errs, errors.New("client: empty seed address"))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("client: negative Timeout %v", c.Timeout))
	}
	if c.RerouteAfter > 0 && c.RerouteAfter < time.Millisecond {
		errs = append(errs, fmt.Errorf("client: RerouteAfter %v is below a millisecond", c.RerouteAfter))
	}
	l := c.Limits
	if l.MaxKeySize < 0 || l.MaxValueSize < 0 || l.MaxBatchOps < 0 || l.MaxMultiKeys < 0 {
		errs = append(errs, fmt.Errorf("client: negative limit in %+v", l))
	}
	if ld := l.WithDefaults(); ld.MaxMultiKeys > ld.MaxBatchOps {
		errs = append(errs, fmt.Errorf("client: MaxMultiKeys (%d) must not exceed MaxBatchOps (%d): the keys of one partition in an MSet are written as one batch",
			ld.MaxMultiKeys, ld.MaxBatchOps))
	}
	errs = append(errs, c.validateAuth()...)
	return errors.Join(errs...)
}
