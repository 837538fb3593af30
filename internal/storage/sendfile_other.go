//go:build !linux

package storage

import "io"

// sendFile is not available on this platform; WriteTo copies instead.
func sendFile(io.Writer, File, int64, int64) (int64, bool, error) { return 0, false, nil }
