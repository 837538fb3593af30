package server

import "github.com/wharfmq/wharf/internal/storage"

// Options are what RunWithOptions takes besides the configuration: seams
// that let tests run a whole server on a faulty disk, and the reload
// signal. They are not settings; the zero value is the real thing, and
// Run uses it.
type Options struct {
	// FS is the filesystem under every log; nil is the real one.
	FS storage.FS
	// DiskFree and MemoryInUse replace the resource alarms' measurements
	// of free space on the data directory's filesystem and of the
	// process's memory use; nil means statfs and the Go runtime's account.
	DiskFree    func(dir string) (uint64, error)
	MemoryInUse func() uint64
	// Reload, when not nil, makes the server read its TLS certificates
	// again each time it receives (the serve command sends on SIGHUP).
	Reload <-chan struct{}
}
