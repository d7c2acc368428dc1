// Package zeppelintest starts whole Zeppelin clusters inside one process,
// for the tests of programs that embed the store or talk to it. Every
// server is real: a dragonboat meta member and a data node on a Badger
// store in the test's temporary directory, talking over TCP on free
// loopback ports. The cluster is stopped and its files removed when the
// test ends.
//
//	func TestSessions(t *testing.T) {
//		c := zeppelintest.Start(t, zeppelintest.Options{Servers: 3})
//		c.CreateTable("sessions", client.TableOptions{Partitions: 8, Replication: 3})
//		sessions := c.NewClient().Table("sessions")
//		...
//		c.Kill(0) // the rest of the cluster fails over
//	}
package zeppelintest
