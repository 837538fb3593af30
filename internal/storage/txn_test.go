package storage

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// txnBatch is a transactional data batch of n records from producer pid.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Timestamp: int64(i), Value: []byte("v")}
	}
	return AppendBatch(nil, BatchSpec{Attributes: attrTransactional, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Records: recs})
}

type txnView struct {
	LSO     int64
	Open    map[int64]int64
	Aborted []AbortedTxn
}

func viewTxns(l *Log) txnView {
	return txnView{LSO: l.LastStable(), Open: l.OpenTxns(), Aborted: l.AbortedTxns(0, 1<<62)}
}

// writeTxnWorkload writes, over several segments: producer 1 commits
// [0,2) with a marker at 2; producer 2 opens at 3, producer 3 opens at 5
// and aborts with a marker at 7; producer 2 writes at 8 and aborts at 10;
// producer 4 opens at 11 and stays open; a plain batch at 13.
func writeTxnWorkload(t *testing.T, l *Log) {
	t.Helper()
	steps := [][]byte{
		txnBatch(1, 0, 0, 2),                    // 0-1
		ControlBatch(1, 0, ControlCommit, 0, 1), // 2
		txnBatch(2, 0, 0, 2),                    // 3-4
		txnBatch(3, 0, 0, 2),                    // 5-6
		ControlBatch(3, 0, ControlAbort, 0, 1),  // 7
		txnBatch(2, 0, 2, 2),                    // 8-9
		ControlBatch(2, 0, ControlAbort, 0, 1),  // 10
		txnBatch(4, 0, 0, 2),                    // 11-12
		testBatch(1, 10, 1, 1),                  // 13
	}
	for _, b := range steps {
		mustAppend(t, l, b)
	}
}

var wantTxns = txnView{
	LSO:  11,
	Open: map[int64]int64{4: 11},
	Aborted: []AbortedTxn{
		{ProducerID: 3, FirstOffset: 5, LastOffset: 7},
		{ProducerID: 2, FirstOffset: 3, LastOffset: 10},
	},
}

func TestTxnTrackingAcrossSegmentsRestartsAndLostIndexes(t *testing.T) {
	dir := t.TempDir()
	small := func(c *LogConfig) { c.SegmentBytes = 200 }
	l := openTestLog(t, dir, small, Options{})
	writeTxnWorkload(t, l)
	if got := viewTxns(l); !reflect.DeepEqual(got, wantTxns) {
		t.Fatalf("live: %+v, want %+v", got, wantTxns)
	}
	if n := len(l.SegmentBases()); n < 3 {
		t.Fatalf("%d segments; the test wants transactions spanning several", n)
	}
	if got := l.AbortedTxns(8, 11); len(got) != 1 || got[0].ProducerID != 2 {
		t.Fatalf("aborted overlapping [8, 11): %+v", got)
	}
	if got := l.AbortedTxns(0, 4); len(got) != 1 || got[0].ProducerID != 2 {
		t.Fatalf("aborted overlapping [0, 4): %+v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// After a clean close every segment has its txn index.
	l = openTestLog(t, dir, small, Options{})
	if got := viewTxns(l); !reflect.DeepEqual(got, wantTxns) {
		t.Fatalf("after a clean close: %+v, want %+v", got, wantTxns)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Without any txn index the state is rebuilt from the batches.
	matches, _ := filepath.Glob(filepath.Join(dir, "*.txnindex"))
	if len(matches) == 0 {
		t.Fatal("no txn index written")
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	l = openTestLog(t, dir, small, Options{})
	if got := viewTxns(l); !reflect.DeepEqual(got, wantTxns) {
		t.Fatalf("after losing the txn indexes: %+v, want %+v", got, wantTxns)
	}
	// The open transaction ends; the last stable offset reaches the end.
	mustAppend(t, l, ControlBatch(4, 0, ControlCommit, 0, 1))
	_, hw, _ := l.Offsets()
	if lso := l.LastStable(); lso != hw {
		t.Fatalf("last stable %d after the last commit, want the high watermark %d", lso, hw)
	}
	l.Close()
}

func TestReadStableStopsAtTheLastStableOffset(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil, Options{})
	defer l.Close()
	mustAppend(t, l, testBatch(2, 10, 1, 1)) // 0-1
	mustAppend(t, l, txnBatch(9, 0, 0, 3))   // 2-4, open
	mustAppend(t, l, testBatch(2, 10, 2, 1)) // 5-6
	res, err := l.ReadStable(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	buf, _ := res.AppendTo(nil)
	res.Release()
	var last int64 = -1
	if err := SplitBatches(buf, func(b Batch) bool { last = b.LastOffset(); return true }); err != nil {
		t.Fatal(err)
	}
	if last != 1 || res.LastStable != 2 || res.HighWatermark != 7 {
		t.Fatalf("read committed up to %d, last stable %d, hw %d; want 1, 2, 7", last, res.LastStable, res.HighWatermark)
	}
	res, err = l.ReadStable(3, 1<<20)
	if err != nil || res.Len() != 0 {
		t.Fatalf("read committed inside the open transaction: %d bytes, %v", res.Len(), err)
	}
	res.Release()
	if got := readAll(t, l, 0); len(got) != 3 {
		t.Fatalf("read uncommitted: %d batches, want 3", len(got))
	}
	mustAppend(t, l, ControlBatch(9, 0, ControlAbort, 0, 1)) // 7
	if lso := l.LastStable(); lso != 8 {
		t.Fatalf("last stable %d after the abort, want 8", lso)
	}
}

func TestParseControl(t *testing.T) {
	for _, typ := range []ControlType{ControlAbort, ControlCommit} {
		b, err := CheckBatch(ControlBatch(5, 2, typ, 7, 100), 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseControl(b)
		if err != nil || got != typ || !b.IsControl() || !b.IsTransactional() || b.ProducerID() != 5 || b.ProducerEpoch() != 2 {
			t.Fatalf("type %d: got %d, %v", typ, got, err)
		}
	}
	if _, err := ParseControl(Batch(testBatch(1, 1, 1, 1))); err == nil {
		t.Fatal("a data batch parsed as a control batch")
	}
}

func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeTxnIndex(txnIndex{}))
	f.Add(encodeTxnIndex(txnIndex{openAtStart: map[int64]int64{1: 3}, openAtEnd: map[int64]int64{2: 12},
		aborted: []AbortedTxn{{1, 3, 11}, {4, 10, 14}}}))
	f.Fuzz(func(t *testing.T, buf []byte) {
		x, err := decodeTxnIndex(buf, 10, 20)
		if err != nil {
			return
		}
		again, err := decodeTxnIndex(encodeTxnIndex(x), 10, 20)
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		if len(again.aborted) != len(x.aborted) || len(again.openAtEnd) != len(x.openAtEnd) || len(again.openAtStart) != len(x.openAtStart) {
			t.Fatalf("round trip changed the index: %+v, %+v", x, again)
		}
		for _, a := range x.aborted {
			if a.FirstOffset > a.LastOffset || a.LastOffset < 10 || a.LastOffset >= 20 {
				t.Fatalf("accepted an aborted transaction out of range: %+v", a)
			}
		}
	})
}

func FuzzParseControl(f *testing.F) {
	f.Add(ControlBatch(1, 0, ControlAbort, 0, 0))
	f.Add(ControlBatch(1<<40, 7, ControlCommit, 3, 1<<40))
	f.Fuzz(func(t *testing.T, buf []byte) {
		b, err := CheckBatch(buf, 0)
		if err != nil {
			return
		}
		_, _ = ParseControl(b)
		open := map[int64]int64{}
		s := &segment{}
		trackTxn(open, s, b)
		for _, a := range s.aborted {
			if a.FirstOffset > a.LastOffset {
				t.Fatalf("aborted range backwards: %+v", a)
			}
		}
	})
}

// TestTxnStateFollowsACutBack: a failed fsync cuts the log back, and the
// transactions of the cut batches are forgotten with them.
func TestTxnStateFollowsACutBack(t *testing.T) {
	fs := newFaultFS()
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.SegmentBytes = 300; c.Fsync = FsyncAlways }, Options{FS: fs})
	defer l.Close()
	mustAppend(t, l, txnBatch(1, 0, 0, 2))                   // 0-1, open
	mustAppend(t, l, testBatch(3, 20, 1, 1))                 // 2-4
	mustAppend(t, l, ControlBatch(1, 0, ControlAbort, 0, 1)) // 5
	want := viewTxns(l)
	fs.failSyncs(syscall.EIO, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, b := range [][]byte{txnBatch(2, 0, 0, 3), testBatch(4, 50, 2, 1), ControlBatch(2, 0, ControlAbort, 0, 1), txnBatch(3, 0, 0, 1)} {
		if _, err := l.Append(ctx, b); err == nil {
			t.Fatal("an append acknowledged while fsync fails")
		}
	}
	if got := viewTxns(l); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the cut back: %+v, want %+v", got, want)
	}
	fs.clear()
	mustAppend(t, l, txnBatch(5, 0, 0, 1))
	if lso, open := l.LastStable(), l.OpenTxns(); lso != 6 || len(open) != 1 || open[5] != 6 {
		t.Fatalf("after the fault: last stable %d, open %v; want 6 and producer 5 at 6", lso, open)
	}
}
