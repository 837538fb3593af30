package storage

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// faultFS is OSFS with failures on demand: WriteAt and Sync of segment files
// (or of whichever files match) and directory fsyncs can be told to fail,
// permanently or a given number of times. A failing WriteAt can let part of
// the data reach the file first, as a short write before ENOSPC does.
type faultFS struct {
	OSFS

	mu      sync.Mutex
	match   func(name string) bool // files whose WriteAt and Sync may fail
	write   fault
	sync    fault
	dirSync fault
	// onSync, when set, runs at the start of every Sync of a matching file,
	// outside the lock: tests use it to hold a sync back.
	onSync func(name string)

	writes, failedWrites int
	syncs, failedSyncs   int
}

func newFaultFS() *faultFS {
	return &faultFS{match: func(name string) bool { return strings.HasSuffix(name, ".log") }}
}

// failWrites makes the next n WriteAt calls on matching files (n < 0: all
// until cleared) write keep bytes and then return err.
func (fs *faultFS) failWrites(err error, n, keep int) { fs.failWritesAfter(0, err, n, keep) }

// failWritesAfter is failWrites once skip more writes have succeeded.
func (fs *faultFS) failWritesAfter(skip int, err error, n, keep int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write = fault{err: err, after: skip, times: n, keep: keep}
}

// setMatch selects the files (by base name) whose writes and syncs may fail.
func (fs *faultFS) setMatch(match func(name string) bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.match = match
}

// failSyncs makes the next n Sync calls on matching files fail with err.
func (fs *faultFS) failSyncs(err error, n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.sync = fault{err: err, times: n}
}

// failDirSyncs makes the next n directory fsyncs fail with err.
func (fs *faultFS) failDirSyncs(err error, n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.dirSync = fault{err: err, times: n}
}

// clear removes every fault.
func (fs *faultFS) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write, fs.sync, fs.dirSync = fault{}, fault{}, fault{}
}

// counts returns how many matching writes and syncs ran, and how many of
// them failed.
func (fs *faultFS) counts() (writes, failedWrites, syncs, failedSyncs int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.writes, fs.failedWrites, fs.syncs, fs.failedSyncs
}

func (fs *faultFS) setOnSync(fn func(name string)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.onSync = fn
}

// OpenFile opens the file through OSFS and wraps it.
func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs, name: name}, nil
}

// SyncDir fsyncs the directory unless a directory fault fires.
func (fs *faultFS) SyncDir(name string) error {
	fs.mu.Lock()
	err, _, fire := fs.dirSync.take()
	fs.mu.Unlock()
	if fire {
		return &os.PathError{Op: "fsync", Path: name, Err: err}
	}
	return fs.OSFS.SyncDir(name)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

// faulty reports whether faults apply to the file. Callers hold fs.mu.
func (f *faultFile) faulty() bool { return f.fs.match(filepath.Base(f.name)) }

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	if !f.faulty() {
		f.fs.mu.Unlock()
		return f.File.WriteAt(p, off)
	}
	f.fs.writes++
	err, keep, fire := f.fs.write.take()
	if fire {
		f.fs.failedWrites++
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

func (f *faultFile) Sync() error {
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
	f.fs.syncs++
	err, _, fire := f.fs.sync.take()
	if fire {
		f.fs.failedSyncs++
	}
	f.fs.mu.Unlock()
	if fire {
		return &os.PathError{Op: "fsync", Path: f.name, Err: err}
	}
	return f.File.Sync()
}

// fastFS is OSFS without fsync. Tests that damage files by hand and never
// crash the machine use it to run thousands of recoveries quickly; what they
// check does not depend on durability.
type fastFS struct{ OSFS }

func (fastFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (fastFS) SyncDir(string) error { return nil }

type noSyncFile struct{ *os.File }

func (noSyncFile) Sync() error { return nil }
