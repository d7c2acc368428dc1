//go:build !unix

package transport

// FDLimit returns 0: the platform has no file descriptor limit to read.
func FDLimit() int { return 0 }

// RaiseFDLimit does nothing on this platform.
func RaiseFDLimit() (int, error) { return 0, nil }
