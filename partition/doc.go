// Package partition stores a data node's partition replicas in one Badger
// database and implements everything that happens to one replica: the master's
// group commit, TTLs, the slave's apply of binlog records,
// full-sync export and import, log purge and garbage collection of abandoned
// key ranges. The key layout is the contract in docs/storage.md.
//
// This is an implementation package: it is not covered by compatibility
// promises. Embed the store through the zeppelin and client packages.
//
// # Store and replicas
//
// A node opens one Store and asks it for replicas:
//
//	st, err := partition.Open(partition.Options{Dir: dir, Logger: logger})
//	defer st.Close()
//	r, err := st.Replica(tableID, part) // created on first use, cached while open
//
// The Store owns its goroutines: a few committers that write the masters'
// groups, a garbage collector that deletes the keys of abandoned
// incarnations (after a flush, a full sync or a Drop) in bounded
// transactions, the value log's collector and, with DurabilityInterval, a
// periodic fsync.
//
// # Master
//
//	if err := r.Promote(gen); err != nil { ... }
//	res, err := r.Write(ctx, []wire.Op{
//		{Type: wire.OpSet, Key: []byte("{u1}name"), Value: []byte("ann"), TTL: 60_000},
//		{Type: wire.OpIncr, Key: []byte("{u1}visits"), Delta: 1},
//	})
//
// Every Write is one atomic group. Each replica belongs to one of the
// store's committers, which takes the queued groups of all its ready
// replicas, evaluates each replica's in order against its current data,
// gives every group that changes something the replica's next seq and a
// binlog record (the effects, never the command: an increment is logged as
// its result, a relative TTL as an absolute expiry), and commits the data,
// the records and the replicas' States in one Badger transaction (one per
// replica when together they do not fit). A failing group (CodeNotInteger,
// ...) leaves no trace and consumes no seq. Demote stops the replica taking
// writes and waits for its commit in progress.
//
// # Slave
//
// A slave asks the master where to start (Replica.Decide answers the
// handshake with Raft-style log matching), then either streams records,
//
//	recs, err := master.ReadLog(slaveSeq+1, 1<<20) // on the master
//	err = slave.Apply(recs)                          // on the slave
//
// or loads a full copy first:
//
//	sn, err := master.Snapshot()            // one read transaction: exactly (sn.Gen, sn.Seq)
//	err = slave.BeginLoad()                 // discards the old copy at once
//	for { entries, done, err := sn.Next(1 << 20); slave.LoadChunk(entries); if done { break } }
//	err = slave.FinishLoad(sn.Gen, sn.Seq, sn.History)
//	sn.Close()
//
// A crash between BeginLoad and FinishLoad leaves the replica Incomplete:
// it holds no usable data, refuses reads and promotion, and BeginLoad can
// start over.
//
// # Invariants
//
// After a crash at any point, a replica's data is exactly its binlog applied
// up to State().Seq: data, records and state always commit together. Expiry
// is absolute (Unix ms); a key whose expiry is ≤ now reads as absent
// everywhere. Purge keeps the log within a Retention without removing what a
// connected slave still needs, unless a hard cap is hit.
//
// # Ownership
//
// Slices returned by reads, ReadLog and Snapshot.Next belong to the caller.
// Write and Apply take ownership of the byte slices they are given until they
// return (Write: for good, since a group taken by a committer may still be
// applied after a cancelled Write returns).
//
// # Files
//
// store.go opens the Store (gc.go is its garbage collector); replica.go
// holds a Replica's state and its reads. write.go queues a master's write
// groups and commits one replica's batch, falling back to one group per
// transaction when a batch is too big; committer.go runs the rounds that
// commit many replicas' batches in one transaction. eval.go evaluates
// one group against the data and turns it into effects. apply.go defines
// what committing a record means, for master and slave alike (apply its
// effects, put its log entry, extend the History, then commit the State
// with them), and holds the slave's Apply. log.go reads, waits on and
// purges the log; snapshot.go is full sync; keys.go is the key layout.
package partition
