package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/zeppelin-kv/zeppelin/client"
	"github.com/zeppelin-kv/zeppelin/resp"
)

// respFront is the Redis-protocol listener of "zeppelin serve".
type respFront struct {
	srv *resp.Server
	// done receives Serve's error when it stops before Close.
	done chan error
}

// startRESP serves the Redis protocol on ln through cli, with table as the
// default table, until Close. It takes ln over: ln is closed by Close.
func startRESP(ln net.Listener, cli *client.Client, table string, log *slog.Logger) (*respFront, error) {
	srv, err := resp.New(resp.Config{Client: cli, DefaultTable: table, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("RESP front end: %w", err)
	}
	f := &respFront{srv: srv, done: make(chan error, 1)}
	go func() {
		if err := srv.Serve(ln); err != nil {
			f.done <- err
		}
	}()
	return f, nil
}

// Close stops the listener and closes every RESP connection.
func (f *respFront) Close() error { return f.srv.Close() }
