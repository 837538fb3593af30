package storage

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// testBatch builds an uncompressed batch of n records whose values are
// size bytes derived from seed, with timestamps starting at ts.
func testBatch(n, size int, seed int, ts int64) []byte {
	recs := make([]Record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{byte(seed + i)}, size)
		recs[i] = Record{Timestamp: ts + int64(i), Key: []byte(fmt.Sprintf("k%d-%d", seed, i)), Value: v,
			Headers: []Header{{Key: "h", Value: []byte("v")}}}
	}
	return AppendBatch(nil, BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

func openTestLog(t testing.TB, dir string, mutate func(*LogConfig), opts Options) *Log {
	t.Helper()
	cfg := DefaultLogConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := l.Append(ctx, b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// readAll returns every batch from offset to the high watermark.
func readAll(t testing.TB, l *Log, offset int64) []Batch {
	t.Helper()
	var out []Batch
	for {
		res, err := l.Read(offset, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", offset, err)
		}
		if res.Len() == 0 {
			res.Release()
			return out
		}
		buf, err := res.AppendTo(nil)
		res.Release()
		if err != nil {
			t.Fatalf("read bytes: %v", err)
		}
		if err := SplitBatches(buf, func(b Batch) bool {
			out = append(out, b)
			offset = b.NextOffset()
			return true
		}); err != nil {
			t.Fatalf("split: %v", err)
		}
	}
}
