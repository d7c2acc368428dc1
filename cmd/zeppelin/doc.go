// Command zeppelin is the single binary of a Zeppelin cluster: it runs
// servers and drives a cluster from a shell.
//
//	zeppelin serve [flags]                     run one process (meta and/or data roles, optional RESP listener)
//	zeppelin table create NAME [flags]         create a table (--mode async|sync, --min-in-sync N)
//	zeppelin table alter NAME [flags]          change a table's mode, min in-sync set or fencing online
//	zeppelin table drop NAME                   drop a table and its data
//	zeppelin table list                        list tables
//	zeppelin nodes                             list data nodes
//	zeppelin node drain|undrain|remove|weight  empty, restore, forget or weigh a data node
//	zeppelin migrate TABLE PART FROM TO        move one replica (zeppelin migrate cancel ID stops it)
//	zeppelin migrations [--all]                list replica moves
//	zeppelin rebalance [--dry-run] [--wait]    balance replicas and masters by node weight
//	zeppelin meta members|add|remove|replace   list and change the meta group's members
//	zeppelin status [--table NAME]             meta members, nodes, tables, partitions, (gen, seq), lag
//	zeppelin get TABLE KEY                     print a value
//	zeppelin set TABLE KEY VALUE [--ttl D]     write a value
//	zeppelin del TABLE KEY...                  delete keys
//	zeppelin ttl TABLE KEY                     print the time a key has left to live
//	zeppelin expire TABLE KEY D|--persist      set or remove a key's expiry
//	zeppelin incr TABLE KEY [--by N]           add to an integer value
//	zeppelin mget TABLE KEY...                 print values
//	zeppelin mset TABLE KEY VALUE...           write several keys
//	zeppelin bench [flags]                     load generator: ops/s and latency percentiles
//	zeppelin version                           print the build's version (also zeppelin --version)
//
// Every command but serve and version talks to the cluster through any
// member given with --addr (default 127.0.0.1:7070) and prints JSON with
// --json; with --json, errors are printed as {"error": "..."} on stderr,
// with the same exit status. In JSON output keys and values that are not
// valid UTF-8 are base64-encoded, under "key_base64" and "value_base64".
//
// An --addr that leads to no member fails within about a second with a
// line per address saying why: nothing listens there ("cannot connect to
// 127.0.0.1:7070: connection refused"), or it is another kind of port (a
// RESP or HTTP listener answers like one).
//
// "zeppelin serve" takes its settings from flags and, with --config, from
// a JSON file whose keys are the long flag names; flags given on the
// command line win. "zeppelin serve --dry-run" prints the effective
// settings in that format. Start-up errors (a bad flag, a port in use, a
// data directory locked by another process or belonging to another node)
// are printed one line each, with exit status 2 for a bad command line or
// configuration and 1 otherwise.
package main
