//go:build !unix

package zeppelin

import "io/fs"

// allocatedBytes is the disk space a file takes, here its length.
func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }
