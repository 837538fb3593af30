package storage

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// syncedFS is OSFS that remembers, for each segment file, its size at its
// last fsync: what a power loss right now would certainly leave of it.
type syncedFS struct {
	OSFS
	mu     sync.Mutex
	synced map[string]int64
}

func newSyncedFS() *syncedFS { return &syncedFS{synced: map[string]int64{}} }

func (fs *syncedFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &syncedFile{File: f, fs: fs, name: name}, nil
}

type syncedFile struct {
	File
	fs   *syncedFS
	name string
}

func (f *syncedFile) Sync() error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.synced[f.name] = info.Size()
	f.fs.mu.Unlock()
	return nil
}

// powerLoss cuts every segment file in dir back to its last fsynced size.
func (fs *syncedFS) powerLoss(t *testing.T, dir string) {
	t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, path := range segmentFiles(t, dir) {
		if err := os.Truncate(path, fs.synced[path]); err != nil {
			t.Fatal(err)
		}
	}
}

// Close fsyncs everything whatever the fsync policy: a power loss right
// after it loses nothing, and the next Open trusts the indexes Close wrote
// for the active segment instead of reading it.
func TestCloseMakesEverythingDurable(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			fs := newSyncedFS()
			config := func(c *LogConfig) { recoveryConfig(c); c.Fsync = policy }
			l := openTestLog(t, dir, config, Options{FS: fs})
			var want [][]byte
			for i := range 60 {
				b := recoveryBatch(i)
				mustAppend(t, l, b)
				want = append(want, b)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			fs.powerLoss(t, dir)

			var rec Recovery
			l = openTestLog(t, dir, config, Options{FS: fs, OnOpen: func(r Recovery) { rec = r }})
			if rec.ScannedSegments != 0 || rec.TruncatedBytes != 0 {
				t.Errorf("open after a clean close: %+v, want nothing scanned or cut", rec)
			}
			checkBatches(t, l, want)
			// The active segment's indexes are gone once it is open again:
			// it changes from now on.
			last := segmentFiles(t, dir)
			stem := strings.TrimSuffix(last[len(last)-1], ".log")
			for _, ext := range []string{".index", ".timeindex", ".txnindex"} {
				if _, err := os.Stat(stem + ext); !os.IsNotExist(err) {
					t.Errorf("active segment's %s after open: %v", ext, err)
				}
			}
			checkAppendAfterRecovery(t, dir, l, want)
		})
	}
}

// The indexes a clean Close wrote for the active segment and loaded at the
// next Open serve exactly as the ones a full read rebuilds.
func TestCleanOpenIndexesMatchRebuilt(t *testing.T) {
	dir := t.TempDir()
	want := buildRecoveryLog(t, dir, 60)
	scanned := t.TempDir()
	for _, path := range segmentFiles(t, dir) {
		stem := strings.TrimSuffix(filepath.Base(path), ".log")
		for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
			buf, err := os.ReadFile(filepath.Join(dir, stem+ext))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(scanned, stem+ext), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := segmentFiles(t, scanned)
	stem := strings.TrimSuffix(last[len(last)-1], ".log")
	os.Remove(stem + ".index")
	os.Remove(stem + ".timeindex")

	var cleanRec, scanRec Recovery
	clean := openTestLog(t, dir, recoveryConfig, Options{OnOpen: func(r Recovery) { cleanRec = r }})
	defer clean.Close()
	rebuilt := openTestLog(t, scanned, recoveryConfig, Options{OnOpen: func(r Recovery) { scanRec = r }})
	defer rebuilt.Close()
	if cleanRec.ScannedSegments != 0 || scanRec.ScannedSegments != 1 {
		t.Fatalf("scanned %d and %d segments, want 0 (clean) and 1 (no indexes)", cleanRec.ScannedSegments, scanRec.ScannedSegments)
	}
	checkBatches(t, clean, want)
	queries := timeQueries(want)
	if a, b := offsetsForTimes(t, clean, queries), offsetsForTimes(t, rebuilt, queries); !slices.Equal(a, b) {
		t.Fatalf("time lookups differ:\nclean   %v\nrebuilt %v", a, b)
	}
	// Every offset is found at the same place (the offset index).
	for o := range Batch(want[len(want)-1]).NextOffset() {
		if a, b := readOne(t, clean, o), readOne(t, rebuilt, o); !slices.Equal(a, b) {
			t.Fatalf("read at %d: %d bytes from the clean open, %d from the rebuilt one", o, len(a), len(b))
		}
	}
}

// readOne returns the first batch a read at offset serves.
func readOne(t *testing.T, l *Log, offset int64) []byte {
	t.Helper()
	res, err := l.Read(offset, 1)
	if err != nil {
		t.Fatalf("read at %d: %v", offset, err)
	}
	defer res.Release()
	buf, err := res.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// A crash after appends to a segment that opened clean: should the
// removal of its old indexes not have survived, their recorded size no
// longer matches the file, and the segment is read batch by batch; nothing
// appended is lost.
func TestStaleActiveIndexesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	want := buildRecoveryLog(t, dir, 60)
	last := segmentFiles(t, dir)
	stem := strings.TrimSuffix(last[len(last)-1], ".log")
	stale := map[string][]byte{}
	for _, ext := range []string{".index", ".timeindex"} {
		buf, err := os.ReadFile(stem + ext)
		if err != nil {
			t.Fatal(err)
		}
		stale[stem+ext] = buf
	}

	l := openTestLog(t, dir, recoveryConfig, Options{})
	b := testBatch(1, 30, 77, 9000) // small: stays in the active segment
	mustAppend(t, l, b)
	want = append(want, b)
	// The crash: copy what is on disk while the log is open (FsyncAlways:
	// the append is in the file), and bring the old indexes back.
	crashed := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		buf, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for path, buf := range stale {
		if err := os.WriteFile(filepath.Join(crashed, filepath.Base(path)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	var rec Recovery
	l = openTestLog(t, crashed, recoveryConfig, Options{OnOpen: func(r Recovery) { rec = r }})
	defer l.Close()
	if rec.ScannedSegments != 1 {
		t.Errorf("scanned %d segments, want the active one", rec.ScannedSegments)
	}
	checkBatches(t, l, want)
}
