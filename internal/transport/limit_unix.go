//go:build unix

package transport

import "syscall"

// FDLimit returns the process's soft limit on open file descriptors, or
// 0 when it cannot tell.
func FDLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}

// RaiseFDLimit raises the soft limit on open file descriptors to the hard
// limit and returns the new soft limit. (The Go runtime does this at
// startup on Linux; a process that lowered it, or a host program that
// embeds the server after changing it, gets it back.)
func RaiseFDLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return FDLimit(), err
		}
	}
	return FDLimit(), nil
}
