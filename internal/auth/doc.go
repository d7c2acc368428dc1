// Package auth holds the security primitives of a cluster: the keyring
// derived from the cluster secrets (HMAC-SHA256 challenge-responses for RPC
// and Raft connections, memberlist keys), users with SCRAM-SHA-256
// verifiers and their table grants, an authenticating wrapper of a
// transport.Network (for the meta group's Raft traffic), and a TLS
// certificate holder that reloads its files.
//
// Nothing here keeps global state; every value is built from a
// configuration and owned by the server that built it.
package auth
