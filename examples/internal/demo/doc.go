// Package demo starts the local clusters the example programs run against:
// every server of one process a meta member and a data node, on free
// loopback ports. examples/cluster shows the same steps written out.
package demo
