package server

import "github.com/wharfmq/wharf/internal/storage"

// Options are what RunWithOptions takes besides the configuration: seams
// that let tests run a whole server on a faulty disk. They are not
// settings; the zero value is the real thing, and Run uses it.
type Options struct {
	// FS is the filesystem under every log; nil is the real one.
	FS storage.FS
}
