// Package transport provides the network the store's RPC layer runs on: a
// Network interface with a plain TCP implementation, and a Hub that wraps
// another Network to inject faults between named hosts (partitions that cut
// new dials and sever existing connections, then heal).
//
// Every server, data node, meta member and client in the process dials and
// listens through a Network value it was given, never a package global, so
// many servers in one test process each get their own view of one Hub.
package transport
