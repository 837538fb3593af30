package faultfs

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wharfmq/wharf/internal/storage"
)

// fault describes how the next matching operations fail. A fault with a nil
// err is inactive.
type fault struct {
	err   error
	after int // operations that still succeed before the first failure
	times int // how many more operations fail; negative means until cleared
	keep  int // WriteAt only: bytes that reach the file before the error
}

// take reports whether the fault fires now, and consumes one occurrence.
func (f *fault) take() (error, int, bool) {
	if f.err == nil || f.times == 0 {
		return nil, 0, false
	}
	if f.after > 0 {
		f.after--
		return nil, 0, false
	}
	if f.times > 0 {
		f.times--
	}
	return f.err, f.keep, true
}

// Counts are the operations on matching files so far.
type Counts struct {
	Writes, FailedWrites int
	Syncs, FailedSyncs   int
	DirSyncs, FailedDirs int
}

// FS wraps another storage.FS. By default faults apply to segment files
// (names ending in ".log"); SetMatch chooses others.
type FS struct {
	base storage.FS

	mu      sync.Mutex
	match   func(path string) bool
	write   fault
	sync    fault
	dirSync fault
	onSync  func(path string)
	counts  Counts
}

var _ storage.FS = (*FS)(nil)

// New returns an FS over base with no fault armed; a nil base is the real
// filesystem.
func New(base storage.FS) *FS {
	if base == nil {
		base = storage.OSFS{}
	}
	return &FS{base: base, match: IsSegment}
}

// IsSegment selects log segment files: the default match.
func IsSegment(path string) bool { return strings.HasSuffix(filepath.Base(path), ".log") }

// SetMatch selects, by full path, the files whose writes and syncs may
// fail. Directory fsyncs are not filtered.
func (fs *FS) SetMatch(match func(path string) bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.match = match
}

// FailWrites makes the next n WriteAt calls on matching files (n < 0: all
// of them until Clear) write their first keep bytes and then return err.
func (fs *FS) FailWrites(err error, n, keep int) { fs.FailWritesAfter(0, err, n, keep) }

// FailWritesAfter is FailWrites once skip more matching writes have
// succeeded.
func (fs *FS) FailWritesAfter(skip int, err error, n, keep int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write = fault{err: err, after: skip, times: n, keep: keep}
}

// FailSyncs makes the next n Sync calls on matching files (n < 0: all of
// them until Clear) return err without syncing.
func (fs *FS) FailSyncs(err error, n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.sync = fault{err: err, times: n}
}

// FailDirSyncs makes the next n directory fsyncs (n < 0: all of them until
// Clear) return err.
func (fs *FS) FailDirSyncs(err error, n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.dirSync = fault{err: err, times: n}
}

// Clear disarms every fault.
func (fs *FS) Clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write, fs.sync, fs.dirSync = fault{}, fault{}, fault{}
}

// SetOnSync installs a function run at the start of every Sync of a
// matching file, before any fault is considered and without the FS's lock
// held: a test can hold a sync back with it. nil removes it.
func (fs *FS) SetOnSync(fn func(path string)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.onSync = fn
}

// Counts returns the operations seen on matching files so far.
func (fs *FS) Counts() Counts {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.counts
}

// OpenFile opens the file through the underlying FS and wraps it.
func (fs *FS) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := fs.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name}, nil
}

// ReadFile reads a whole file through the underlying FS.
func (fs *FS) ReadFile(name string) ([]byte, error) { return fs.base.ReadFile(name) }

// Remove removes a file through the underlying FS.
func (fs *FS) Remove(name string) error { return fs.base.Remove(name) }

// RemoveAll removes a tree through the underlying FS.
func (fs *FS) RemoveAll(path string) error { return fs.base.RemoveAll(path) }

// Rename renames through the underlying FS.
func (fs *FS) Rename(oldpath, newpath string) error { return fs.base.Rename(oldpath, newpath) }

// MkdirAll creates directories through the underlying FS.
func (fs *FS) MkdirAll(path string, perm os.FileMode) error { return fs.base.MkdirAll(path, perm) }

// ReadDir lists a directory through the underlying FS.
func (fs *FS) ReadDir(name string) ([]os.DirEntry, error) { return fs.base.ReadDir(name) }

// SyncDir fsyncs a directory unless a directory fault fires.
func (fs *FS) SyncDir(name string) error {
	fs.mu.Lock()
	fs.counts.DirSyncs++
	err, _, fire := fs.dirSync.take()
	if fire {
		fs.counts.FailedDirs++
	}
	fs.mu.Unlock()
	if fire {
		return &os.PathError{Op: "fsync", Path: name, Err: err}
	}
	return fs.base.SyncDir(name)
}

type file struct {
	storage.File
	fs   *FS
	name string
}

// faulty reports whether faults apply to the file. Callers hold fs.mu.
func (f *file) faulty() bool { return f.fs.match != nil && f.fs.match(f.name) }

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	if !f.faulty() {
		f.fs.mu.Unlock()
		return f.File.WriteAt(p, off)
	}
	f.fs.counts.Writes++
	err, keep, fire := f.fs.write.take()
	if fire {
		f.fs.counts.FailedWrites++
	}
	f.fs.mu.Unlock()
	if !fire {
		return f.File.WriteAt(p, off)
	}
	keep = min(max(keep, 0), len(p))
	n, werr := f.File.WriteAt(p[:keep], off)
	if werr != nil {
		return n, werr
	}
	return n, &os.PathError{Op: "write", Path: f.name, Err: err}
}

func (f *file) Sync() error {
	f.fs.mu.Lock()
	if !f.faulty() {
		f.fs.mu.Unlock()
		return f.File.Sync()
	}
	hook := f.fs.onSync
	f.fs.mu.Unlock()
	if hook != nil {
		hook(f.name)
	}
	f.fs.mu.Lock()
	f.fs.counts.Syncs++
	err, _, fire := f.fs.sync.take()
	if fire {
		f.fs.counts.FailedSyncs++
	}
	f.fs.mu.Unlock()
	if fire {
		return &os.PathError{Op: "fsync", Path: f.name, Err: err}
	}
	return f.File.Sync()
}
