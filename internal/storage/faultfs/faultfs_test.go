package faultfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wharfmq/wharf/internal/storage"
	"github.com/wharfmq/wharf/internal/storage/faultfs"
)

func open(t *testing.T, fs *faultfs.FS, name string) storage.File {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestShortWriteThenError(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(nil)
	seg := open(t, fs, filepath.Join(dir, "00000000000000000000.log"))
	other := open(t, fs, filepath.Join(dir, "acks"))

	fs.FailWrites(syscall.ENOSPC, 1, 3)
	n, err := seg.WriteAt([]byte("abcdef"), 0)
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("failing write: %d, %v; want 3, ENOSPC", n, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.log")); string(got) != "abc" {
		t.Fatalf("file holds %q after the short write, want %q", got, "abc")
	}
	// Files the match does not select are never failed.
	fs.FailWrites(syscall.EIO, -1, 0)
	if _, err := other.WriteAt([]byte("x"), 0); err != nil {
		t.Fatalf("write to a file outside the match: %v", err)
	}
	if _, err := seg.WriteAt([]byte("x"), 3); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write under a permanent fault: %v, want EIO", err)
	}
	if _, err := seg.WriteAt([]byte("y"), 3); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second write under a permanent fault: %v, want EIO", err)
	}
	fs.Clear()
	if _, err := seg.WriteAt([]byte("def"), 3); err != nil {
		t.Fatalf("write after Clear: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.log")); string(got) != "abcdef" {
		t.Fatalf("file holds %q, want %q", got, "abcdef")
	}
	c := fs.Counts()
	if c.Writes != 4 || c.FailedWrites != 3 {
		t.Fatalf("counts %+v, want 4 writes of which 3 failed", c)
	}
}

func TestSyncFaults(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(nil)
	fs.SetMatch(func(path string) bool { return filepath.Base(path) == "data" })
	f := open(t, fs, filepath.Join(dir, "data"))

	var hooked []string
	fs.SetOnSync(func(path string) { hooked = append(hooked, filepath.Base(path)) })
	fs.FailSyncs(syscall.EIO, 2)
	for i := range 2 {
		if err := f.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sync %d: %v, want EIO", i, err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync after the fault ran out: %v", err)
	}
	if len(hooked) != 3 {
		t.Fatalf("OnSync ran for %v, want three syncs", hooked)
	}

	fs.FailDirSyncs(syscall.EIO, 1)
	if err := fs.SyncDir(dir); !errors.Is(err, syscall.EIO) {
		t.Fatalf("directory sync: %v, want EIO", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatalf("second directory sync: %v", err)
	}
	c := fs.Counts()
	if c.Syncs != 3 || c.FailedSyncs != 2 || c.DirSyncs != 2 || c.FailedDirs != 1 {
		t.Fatalf("counts %+v", c)
	}
}

// TestLogOnFaultFS runs the storage engine on the FS: a write that fails
// with ENOSPC fails the append with ErrStorage, and the next append after
// Clear succeeds at the same offset.
func TestLogOnFaultFS(t *testing.T) {
	fs := faultfs.New(nil)
	cfg := storage.DefaultLogConfig()
	l, err := storage.Open(t.TempDir(), cfg, storage.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	batch := func(v string) []byte {
		return storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []storage.Record{{Value: []byte(v)}}})
	}
	ctx := t.Context()
	if _, err := l.Append(ctx, batch("a")); err != nil {
		t.Fatal(err)
	}
	fs.FailWrites(syscall.ENOSPC, 1, 5)
	if _, err := l.Append(ctx, batch("b")); !errors.Is(err, storage.ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ErrStorage wrapping ENOSPC", err)
	}
	res, err := l.Append(ctx, batch("c"))
	if err != nil || res.BaseOffset != 1 {
		t.Fatalf("append after the fault: offset %d, %v; want 1", res.BaseOffset, err)
	}
}
