//go:build unix

package zeppelin

import (
	"io/fs"
	"syscall"
)

// allocatedBytes is the disk space a file takes: its allocated blocks
// (Badger preallocates its value log files sparsely, so their length
// overstates it), its length when the system does not tell.
func allocatedBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
