// Package zeppelin is an embeddable, distributed, persistent key-value
// store. A Go program calls Start and its process joins a cluster in any
// role:
//
//   - meta: a member of the meta Raft group that owns the cluster map
//     (nodes, tables, partition assignments, epochs);
//   - data: a node holding partition replicas in one on-disk store,
//     replicated master → slaves through a per-partition binlog;
//   - client: every process, and any remote program, uses the smart client
//     (package client), which routes each key straight to its partition's
//     master.
//
// A single process with DefaultLocalConfig is a complete cluster:
//
//	srv, err := zeppelin.Start(zeppelin.DefaultLocalConfig(dir))
//	if err != nil { ... }
//	defer srv.Close()
//	if err := srv.WaitReady(ctx); err != nil { ... }
//	c := srv.Client()
//	_, err = c.CreateTable(ctx, "users", client.TableOptions{Partitions: 16, Replication: 1})
//	err = c.Table("users").Set(ctx, []byte("alice"), []byte("42"))
//
// Tables are split into a fixed number of partitions; a key's partition is
// xxhash64 of its hashtag (the bytes between the first '{' and the next
// '}') or of the whole key, modulo the partition count. Each partition has a
// master and slaves on distinct failure domains. Writes are acknowledged by
// the master after its own commit (async tables); see the README for what
// that promises under failures, and for fenced tables.
//
// Several Servers run in one process without interfering: nothing in this
// package is global.
package zeppelin
