package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// longTests selects the exhaustive variants of the adversarial tests.
func longTests() bool { return os.Getenv("WHARF_LONG_TESTS") == "1" }

// segmentFiles returns the log's segment files in offset order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

// batchSpans returns the [start, end) byte ranges of the whole batches in a
// segment file.
func batchSpans(t testing.TB, path string) [][2]int64 {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spans [][2]int64
	var pos int64
	if err := SplitBatches(buf, func(b Batch) bool {
		spans = append(spans, [2]int64{pos, pos + int64(len(b))})
		pos += int64(len(b))
		return true
	}); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return spans
}

// recoveryConfig gives several small segments with several index entries
// each.
func recoveryConfig(c *LogConfig) {
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 512
	c.Fsync = FsyncAlways
}

// recoveryBatch is batch i of the recovery logs: 1 to 5 records of 20 to
// 320 bytes, timestamps rising by 10 per batch.
func recoveryBatch(i int) []byte {
	return testBatch(1+i%5, 20+(i*37)%300, i, 1000+10*int64(i))
}

// buildRecoveryLog appends n batches to a fresh log in dir, closes it, and
// returns the batches as stored (with their offsets).
func buildRecoveryLog(t testing.TB, dir string, n int) [][]byte {
	t.Helper()
	l := openTestLog(t, dir, recoveryConfig, Options{})
	var want [][]byte
	for i := range n {
		b := recoveryBatch(i)
		mustAppend(t, l, b)
		want = append(want, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// checkBatches fails unless the log serves exactly want from offset 0, with
// the high watermark and log end right after it.
func checkBatches(t testing.TB, l *Log, want [][]byte) {
	t.Helper()
	got := readAll(t, l, 0)
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d (offset %d) differs from what was written", i, Batch(want[i]).BaseOffset())
		}
	}
	if len(got) != len(want) {
		t.Fatalf("log serves %d batches, want %d", len(got), len(want))
	}
	var next int64
	if len(want) > 0 {
		next = Batch(want[len(want)-1]).NextOffset()
	}
	if start, hw, end := l.Offsets(); start != 0 || hw != next || end != next {
		t.Fatalf("offsets %d/%d/%d, want 0/%d/%d", start, hw, end, next, next)
	}
}

// checkAppendAfterRecovery appends one batch, expects it at the next dense
// offset, and checks that it is served after a reopen too.
func checkAppendAfterRecovery(t testing.TB, dir string, l *Log, kept [][]byte) {
	t.Helper()
	var next int64
	if len(kept) > 0 {
		next = Batch(kept[len(kept)-1]).NextOffset()
	}
	b := testBatch(2, 40, 999, 5000)
	if res := mustAppend(t, l, b); res.BaseOffset != next {
		t.Fatalf("append after recovery got offset %d, want %d", res.BaseOffset, next)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
	defer l.Close()
	checkBatches(t, l, append(slices.Clip(kept), b))
}

// damagePositions returns the byte positions of a file of the given size to
// damage: every position in long mode; otherwise the first 70 bytes of every
// batch (its whole header and the first records), the last bytes of every
// batch, and a regular sample of the rest.
func damagePositions(size int64, spans [][2]int64) []int64 {
	if longTests() {
		ps := make([]int64, size)
		for i := range ps {
			ps[i] = int64(i)
		}
		return ps
	}
	set := map[int64]bool{}
	for _, sp := range spans {
		for p := sp[0]; p < min(sp[0]+70, sp[1]); p++ {
			set[p] = true
		}
		for p := max(sp[0], sp[1]-3); p < sp[1]; p++ {
			set[p] = true
		}
	}
	for p := int64(0); p < size; p += 11 {
		set[p] = true
	}
	ps := make([]int64, 0, len(set))
	for p := range set {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// recoveryFixture is a log with several segments as a crash leaves it, and
// the layout of its last segment. Cases work on copies of it.
type recoveryFixture struct {
	dir     string
	batches [][]byte          // every batch, as stored
	sealed  int               // how many of them are in sealed segments
	last    string            // the last segment's file name
	spans   [][2]int64        // the last segment's batches
	size    int64             // the last segment's size
	files   map[string][]byte // the fixture's files, to prove they stay intact
}

func newRecoveryFixture(t *testing.T) *recoveryFixture {
	t.Helper()
	fx := &recoveryFixture{dir: t.TempDir(), files: map[string][]byte{}}
	fx.batches = buildRecoveryLog(t, fx.dir, 60)
	segs := segmentFiles(t, fx.dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	fx.last = filepath.Base(segs[len(segs)-1])
	fx.spans = batchSpans(t, segs[len(segs)-1])
	fx.sealed = len(fx.batches) - len(fx.spans)
	if len(fx.spans) < 4 {
		t.Fatalf("want several batches in the last segment, got %d", len(fx.spans))
	}
	fx.size = fx.spans[len(fx.spans)-1][1]
	fx.readFiles(t)
	t.Cleanup(func() { fx.checkIntact(t) })
	return fx
}

// readFiles records the fixture's files, as a crash would leave them: a
// clean Close writes the active segment's indexes, a crash never does, and
// the damage the recovery cases apply is a crash's.
func (fx *recoveryFixture) readFiles(t testing.TB) {
	t.Helper()
	stem := strings.TrimSuffix(filepath.Join(fx.dir, fx.last), ".log")
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(stem + ext); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		buf, err := os.ReadFile(filepath.Join(fx.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fx.files[e.Name()] = buf
	}
}

// checkIntact fails if a case changed the fixture through a shared link.
func (fx *recoveryFixture) checkIntact(t *testing.T) {
	for name, want := range fx.files {
		got, err := os.ReadFile(filepath.Join(fx.dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("fixture file %s was modified by a case (%v)", name, err)
		}
	}
}

// keptBefore returns the batches wholly before byte p of the last segment.
func (fx *recoveryFixture) keptBefore(p int64) [][]byte {
	n := fx.sealed
	for _, sp := range fx.spans {
		if sp[1] <= p {
			n++
		}
	}
	return fx.batches[:n]
}

// copyLog makes a new copy of the fixture and returns its directory. The
// sealed segments and their indexes are hard links (the engine never
// writes to them in place: indexes are replaced by rename, and whatever
// it did anyway is caught by checkIntact); the last segment is a private
// copy with damage applied to its bytes.
func (fx *recoveryFixture) copyLog(t *testing.T, damage func([]byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, buf := range fx.files {
		if name == fx.last {
			if err := os.WriteFile(filepath.Join(dir, name), damage(slices.Clone(buf)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Link(filepath.Join(fx.dir, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRecoveryTruncatedTail(t *testing.T) {
	fx := newRecoveryFixture(t)
	positions := append(damagePositions(fx.size, fx.spans), fx.size) // and no damage at all
	for _, p := range positions {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			dir := fx.copyLog(t, func(b []byte) []byte { return b[:p] })
			l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
			kept := fx.keptBefore(p)
			checkBatches(t, l, kept)
			checkAppendAfterRecovery(t, dir, l, kept)
		})
	}
}

func TestRecoveryBitFlip(t *testing.T) {
	fx := newRecoveryFixture(t)
	for _, p := range damagePositions(fx.size, fx.spans) {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			dir := fx.copyLog(t, func(b []byte) []byte { b[p] ^= 1 << (p % 8); return b })
			kept := fx.keptBefore(p)
			// The partition leader epoch, like the base offset, is outside
			// the CRC so that the broker can stamp it; the format cannot
			// detect a flip there, and recovery keeps the batch as stored.
			// (A flipped base offset is caught by the offset sequence.)
			for i, sp := range fx.spans {
				if p >= sp[0]+offLeaderEpoch && p < sp[0]+offMagic {
					kept = slices.Clone(fx.batches)
					b := slices.Clone(kept[fx.sealed+i])
					b[p-sp[0]] ^= 1 << (p % 8)
					kept[fx.sealed+i] = b
				}
			}
			l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
			checkBatches(t, l, kept)
			checkAppendAfterRecovery(t, dir, l, kept)
		})
	}
}

// TestRecoveryGarbageTail covers zeroed (preallocated) and random bytes
// after the last whole batch, as a crash during a write can leave.
func TestRecoveryGarbageTail(t *testing.T) {
	fx := newRecoveryFixture(t)
	garbage := map[string][]byte{
		"zeros":   make([]byte, 5000),
		"ones":    bytes.Repeat([]byte{0xff}, 100),
		"short":   {0, 0, 0},
		"header":  fx.batches[len(fx.batches)-1][:batchHeaderSize],
		"replay":  fx.batches[len(fx.batches)-1], // a whole batch with a stale offset
		"pattern": bytes.Repeat([]byte("wharf"), 300),
	}
	for name, g := range garbage {
		t.Run(name, func(t *testing.T) {
			dir := fx.copyLog(t, func(b []byte) []byte { return append(b, g...) })
			l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
			checkBatches(t, l, fx.batches)
			checkAppendAfterRecovery(t, dir, l, fx.batches)
		})
	}
}

// timeQueries are the timestamps the index tests ask OffsetForTime about.
func timeQueries(batches [][]byte) []int64 {
	ts := []int64{-1, 0, 999, 1000}
	for _, b := range batches {
		ts = append(ts, Batch(b).BaseTimestamp(), Batch(b).MaxTimestamp(), Batch(b).MaxTimestamp()+1)
	}
	return ts
}

type timeAnswer struct{ off, ts int64 }

func offsetsForTimes(t testing.TB, l *Log, queries []int64) []timeAnswer {
	t.Helper()
	var out []timeAnswer
	for _, q := range queries {
		off, ts, err := l.OffsetForTime(q)
		if err != nil {
			t.Fatalf("OffsetForTime(%d): %v", q, err)
		}
		out = append(out, timeAnswer{off, ts})
	}
	off, ts, err := l.MaxTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	return append(out, timeAnswer{off, ts})
}

func TestRecoverySealedIndexDamage(t *testing.T) {
	fx := newRecoveryFixture(t)
	queries := timeQueries(fx.batches)
	ref := openTestLog(t, fx.dir, recoveryConfig, Options{})
	wantTimes := offsetsForTimes(t, ref, queries)
	ref.Close()
	segs := segmentFiles(t, fx.dir)
	damages := map[string]func(path string) error{
		"deleted":   os.Remove,
		"empty":     func(p string) error { return os.Truncate(p, 0) },
		"truncated": func(p string) error { return truncateBy(p, 1) },
		"half":      func(p string) error { return truncateHalf(p) },
		"flipped":   func(p string) error { return flipByte(p, 0) },
		"trailer":   func(p string) error { return flipByte(p, -9) },
		"extended":  func(p string) error { return appendBytes(p, make([]byte, 8)) },
	}
	for _, ext := range []string{".index", ".timeindex"} {
		for _, which := range []int{0, len(segs) / 2, len(segs) - 2} {
			for name, damage := range damages {
				t.Run(fmt.Sprintf("%s/segment%d/%s", ext, which, name), func(t *testing.T) {
					dir := fx.copyLog(t, func(b []byte) []byte { return b })
					stem := strings.TrimSuffix(filepath.Base(segs[which]), ".log")
					target := filepath.Join(dir, stem+ext)
					// Damage a private copy, not the shared link.
					orig := fx.files[filepath.Base(target)]
					if err := os.Remove(target); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(target, orig, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := damage(target); err != nil {
						t.Fatal(err)
					}
					l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
					checkBatches(t, l, fx.batches)
					if got := offsetsForTimes(t, l, queries); !slices.Equal(got, wantTimes) {
						t.Fatalf("OffsetForTime answers changed after the index was rebuilt:\n got %v\nwant %v", got, wantTimes)
					}
					for _, b := range fx.batches {
						readFrom(t, l, Batch(b).BaseOffset()+int64(Batch(b).LastOffsetDelta()/2), b)
					}
					// Rebuilding is deterministic: the new file is the old one.
					rebuilt, err := os.ReadFile(target)
					if err != nil {
						t.Fatalf("index not rewritten: %v", err)
					}
					if !bytes.Equal(rebuilt, orig) {
						t.Fatalf("rebuilt %s differs from the original", filepath.Base(target))
					}
					l.Close()
				})
			}
		}
	}
}

// readFrom checks that a read at offset starts with the batch want.
func readFrom(t testing.TB, l *Log, offset int64, want []byte) {
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
	if !bytes.Equal(buf, want) {
		t.Fatalf("read at %d served %d bytes, not the batch [%d, %d)", offset, len(buf), Batch(want).BaseOffset(), Batch(want).NextOffset())
	}
}

func truncateBy(path string, n int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, max(info.Size()-n, 0))
}

func truncateHalf(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, info.Size()/2)
}

// flipByte inverts the byte at pos, counted from the end when negative.
func flipByte(path string, pos int) error {
	buf, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if pos < 0 {
		pos = max(pos+len(buf), 0)
	}
	buf[pos] ^= 0xff
	return os.WriteFile(path, buf, 0o644)
}

func appendBytes(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestRecoveryRemovesStrayFiles(t *testing.T) {
	fx := newRecoveryFixture(t)
	dir := fx.copyLog(t, func(b []byte) []byte { return b })
	segs := segmentFiles(t, dir)
	stray := []string{
		strings.TrimSuffix(segs[0], ".log") + ".index.tmp",
		strings.TrimSuffix(segs[1], ".log") + ".timeindex.tmp",
		filepath.Join(dir, startOffsetFile+".tmp"),
		filepath.Join(dir, "00000000000099999999.index"),     // orphans of a deleted segment
		filepath.Join(dir, "00000000000099999999.timeindex"), //
	}
	for _, p := range stray {
		if err := os.WriteFile(p, []byte("left over"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
	defer l.Close()
	checkBatches(t, l, fx.batches)
	for _, p := range stray {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived recovery: %v", filepath.Base(p), err)
		}
	}
	// Sealed segments keep their indexes.
	for _, s := range segs[:len(segs)-1] {
		for _, ext := range []string{".index", ".timeindex"} {
			if _, err := os.Stat(strings.TrimSuffix(s, ".log") + ext); err != nil {
				t.Errorf("index of a sealed segment is gone: %v", err)
			}
		}
	}
}

// TestRecoveryStartAheadOfTail: the start offset checkpoint is fsynced on
// its own, so after a machine crash it can be ahead of a log whose
// unsynced tail was lost (FsyncNever or FsyncInterval). The log must open,
// continue densely from the start offset, and open again afterwards.
func TestRecoveryStartAheadOfTail(t *testing.T) {
	fx := newRecoveryFixture(t)
	for _, cut := range []int{0, 1, len(fx.spans) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := fx.copyLog(t, func(b []byte) []byte { return b })
			end := Batch(fx.batches[len(fx.batches)-1]).NextOffset()
			l := openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
			if _, err := l.SetStartOffset(end); err != nil {
				t.Fatal(err)
			}
			l.Close()
			// Lose the tail of the last segment.
			if err := os.Truncate(filepath.Join(dir, fx.last), fx.spans[cut][0]); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				l = openTestLog(t, dir, recoveryConfig, Options{FS: fastFS{}})
				start, hw, next := l.Offsets()
				if start != end || hw != next || next < end {
					t.Fatalf("round %d: offsets %d/%d/%d, want start %d", round, start, hw, next, end)
				}
				if res := mustAppend(t, l, testBatch(1, 10, round, 1)); res.BaseOffset != next {
					t.Fatalf("round %d: append at %d, want %d", round, res.BaseOffset, next)
				}
				if got := readAll(t, l, start); len(got) != round+1 || got[0].BaseOffset() != end {
					t.Fatalf("round %d: %d batches from the start", round, len(got))
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
