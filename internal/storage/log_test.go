package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestAppendReadRoundTrip(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, func(c *LogConfig) { c.Fsync = policy; c.FsyncInterval = 5 * time.Millisecond }, Options{})
			var want [][]byte
			var next int64
			for i := range 50 {
				b := testBatch(1+i%5, 100, i, 1000+int64(i))
				res := mustAppend(t, l, b)
				if res.BaseOffset != next {
					t.Fatalf("batch %d: base offset %d, want %d", i, res.BaseOffset, next)
				}
				next = res.LastOffset + 1
				want = append(want, append([]byte(nil), b...)) // b now carries its offset
			}
			check := func(l *Log) {
				got := readAll(t, l, 0)
				if len(got) != len(want) {
					t.Fatalf("read %d batches, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("batch %d differs", i)
					}
				}
				start, hw, end := l.Offsets()
				if start != 0 || hw != next || end != next {
					t.Fatalf("offsets %d/%d/%d, want 0/%d/%d", start, hw, end, next, next)
				}
			}
			check(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTestLog(t, dir, nil, Options{})
			defer l.Close()
			check(l)
		})
	}
}

func TestAppendRejects(t *testing.T) {
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.MaxBatchBytes = 2000 }, Options{})
	defer l.Close()
	good := testBatch(2, 10, 1, 1)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	magic1 := append([]byte(nil), good...)
	magic1[offMagic] = 1
	for name, tc := range map[string]struct {
		buf  []byte
		want error
	}{
		"empty":     {nil, ErrCorruptBatch},
		"short":     {good[:20], ErrCorruptBatch},
		"truncated": {good[:len(good)-1], ErrCorruptBatch},
		"crc":       {flipped, ErrCorruptBatch},
		"magic":     {magic1, ErrUnsupportedMagic},
		"too large": {testBatch(1, 3000, 1, 1), ErrBatchTooLarge},
		"trailing":  {append(append([]byte(nil), good...), 1, 2, 3), ErrCorruptBatch},
	} {
		if _, err := l.Append(context.Background(), tc.buf); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	if _, hw, end := l.Offsets(); hw != 0 || end != 0 {
		t.Fatalf("rejected appends moved offsets to %d/%d", hw, end)
	}
}

func TestSegmentRollAndReadAcross(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, func(c *LogConfig) { c.SegmentBytes = 4096; c.IndexIntervalBytes = 512 }, Options{})
	var n int
	for i := range 200 {
		mustAppend(t, l, testBatch(2, 50, i, int64(i)))
		n += 2
	}
	if len(l.segments) < 10 {
		t.Fatalf("expected many segments, got %d", len(l.segments))
	}
	l.Close()
	l = openTestLog(t, dir, func(c *LogConfig) { c.SegmentBytes = 4096; c.IndexIntervalBytes = 512 }, Options{})
	defer l.Close()
	for _, off := range []int64{0, 1, 2, 77, 201, 398, 399} {
		got := readAll(t, l, off)
		if len(got) == 0 || got[0].BaseOffset() > off || got[0].NextOffset() <= off {
			t.Fatalf("read at %d starts with batch [%d,%d)", off, got[0].BaseOffset(), got[0].NextOffset())
		}
		if last := got[len(got)-1]; last.NextOffset() != int64(n) {
			t.Fatalf("read at %d ends at %d, want %d", off, last.NextOffset(), n)
		}
	}
	if _, err := l.Read(int64(n)+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
	res, err := l.Read(int64(n), 100)
	if err != nil || res.Len() != 0 {
		t.Fatalf("read at end: %d bytes, %v", res.Len(), err)
	}
}

func TestReadMaxBytes(t *testing.T) {
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.IndexIntervalBytes = 300 }, Options{})
	defer l.Close()
	var sizes []int
	for i := range 40 {
		b := testBatch(1, 100+i, i, 0)
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	for _, maxBytes := range []int{0, 1, sizes[0], sizes[0] + 1, sizes[0] + sizes[1], 1000, 5000} {
		res, err := l.Read(0, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		want, total := 0, 0
		for i, s := range sizes {
			if total+s > maxBytes && i > 0 {
				break
			}
			total += s
			want = total
		}
		if res.Len() != want {
			t.Errorf("maxBytes %d: got %d bytes, want %d", maxBytes, res.Len(), want)
		}
		res.Release()
	}
}

func TestWaitIsNotified(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil, Options{})
	defer l.Close()
	done := make(chan error, 1)
	go func() { done <- l.Wait(context.Background(), 0) }()
	select {
	case err := <-done:
		t.Fatalf("wait returned before any data: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	mustAppend(t, l, testBatch(1, 10, 0, 0))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.TimestampType = LogAppendTime }, Options{Now: func() time.Time { return now }})
	defer l.Close()
	res := mustAppend(t, l, testBatch(3, 10, 0, 5))
	if res.LogAppendTime != now.UnixMilli() {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	b := readAll(t, l, 0)[0]
	if !b.IsLogAppendTime() || b.MaxTimestamp() != now.UnixMilli() {
		t.Fatalf("stored batch not stamped: attrs %x max ts %d", b.Attributes(), b.MaxTimestamp())
	}
	if _, err := CheckBatch(b, 0); err != nil {
		t.Fatalf("stamped batch fails its CRC: %v", err)
	}
	if err := DecodeRecords(b, func(r Record) bool {
		if r.Timestamp != now.UnixMilli() {
			t.Errorf("record %d timestamp %d", r.Offset, r.Timestamp)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

func TestOffsetForTime(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *LogConfig) { c.SegmentBytes = 2048; c.IndexIntervalBytes = 256 }
	l := openTestLog(t, dir, cfg, Options{})
	// Batch i holds records with timestamps 1000+10i .. 1000+10i+2.
	for i := range 60 {
		mustAppend(t, l, testBatch(3, 30, i, 1000+int64(10*i)))
	}
	l.Close()
	l = openTestLog(t, dir, cfg, Options{})
	defer l.Close()
	for _, tc := range []struct{ ts, off, gotTS int64 }{
		{0, 0, 1000}, {1000, 0, 1000}, {1001, 1, 1001}, {1003, 3, 1010}, {1252, 77, 1252},
		{1592, 179, 1592}, {1593, -1, -1},
	} {
		off, ts, err := l.OffsetForTime(tc.ts)
		if err != nil || off != tc.off || ts != tc.gotTS {
			t.Errorf("OffsetForTime(%d) = %d, %d, %v; want %d, %d", tc.ts, off, ts, err, tc.off, tc.gotTS)
		}
	}
	off, ts, err := l.MaxTimestamp()
	if err != nil || off != 179 || ts != 1592 {
		t.Fatalf("MaxTimestamp = %d, %d, %v", off, ts, err)
	}
}

func TestRetentionAndDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	now := time.UnixMilli(10_000_000)
	clock := func() time.Time { return now }
	cfg := func(c *LogConfig) { c.SegmentBytes = 2048; c.RetentionAge = time.Hour }
	l := openTestLog(t, dir, cfg, Options{Now: clock})
	for i := range 100 {
		mustAppend(t, l, testBatch(1, 100, i, now.UnixMilli()-int64(100-i)*time.Minute.Milliseconds()))
	}
	waitIndexed(t, l)
	n, err := l.ApplyRetention(now)
	if err != nil || n == 0 {
		t.Fatalf("retention dropped %d segments, %v", n, err)
	}
	start, _, _ := l.Offsets()
	if start == 0 || start > 40 {
		t.Fatalf("start after time retention %d", start)
	}
	if _, err := l.Read(0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// DeleteRecords moves the start into the middle of a segment, durably.
	if got, err := l.SetStartOffset(70); err != nil || got != 70 {
		t.Fatalf("SetStartOffset: %d, %v", got, err)
	}
	if _, err := l.SetStartOffset(101); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("SetStartOffset past hw: %v", err)
	}
	l.Close()
	l = openTestLog(t, dir, cfg, Options{Now: clock})
	if start, _, end := l.Offsets(); start != 70 || end != 100 {
		t.Fatalf("after reopen start %d end %d", start, end)
	}
	if got := readAll(t, l, 70); got[0].BaseOffset() != 70 && got[0].NextOffset() <= 70 {
		t.Fatalf("first batch after start is at %d", got[0].BaseOffset())
	}
	// Size retention, then everything expires, including the active segment.
	l.SetConfig(func() LogConfig { c := l.Config(); c.RetentionBytes = 1000; return c }())
	l.ApplyRetention(now)
	if sz := l.Size(); sz > 1000+2048 {
		t.Fatalf("size %d after size retention", sz)
	}
	now = now.Add(3 * time.Hour)
	for range 3 {
		l.ApplyRetention(now)
		waitIndexed(t, l)
	}
	if start, hw, end := l.Offsets(); start != 100 || hw != 100 || end != 100 {
		t.Fatalf("after full expiry %d/%d/%d", start, hw, end)
	}
	res := mustAppend(t, l, testBatch(1, 10, 0, now.UnixMilli()))
	if res.BaseOffset != 100 {
		t.Fatalf("append after expiry got offset %d", res.BaseOffset)
	}
	l.Close()
}

// waitIndexed waits for the syncer to persist every sealed segment.
func waitIndexed(t *testing.T, l *Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		pending := false
		for _, s := range l.segments {
			pending = pending || (s.sealed && !s.indexed)
		}
		l.mu.Unlock()
		if !pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sealed segments were not indexed")
		}
		l.wakeSyncer()
		time.Sleep(time.Millisecond)
	}
}

// TestOffsetForTimeSearchesPastTheStart: when the first segment that has a
// late enough timestamp holds it only below the log start (DeleteRecords
// moved the start into that segment), the answer comes from a later
// segment, not -1.
func TestOffsetForTimeSearchesPastTheStart(t *testing.T) {
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.SegmentBytes = 2048 }, Options{})
	defer l.Close()
	// First segment: a record at ts 5000, then older ones; later segments:
	// ts 3000 onwards, increasing.
	mustAppend(t, l, testBatch(1, 100, 0, 5000))
	for i := range 30 {
		mustAppend(t, l, testBatch(1, 100, i+1, 3000+int64(i)))
	}
	waitIndexed(t, l)
	if len(l.SegmentBases()) < 3 {
		t.Fatalf("want several segments, got %v", l.SegmentBases())
	}
	// Move the start past the ts-5000 record but inside the first segment.
	if _, err := l.SetStartOffset(1); err != nil {
		t.Fatal(err)
	}
	off, ts, err := l.OffsetForTime(3020)
	if err != nil || off != 21 || ts != 3020 {
		t.Fatalf("OffsetForTime(3020) = %d, %d, %v; want 21, 3020", off, ts, err)
	}
}
