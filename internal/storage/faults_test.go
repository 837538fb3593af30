package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultBatch is a batch whose content is unique to seed.
func faultBatch(seed, size int) []byte {
	return testBatch(1+seed%3, size, seed, int64(seed))
}

// appendCtx bounds appends in the fault tests: a hang is a failure.
func appendCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reopenAndCheck closes l (whose Close may report a fault the test
// injected), reopens dir on the real filesystem and checks that it holds
// exactly want.
func reopenAndCheck(t *testing.T, l *Log, dir string, cfg func(*LogConfig), want [][]byte) {
	t.Helper()
	l.Close()
	l = openTestLog(t, dir, cfg, Options{})
	defer l.Close()
	checkBatches(t, l, want)
}

func TestFaultWriteFailure(t *testing.T) {
	enospc := syscall.ENOSPC
	for _, tc := range []struct {
		name    string
		policy  FsyncPolicy
		batches int // batches in the failing append
		keep    int // bytes of the failing write that reach the file
	}{
		{"nothing written", FsyncAlways, 1, 0},
		{"header written", FsyncAlways, 1, batchHeaderSize},
		{"all but one byte", FsyncAlways, 1, -1},
		{"partial multi-batch", FsyncAlways, 3, 1500},
		{"never/partial", FsyncNever, 1, 100},
		{"interval/partial multi-batch", FsyncInterval, 3, 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS()
			cfg := func(c *LogConfig) {
				c.SegmentBytes = 64 << 10
				c.Fsync = tc.policy
				c.FsyncInterval = time.Millisecond
			}
			l := openTestLog(t, dir, cfg, Options{FS: fs})
			var acked [][]byte
			for i := range 10 {
				b := faultBatch(i, 500)
				mustAppend(t, l, b)
				acked = append(acked, b)
			}
			_, _, before := l.Offsets()
			var buf []byte
			for i := range tc.batches {
				buf = append(buf, faultBatch(100+i, 400)...)
			}
			keep := tc.keep
			if keep < 0 {
				keep = len(buf) + keep
			}
			fs.failWrites(enospc, 1, keep)
			if _, err := l.Append(appendCtx(t), buf); !errors.Is(err, ErrStorage) || !errors.Is(err, enospc) {
				t.Fatalf("failed write: err %v, want ErrStorage wrapping ENOSPC", err)
			}
			if _, hw, end := l.Offsets(); hw != before || end != before {
				t.Fatalf("after a failed write offsets are %d/%d, want %d", hw, end, before)
			}
			if res, err := l.Read(before, 1<<20); err != nil || res.Len() != 0 {
				t.Fatalf("read past the failed write: %d bytes, %v", res.Len(), err)
			}
			// The fault has cleared: appends resume at the same offset.
			for i := range 5 {
				b := faultBatch(200+i, 300)
				res := mustAppend(t, l, b)
				if want := Batch(acked[len(acked)-1]).NextOffset(); res.BaseOffset != want {
					t.Fatalf("append after the fault at %d, want %d", res.BaseOffset, want)
				}
				acked = append(acked, b)
			}
			checkBatches(t, l, acked)
			reopenAndCheck(t, l, dir, cfg, acked)
		})
	}
}

// TestFaultWriteFailureAfterRoll fails the write of the second run of an
// append that rolls a segment in its middle. Its first batches, already in
// the sealed segment, may become readable (the Append contract allows it);
// nothing else of it may.
func TestFaultWriteFailureAfterRoll(t *testing.T) {
	dir := t.TempDir()
	fs := newFaultFS()
	cfg := func(c *LogConfig) { c.SegmentBytes = 4096; c.Fsync = FsyncAlways }
	l := openTestLog(t, dir, cfg, Options{FS: fs})
	var acked [][]byte
	for i := range 3 {
		b := testBatch(1, 500, i, 0) // about 590 bytes
		mustAppend(t, l, b)
		acked = append(acked, b)
	}
	// Four batches of about 690 bytes: the segment is full after three, so
	// the append writes two runs and the second one fails.
	var buf []byte
	for i := range 4 {
		buf = append(buf, testBatch(1, 600, 100+i, 0)...)
	}
	fs.failWritesAfter(1, syscall.ENOSPC, 1, 10)
	if _, err := l.Append(appendCtx(t), buf); !errors.Is(err, ErrStorage) {
		t.Fatalf("append: %v, want ErrStorage", err)
	}
	if _, failed, _, _ := fs.counts(); failed != 1 {
		t.Fatalf("%d writes failed; the append did not roll mid-way", failed)
	}
	b := faultBatch(200, 300)
	res := mustAppend(t, l, b)
	// Append stamped buf's batches with the offsets they were given.
	var parts [][]byte
	if err := SplitBatches(buf, func(p Batch) bool { parts = append(parts, p); return true }); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, 0)
	n := len(got) - len(acked) - 1 // batches of the failed append now served
	if n < 1 || n >= len(parts) {
		t.Fatalf("log serves %d batches, want %d acknowledged plus a strict prefix of the failed append", len(got), len(acked)+1)
	}
	want := append(slices.Clone(acked), parts[:n]...)
	if next := Batch(want[len(want)-1]).NextOffset(); res.BaseOffset != next {
		t.Fatalf("append after the fault at %d, want %d", res.BaseOffset, next)
	}
	want = append(want, b)
	checkBatches(t, l, want)
	// Every segment respects SegmentBytes, including the one the
	// multi-batch append filled.
	for _, p := range segmentFiles(t, dir) {
		if info, err := os.Stat(p); err != nil || info.Size() > 4096 {
			t.Fatalf("segment %s: %v bytes (limit 4096), %v", filepath.Base(p), info.Size(), err)
		}
	}
	reopenAndCheck(t, l, dir, cfg, want)
}

// TestFaultFsyncFailure: under FsyncAlways a failed fsync fails the appends
// waiting on it, which are never readable; the log is cut back to the last
// durable offset, and once the fault clears appends succeed again from
// there, reusing the discarded offsets.
func TestFaultFsyncFailure(t *testing.T) {
	eio := syscall.EIO
	for _, tc := range []struct {
		name      string
		arm       func(fs *faultFS, sealedBase string)
		appenders int
		size      int  // record size of the failing appends
		allFail   bool // the fault lasts until cleared
	}{
		{"active segment", func(fs *faultFS, _ string) { fs.failSyncs(eio, -1) }, 4, 100, true},
		{"across rolls", func(fs *faultFS, _ string) { fs.failSyncs(eio, -1) }, 4, 1500, true},
		{"sealed segment only", func(fs *faultFS, sealed string) {
			fs.setMatch(func(name string) bool { return name == sealed })
			fs.failSyncs(eio, -1)
		}, 4, 1500, true},
		{"directory", func(fs *faultFS, _ string) { fs.failDirSyncs(eio, -1) }, 4, 1500, true},
		{"once", func(fs *faultFS, _ string) { fs.failSyncs(eio, 1) }, 1, 100, true},
		{"once, concurrent", func(fs *faultFS, _ string) { fs.failSyncs(eio, 1) }, 4, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS()
			cfg := func(c *LogConfig) { c.SegmentBytes = 4096; c.Fsync = FsyncAlways }
			l := openTestLog(t, dir, cfg, Options{FS: fs})
			var acked [][]byte
			for i := range 10 {
				b := faultBatch(i, 100)
				mustAppend(t, l, b)
				acked = append(acked, b)
			}
			_, durable, _ := l.Offsets()
			l.mu.Lock()
			activeName := fmt.Sprintf("%020d.log", l.active().base)
			l.mu.Unlock()
			tc.arm(fs, activeName)

			// A reader watches the high watermark while the appends fail.
			stop := make(chan struct{})
			var watched sync.WaitGroup
			var leaked atomic.Int64
			leaked.Store(-1)
			if tc.allFail {
				watched.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, hw, _ := l.Offsets(); hw != durable {
							leaked.Store(hw)
						}
						res, err := l.Read(durable, 1<<20)
						if err == nil && res.Len() > 0 {
							leaked.Store(durable)
						}
						if err == nil {
							res.Release()
						}
						time.Sleep(50 * time.Microsecond)
					}
				})
			}
			results := make([]struct {
				res AppendResult
				err error
				buf []byte
			}, tc.appenders)
			var wg sync.WaitGroup
			for a := range tc.appenders {
				wg.Go(func() {
					r := &results[a]
					r.buf = testBatch(2, tc.size, 100+a, 0)
					r.res, r.err = l.Append(appendCtx(t), r.buf)
				})
			}
			wg.Wait()
			close(stop)
			watched.Wait()
			if hw := leaked.Load(); hw >= 0 {
				t.Fatalf("data past the durable offset %d became readable (high watermark %d)", durable, hw)
			}
			var failed, minFailed int64 = 0, -1
			for _, r := range results {
				switch {
				case r.err == nil:
					if tc.allFail {
						t.Fatalf("append succeeded during a permanent fsync fault: %+v", r.res)
					}
					acked = append(acked, r.buf)
				case errors.Is(r.err, ErrStorage) && errors.Is(r.err, eio):
					failed++
					if r.res.BaseOffset < durable {
						t.Fatalf("failed append was given offset %d, below the durable %d", r.res.BaseOffset, durable)
					}
					if minFailed < 0 || r.res.BaseOffset < minFailed {
						minFailed = r.res.BaseOffset
					}
				default:
					t.Fatalf("append: %v, want ErrStorage wrapping EIO", r.err)
				}
			}
			if failed == 0 {
				t.Fatal("no append failed")
			}
			// Successful appends may have landed in any order.
			slices.SortFunc(acked, func(a, b []byte) int { return cmp.Compare(Batch(a).BaseOffset(), Batch(b).BaseOffset()) })
			next := Batch(acked[len(acked)-1]).NextOffset()
			if tc.allFail && next != durable {
				t.Fatalf("unreachable: acknowledged data ends at %d, durable %d", next, durable)
			}
			if _, hw, end := l.Offsets(); hw != next || end != next {
				t.Fatalf("after the fault offsets are %d/%d, want %d (cut back to the durable offset)", hw, end, next)
			}
			checkBatches(t, l, acked)

			fs.clear()
			for i := range 20 {
				b := faultBatch(300+i, 400)
				res := mustAppend(t, l, b)
				if res.BaseOffset != next {
					t.Fatalf("append after the fault at %d, want %d", res.BaseOffset, next)
				}
				next = res.LastOffset + 1
				acked = append(acked, b)
			}
			if tc.allFail && Batch(acked[10]).BaseOffset() != minFailed {
				t.Fatalf("offset %d of a failed append was not reused", minFailed)
			}
			checkBatches(t, l, acked)
			reopenAndCheck(t, l, dir, cfg, acked)
		})
	}
}

// TestFaultFsyncFailureOtherPolicies: without FsyncAlways appends are
// acknowledged before the fsync, so a failed background fsync discards
// nothing, and the log keeps working.
func TestFaultFsyncFailureOtherPolicies(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncInterval, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS()
			cfg := func(c *LogConfig) { c.SegmentBytes = 4096; c.Fsync = policy; c.FsyncInterval = time.Millisecond }
			l := openTestLog(t, dir, cfg, Options{FS: fs})
			fs.failSyncs(syscall.EIO, -1)
			var acked [][]byte
			for i := range 40 {
				b := faultBatch(i, 300)
				mustAppend(t, l, b)
				acked = append(acked, b)
				if i%10 == 0 {
					time.Sleep(2 * time.Millisecond) // let background rounds run, and fail
				}
			}
			checkBatches(t, l, acked)
			if err := l.Close(); !errors.Is(err, ErrStorage) {
				t.Fatalf("Close with a failing fsync: %v, want ErrStorage", err)
			}
			if _, _, syncs, failed := fs.counts(); failed == 0 || failed != syncs {
				t.Fatalf("%d of %d fsyncs failed", failed, syncs)
			}
			reopenAndCheck(t, l, dir, cfg, acked)
		})
	}
}

// TestFaultConcurrent runs appenders while writes and fsyncs fail at random
// moments, and checks that no append that returned success is lost, before
// and after a reopen, and that offsets stay dense.
func TestFaultConcurrent(t *testing.T) {
	rounds, perAppender := 3, 150
	if longTests() {
		rounds, perAppender = 20, 500
	}
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS()
			cfg := func(c *LogConfig) { c.SegmentBytes = 16 << 10; c.IndexIntervalBytes = 1024; c.Fsync = FsyncAlways }
			l := openTestLog(t, dir, cfg, Options{FS: fs})
			const appenders = 4
			type outcome struct {
				buf []byte
				res AppendResult
				err error
			}
			outcomes := make([][]outcome, appenders)
			var wg sync.WaitGroup
			for a := range appenders {
				wg.Go(func() {
					// Odd appenders pipeline, as a Kafka connection does:
					// up to 4 appends written before the first is waited on.
					depth := 1 + 3*(a%2)
					var window []Pending
					for seq := range perAppender {
						buf := testBatch(1+seq%4, 50+(seq*97+a*31)%900, a*100_000+seq, int64(seq))
						res, p, err := l.AppendAsync(buf)
						outcomes[a] = append(outcomes[a], outcome{buf, res, err})
						window = append(window, p)
						if len(window) == depth || seq == perAppender-1 {
							first := len(outcomes[a]) - len(window)
							for i, p := range window {
								if o := &outcomes[a][first+i]; o.err == nil {
									o.err = p.Wait(appendCtx(t))
								}
							}
							window = window[:0]
						}
					}
				})
			}
			done := make(chan struct{})
			var injected atomic.Int64
			var injector sync.WaitGroup
			injector.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), 7))
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Duration(rng.IntN(3000)) * time.Microsecond):
					}
					switch rng.IntN(4) {
					case 0:
						fs.failSyncs(syscall.EIO, 1+rng.IntN(3))
					case 1:
						fs.failWrites(syscall.ENOSPC, 1, rng.IntN(2000))
					case 2:
						fs.failDirSyncs(syscall.EIO, 1)
					case 3:
						fs.clear()
						continue
					}
					injected.Add(1)
				}
			})
			wg.Wait()
			close(done)
			injector.Wait()
			fs.clear()

			acked := map[int64][]byte{}
			var ok, failed int
			for a := range appenders {
				for _, o := range outcomes[a] {
					if o.err != nil {
						if !errors.Is(o.err, ErrStorage) {
							t.Fatalf("append failed with %v, want ErrStorage", o.err)
						}
						failed++
						continue
					}
					if prev, dup := acked[o.res.BaseOffset]; dup {
						t.Fatalf("offset %d acknowledged twice (%d and %d bytes)", o.res.BaseOffset, len(prev), len(o.buf))
					}
					acked[o.res.BaseOffset] = o.buf
					ok++
				}
			}
			check := func(l *Log) int {
				byBase := map[int64]Batch{}
				var next int64
				for _, b := range readAll(t, l, 0) {
					if _, err := CheckBatch(b, 0); err != nil {
						t.Fatalf("stored batch at %d: %v", b.BaseOffset(), err)
					}
					if b.BaseOffset() != next {
						t.Fatalf("batch at %d follows offset %d", b.BaseOffset(), next)
					}
					next = b.NextOffset()
					byBase[b.BaseOffset()] = b
				}
				for base, want := range acked {
					if got, present := byBase[base]; !present || string(got) != string(want) {
						t.Fatalf("acknowledged batch at offset %d is lost (present: %v)", base, present)
					}
				}
				// Failed appends whose bytes are stored nevertheless.
				var failedPresent int
				for a := range appenders {
					for _, o := range outcomes[a] {
						if got, present := byBase[o.res.BaseOffset]; o.err != nil && present && string(got) == string(o.buf) {
							failedPresent++
						}
					}
				}
				return failedPresent
			}
			// A single-batch append that failed was discarded whole.
			if n := check(l); n != 0 {
				t.Errorf("%d failed appends are stored", n)
			}
			l.Close()
			l = openTestLog(t, dir, cfg, Options{})
			defer l.Close()
			failedPresent := check(l)
			if failedPresent != 0 {
				t.Errorf("%d failed appends are stored after a reopen", failedPresent)
			}
			writes, failedWrites, syncs, failedSyncs := fs.counts()
			t.Logf("%d faults injected (%d of %d writes and %d of %d fsyncs failed); %d appends acknowledged, %d failed, %d of those stored",
				injected.Load(), failedWrites, writes, failedSyncs, syncs, ok, failed, failedPresent)
		})
	}
}

// TestFaultCloseDuringAppends closes a log while appends wait for their
// fsync. Close promises that pending appends complete: each append either
// succeeds and is stored, or fails with ErrClosed and is not.
func TestFaultCloseDuringAppends(t *testing.T) {
	rounds := 5
	if longTests() {
		rounds = 50
	}
	for round := range rounds {
		dir := t.TempDir()
		fs := newFaultFS()
		// Slow fsyncs keep appends waiting when Close comes.
		fs.setOnSync(func(string) { time.Sleep(200 * time.Microsecond) })
		cfg := func(c *LogConfig) { c.SegmentBytes = 16 << 10; c.Fsync = FsyncAlways }
		l := openTestLog(t, dir, cfg, Options{FS: fs})
		const appenders = 8
		type outcome struct {
			buf []byte
			res AppendResult
			err error
		}
		outcomes := make([][]outcome, appenders)
		var wg sync.WaitGroup
		for a := range appenders {
			wg.Go(func() {
				for seq := 0; ; seq++ {
					buf := faultBatch(a*100_000+seq, 200)
					res, err := l.Append(context.Background(), buf)
					outcomes[a] = append(outcomes[a], outcome{buf, res, err})
					if err != nil {
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(1+round%5) * time.Millisecond)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		l = openTestLog(t, dir, cfg, Options{})
		byBase := map[int64]Batch{}
		for _, b := range readAll(t, l, 0) {
			byBase[b.BaseOffset()] = b
		}
		l.Close()
		var ok, closedPresent int
		for a := range appenders {
			for _, o := range outcomes[a] {
				got, present := byBase[o.res.BaseOffset]
				present = present && string(got) == string(o.buf)
				switch {
				case o.err == nil:
					ok++
					if !present {
						t.Fatalf("round %d: acknowledged append at %d is lost", round, o.res.BaseOffset)
					}
				case errors.Is(o.err, ErrClosed):
					if present {
						closedPresent++
					}
				default:
					t.Fatalf("round %d: append failed with %v", round, o.err)
				}
			}
		}
		if closedPresent > 0 {
			t.Errorf("round %d: %d appends failed with ErrClosed but were stored (%d succeeded)", round, closedPresent, ok)
		}
	}
}
