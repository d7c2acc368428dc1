package main

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/resp"
)

// respFront is the Redis-protocol listener of "zeppelin serve".
type respFront struct {
	srv *resp.Server
	// done receives Serve's error when it stops before Close.
	done chan error
}

// startRESP serves the Redis protocol on ln with cfg until Close, and
// adds the front end's figures (commands, errors, connections, security
// counters) to srv's metrics. It takes ln over: ln is closed by Close.
func startRESP(ln net.Listener, srv *zeppelin.Server, cfg resp.Config) (*respFront, error) {
	rs, err := resp.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("RESP front end: %w", err)
	}
	for _, c := range []prometheus.Collector{rs.Collector(), rs.SecurityCollector()} {
		if err := srv.Metrics().Register(c); err != nil {
			rs.Close()
			return nil, fmt.Errorf("RESP front end: metrics: %w", err)
		}
	}
	f := &respFront{srv: rs, done: make(chan error, 1)}
	go func() {
		if err := rs.Serve(ln); err != nil {
			f.done <- err
		}
	}()
	return f, nil
}

// Close stops the listener and closes every RESP connection.
func (f *respFront) Close() error { return f.srv.Close() }
