package broker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharfmq/wharf/internal/storage"
	"github.com/wharfmq/wharf/internal/storage/faultfs"
)

// txnData is a transactional batch of one record.
func txnData(pid int64, epoch int16, seq int32, value string) []byte {
	return storage.AppendBatch(nil, storage.BatchSpec{Attributes: 0x10, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
		Records: []storage.Record{{Timestamp: 1, Value: []byte(value)}}})
}

// openTxn begins a transaction of id on topic-0 with one record and one
// offset for group g, and returns the producer id and epoch.
func openTxn(t *testing.T, b *Broker, id, topic string, offset int64) (int64, int16) {
	t.Helper()
	ctx := context.Background()
	pid, epoch, err := b.InitTxnProducer(ctx, id, time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{Topic: topic, Partition: 0}
	if errs, err := b.AddPartitionsToTxn(ctx, id, pid, epoch, []TopicPartition{tp}); err != nil || errs[tp] != nil {
		t.Fatalf("add partitions: %v %v", err, errs)
	}
	part, err := b.Partition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Append(ctx, txnData(pid, epoch, 0, "x")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOffsetsToTxn(ctx, id, pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	errs, err := b.TxnOffsetCommit(ctx, TxnOffsetCommitRequest{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Group: "g",
		Generation: -1, Offsets: []OffsetCommit{{Topic: topic, Partition: 0, Offset: offset, LeaderEpoch: -1}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("txn offset commit: %v %v", err, errs)
	}
	return pid, epoch
}

// prepare records the transaction as prepared, as a crash right after
// the Prepare record leaves it.
func prepare(t *testing.T, b *Broker, id string, commit bool) {
	t.Helper()
	e, _ := b.txns.entry(id, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	rec := e.rec
	rec.State = TxnPrepareAbort
	if commit {
		rec.State = TxnPrepareCommit
	}
	if err := b.txns.persist(context.Background(), e, rec); err != nil {
		t.Fatal(err)
	}
}

func txnState(b *Broker, id string) TxnState {
	for _, d := range b.Transactions() {
		if d.TransactionalID == id {
			return d.State
		}
	}
	return -1
}

// TestPreparedTxnsCompleteOnOpen: a transaction found prepared when the
// broker opens is completed: markers, and for a commit its offsets.
func TestPreparedTxnsCompleteOnOpen(t *testing.T) {
	for _, commit := range []bool{true, false} {
		dir := t.TempDir()
		b := openBroker(t, dir, nil)
		if _, err := b.CreateTopic(context.Background(), "t", 1, nil); err != nil {
			t.Fatal(err)
		}
		pid, _ := openTxn(t, b, "x", "t", 7)
		prepare(t, b, "x", commit)
		part, _ := b.Partition("t", 0)
		if lso := part.LastStable(); lso != 0 {
			t.Fatalf("last stable %d while prepared, want 0", lso)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}

		b = openBroker(t, dir, nil)
		part, _ = b.Partition("t", 0)
		_, hw, _ := part.Offsets()
		if lso := part.LastStable(); lso != hw || hw != 2 {
			t.Fatalf("commit %v: last stable %d, high watermark %d after open; want both 2 (data and marker)", commit, lso, hw)
		}
		want, wantOffset := TxnCompleteAbort, int64(-1)
		if commit {
			want, wantOffset = TxnCompleteCommit, 7
		}
		if s := txnState(b, "x"); s != want {
			t.Fatalf("state %v after open, want %v", s, want)
		}
		got := int64(-1)
		if o, ok := b.CommittedOffsets("g")[TopicPartition{Topic: "t", Partition: 0}]; ok {
			got = o.Offset
		}
		if got != wantOffset {
			t.Fatalf("commit %v: committed offset %d, want %d", commit, got, wantOffset)
		}
		aborted := part.AbortedTxns(0, hw)
		if commit != (len(aborted) == 0) || (!commit && (aborted[0].ProducerID != pid || aborted[0].FirstOffset != 0)) {
			t.Fatalf("commit %v: aborted list %+v", commit, aborted)
		}
		b.Close()
	}
}

// TestTxnTimeoutAbortsAndFences: the sweeper aborts a transaction open
// past its timeout, across a restart too, and fences its producer.
func TestTxnTimeoutAbortsAndFences(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	dir := t.TempDir()
	b := openBroker(t, dir, func(o *Options) { o.Now = clock })
	if _, err := b.CreateTopic(context.Background(), "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	pid, epoch := openTxn(t, b, "x", "t", 3)
	b.SweepTxns()
	if s := txnState(b, "x"); s != TxnOngoing {
		t.Fatalf("state %v before the timeout", s)
	}
	b.Close()
	b = openBroker(t, dir, func(o *Options) { o.Now = clock })
	defer b.Close()
	if s := txnState(b, "x"); s != TxnOngoing {
		t.Fatalf("state %v after a restart, want the transaction still open", s)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	b.SweepTxns()
	if s := txnState(b, "x"); s != TxnCompleteAbort {
		t.Fatalf("state %v after the timeout, want CompleteAbort", s)
	}
	part, _ := b.Partition("t", 0)
	if _, hw, _ := part.Offsets(); part.LastStable() != hw {
		t.Fatalf("last stable %d, high watermark %d after the abort", part.LastStable(), hw)
	}
	if err := b.EndTxn(context.Background(), "x", pid, epoch, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("commit after the timeout: %v, want ErrProducerFenced", err)
	}
	if _, err := part.Append(context.Background(), txnData(pid, epoch, 1, "late")); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("a batch of the fenced epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, ok := b.CommittedOffsets("g")[TopicPartition{Topic: "t", Partition: 0}]; ok {
		t.Fatal("an aborted transaction's offset was committed")
	}
	// The timed-out producer may start over with the epoch it had (KIP-360);
	// an older epoch is fenced.
	if _, _, err := b.InitTxnProducer(context.Background(), "x", time.Minute, pid, epoch-1); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("init with an epoch older than the producer's: %v, want ErrProducerFenced", err)
	}
	gotPID, gotEpoch, err := b.InitTxnProducer(context.Background(), "x", time.Minute, pid, epoch)
	if err != nil || gotPID != pid || gotEpoch != epoch+2 {
		t.Fatalf("init after the timeout: %d/%d, %v; want %d/%d", gotPID, gotEpoch, err, pid, epoch+2)
	}
}

func FuzzDecodeTxnRecord(f *testing.F) {
	f.Add(encodeTxnRecord(txnRecord{ID: "x", ProducerID: 4, Epoch: 2, PrevEpoch: 1, State: TxnOngoing, TimeoutMs: 60000, StartMs: 5,
		Partitions: []txnPartition{{"t", 0}}, Groups: []string{"g"}, Offsets: []txnOffset{{Group: "g", Topic: "t", Offset: 3}}}))
	f.Add(encodeTxnRecord(txnRecord{ID: "y", ProducerID: 0, Epoch: 0, PrevEpoch: -1, State: TxnCompleteCommit, TimeoutMs: 1}))
	f.Add([]byte{txnRecordFormat, '{', '}'})
	f.Fuzz(func(t *testing.T, buf []byte) {
		r, err := decodeTxnRecord(buf)
		if err != nil {
			return
		}
		again, err := decodeTxnRecord(encodeTxnRecord(r))
		if err != nil {
			t.Fatalf("a record that decoded does not decode once re-encoded: %v", err)
		}
		if again.ID != r.ID || again.State != r.State || len(again.Partitions) != len(r.Partitions) || len(again.Offsets) != len(r.Offsets) {
			t.Fatalf("round trip changed the record: %+v, %+v", r, again)
		}
	})
}

// TestTxnLogCompaction: the transaction log is compacted as it grows, and
// the state replayed from the compacted log is the state before.
func TestTxnLogCompaction(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	if _, err := b.CreateTopic(context.Background(), "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	b.txns.compactBytes = 4 << 10
	ctx := context.Background()
	for i := range 60 {
		id := "c" + string(rune('a'+i%5))
		pid, epoch, err := b.InitTxnProducer(ctx, id, time.Minute, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		tp := TopicPartition{Topic: "t", Partition: 0}
		if _, err := b.AddPartitionsToTxn(ctx, id, pid, epoch, []TopicPartition{tp}); err != nil {
			t.Fatal(err)
		}
		if i < 55 {
			if err := b.EndTxn(ctx, id, pid, epoch, i%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := b.Transactions()
	eventuallyTrue(t, "the transaction log to be compacted", func() bool {
		start, _, _ := b.txns.log.Offsets()
		return start > 0
	})
	b.Close()
	b = openBroker(t, dir, nil)
	defer b.Close()
	after := b.Transactions()
	if len(after) != len(before) {
		t.Fatalf("%d transactional ids after the restart, %d before", len(after), len(before))
	}
	for i := range before {
		a, w := after[i], before[i]
		if a.TransactionalID != w.TransactionalID || a.ProducerID != w.ProducerID || a.ProducerEpoch != w.ProducerEpoch ||
			a.State != w.State || len(a.Partitions) != len(w.Partitions) {
			t.Fatalf("after the restart %+v, before %+v", a, w)
		}
	}
}

// TestIdleTxnIDExpires: a transactional id idle for the expiration period
// is forgotten, across a restart too; its next producer starts afresh.
func TestIdleTxnIDExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	dir := t.TempDir()
	b := openBroker(t, dir, func(o *Options) { o.Now = clock })
	ctx := context.Background()
	pid, epoch, err := b.InitTxnProducer(ctx, "idle", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.InitTxnProducer(ctx, "busy", time.Minute, -1, -1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(txnIDExpiration - time.Hour)
	mu.Unlock()
	if _, _, err := b.InitTxnProducer(ctx, "busy", time.Minute, -1, -1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	b.SweepTxns()
	if got := b.Transactions(); len(got) != 1 || got[0].TransactionalID != "busy" {
		t.Fatalf("transactional ids after the expiration: %+v, want only busy", got)
	}
	if err := b.EndTxn(ctx, "idle", pid, epoch, true); !errors.Is(err, ErrInvalidProducerIDMapping) {
		t.Fatalf("a request of the forgotten id: %v, want ErrInvalidProducerIDMapping", err)
	}
	b.Close()
	b = openBroker(t, dir, func(o *Options) { o.Now = clock })
	defer b.Close()
	if got := b.Transactions(); len(got) != 1 || got[0].TransactionalID != "busy" {
		t.Fatalf("transactional ids after a restart: %+v, want only busy", got)
	}
	newPID, newEpoch, err := b.InitTxnProducer(ctx, "idle", time.Minute, -1, -1)
	if err != nil || newPID == pid || newEpoch != 0 {
		t.Fatalf("the forgotten id starts again with %d/%d (%v); want a new producer id at epoch 0", newPID, newEpoch, err)
	}
}

// TestTxnMarkerFsyncFailure: when a marker's fsync fails, EndTxn fails,
// the transaction stays prepared with its data still unstable, and the
// sweeper (or a retry) completes it once the disk is back.
func TestTxnMarkerFsyncFailure(t *testing.T) {
	fs := faultfs.New(nil)
	fs.SetMatch(func(path string) bool {
		return strings.Contains(path, string(filepath.Separator)+"topics"+string(filepath.Separator)) && faultfs.IsSegment(path)
	})
	b, err := Open(Options{DataDir: t.TempDir(), LogDefaults: storage.DefaultLogConfig(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	pid, epoch := openTxn(t, b, "x", "t", 4)
	part, _ := b.Partition("t", 0)
	fs.FailSyncs(syscall.EIO, -1)
	if err := b.EndTxn(ctx, "x", pid, epoch, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("commit while fsync fails: %v, want ErrStorage", err)
	}
	if s := txnState(b, "x"); s != TxnPrepareCommit {
		t.Fatalf("state %v after the failed commit, want PrepareCommit", s)
	}
	if lso := part.LastStable(); lso != 0 {
		t.Fatalf("last stable %d after the marker was cut back, want 0", lso)
	}
	if _, ok := b.CommittedOffsets("g")[TopicPartition{Topic: "t", Partition: 0}]; ok {
		t.Fatal("the offset was committed without its markers")
	}
	b.SweepTxns()
	if s := txnState(b, "x"); s != TxnPrepareCommit {
		t.Fatalf("state %v after a sweep during the fault, want PrepareCommit", s)
	}
	fs.Clear()
	b.SweepTxns()
	if s := txnState(b, "x"); s != TxnCompleteCommit {
		t.Fatalf("state %v after the fault cleared, want CompleteCommit", s)
	}
	if err := b.EndTxn(ctx, "x", pid, epoch, true); err != nil {
		t.Fatalf("the client's retry of the commit: %v", err)
	}
	_, hw, _ := part.Offsets()
	if lso := part.LastStable(); lso != hw {
		t.Fatalf("last stable %d, high watermark %d after the commit", lso, hw)
	}
	if o := b.CommittedOffsets("g")[TopicPartition{Topic: "t", Partition: 0}]; o.Offset != 4 {
		t.Fatalf("committed offset %d, want 4", o.Offset)
	}
}
