// Command zeppelin is the single binary of a Zeppelin cluster: it runs
// servers and drives a cluster from a shell.
//
//	zeppelin serve [flags]                     run one process (meta and/or data roles, optional RESP listener)
//	zeppelin table create NAME [flags]         create a table
//	zeppelin table drop NAME                   drop a table and its data
//	zeppelin table list                        list tables
//	zeppelin nodes                             list data nodes
//	zeppelin status [--table NAME]             meta members, nodes, tables, partitions, (gen, seq), lag
//	zeppelin get TABLE KEY                     print a value
//	zeppelin set TABLE KEY VALUE [--ttl D]     write a value
//	zeppelin del TABLE KEY...                  delete keys
//	zeppelin bench [flags]                     load generator: ops/s and latency percentiles
//
// Every command but serve talks to the cluster through any member given
// with --addr (default 127.0.0.1:7070) and prints JSON with --json.
//
// "zeppelin serve" takes its settings from flags and, with --config, from
// a JSON file whose keys are the long flag names; flags given on the
// command line win. "zeppelin serve --dry-run" prints the effective
// settings in that format. Start-up errors (a bad flag, a port in use, a
// data directory locked by another process or belonging to another node)
// are printed one line each, with exit status 2 for a bad command line or
// configuration and 1 otherwise.
package main
