// Package testcluster starts whole clusters inside one test process: N
// zeppelin Servers on loopback with t.TempDir stores, real dragonboat, real
// Badger on disk and real TCP between them, all dialing through one
// transport.Hub so a test can cut links and heal them.
//
// Members keep their directories and addresses across Stop and Restart, so
// a restarted member comes back as the same node. Everything is closed by
// t.Cleanup. Helpers wait on conditions with a deadline, never on fixed
// sleeps.
package testcluster
