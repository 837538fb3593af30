package kafka

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/storage"
)

func TestIdempotentProducerNoDuplicates(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	const topic, partitions, n = "exactly-once", 4, 4000
	if _, err := ts.admin().CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// Idempotent by default; small batches and many in flight so that
	// sequences advance many times on every partition.
	p := ts.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(2048),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%06d", i)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first %v", len(errs), errs[0])
	}

	seen := map[string]int{}
	var pid int64 = -1
	total := 0
	for part := range int32(partitions) {
		recs := consumeAll(t, ts, topic, part, int(endOffset(t, ts, topic, part)))
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d at offset %d", part, i, r.Offset)
			}
			if r.ProducerID < 0 || (pid >= 0 && r.ProducerID != pid) {
				t.Fatalf("record with producer id %d (want one id for all, got %d before)", r.ProducerID, pid)
			}
			pid = r.ProducerID
			seen[string(r.Value)]++
		}
		total += len(recs)
	}
	if total != n || len(seen) != n {
		t.Fatalf("%d records stored, %d distinct, want %d", total, len(seen), n)
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %s stored %d times", v, c)
		}
	}
}

func endOffset(t *testing.T, ts *testServer, topic string, partition int32) int64 {
	t.Helper()
	offs, err := ts.admin().ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, partition)
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.Offset
}

// rawProducer sends hand-built produce requests for one idempotent
// producer.
type rawProducer struct {
	t     *testing.T
	ts    *testServer
	cl    *kgo.Client
	topic string
	id    int64
	epoch int16
}

// batch encodes one record batch of the producer starting at sequence seq.
func (rp *rawProducer) batch(seq int32, values ...string) []byte {
	recs := make([]storage.Record, len(values))
	for i, v := range values {
		recs[i] = storage.Record{Timestamp: time.Now().UnixMilli(), Value: []byte(v)}
	}
	return storage.AppendBatch(nil, storage.BatchSpec{ProducerID: rp.id, ProducerEpoch: rp.epoch, BaseSequence: seq, Records: recs})
}

// send produces a batch to partition 0 with acks=all and returns the
// partition's answer.
func (rp *rawProducer) send(batch []byte) kmsg.ProduceResponseTopicPartition {
	rp.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = rp.topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition, p.Records = 0, batch
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	resp, err := rp.cl.Broker(0).Request(testCtx(rp.t), req)
	if err != nil {
		rp.t.Fatal(err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// initProducerID asks for a producer id at version v, passing the previous
// id and epoch from v3.
func initProducerID(t *testing.T, ts *testServer, v int16, txnID *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, id, epoch
	req.TransactionTimeoutMillis = 60_000
	resp, err := pinned(testCtx(t), ts, req, v)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.InitProducerIDResponse)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if want == nil && got != 0 || want != nil && got != want.Code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestIdempotentProduceChecks(t *testing.T) {
	dir := t.TempDir()
	ts := startServerIn(t, dir, nil)
	ctx := testCtx(t)
	const topic = "checked"
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	init := initProducerID(t, ts, 5, nil, -1, -1)
	wantCode(t, "init", init.ErrorCode, nil)
	rp := &rawProducer{t: t, ts: ts, cl: ts.client(), topic: topic, id: init.ProducerID, epoch: init.ProducerEpoch}

	first := rp.batch(0, "a", "b", "c")
	r := rp.send(first)
	wantCode(t, "first batch", r.ErrorCode, nil)
	if r.BaseOffset != 0 {
		t.Fatalf("first batch at %d", r.BaseOffset)
	}
	second := rp.batch(3, "d", "e")
	r = rp.send(second)
	wantCode(t, "second batch", r.ErrorCode, nil)
	if r.BaseOffset != 3 {
		t.Fatalf("second batch at %d", r.BaseOffset)
	}

	// A retry of either batch gets its original offsets and is not stored
	// again.
	for i, b := range [][]byte{first, second, second} {
		r := rp.send(b)
		wantCode(t, "retry", r.ErrorCode, nil)
		if want := []int64{0, 3, 3}[i]; r.BaseOffset != want {
			t.Fatalf("retry %d answered at %d, want %d", i, r.BaseOffset, want)
		}
	}
	if end := endOffset(t, ts, topic, 0); end != 5 {
		t.Fatalf("log end %d after retries, want 5", end)
	}

	// A gap in the sequence.
	r = rp.send(rp.batch(10, "gap"))
	wantCode(t, "sequence gap", r.ErrorCode, kerr.OutOfOrderSequenceNumber)
	if r.ErrorMessage == nil {
		t.Error("no error message for the sequence gap")
	}

	// KIP-360: the same id with the next epoch, which restarts sequences
	// and fences the old epoch.
	bump := initProducerID(t, ts, 3, nil, rp.id, rp.epoch)
	wantCode(t, "bump", bump.ErrorCode, nil)
	if bump.ProducerID != rp.id || bump.ProducerEpoch != rp.epoch+1 {
		t.Fatalf("bump of %d/%d gave %d/%d", rp.id, rp.epoch, bump.ProducerID, bump.ProducerEpoch)
	}
	old := *rp
	rp.epoch = bump.ProducerEpoch
	r = rp.send(rp.batch(1, "not zero"))
	wantCode(t, "new epoch starting past 0", r.ErrorCode, kerr.OutOfOrderSequenceNumber)
	last := rp.batch(0, "f")
	r = rp.send(last)
	wantCode(t, "new epoch", r.ErrorCode, nil)
	if r.BaseOffset != 5 {
		t.Fatalf("new epoch batch at %d", r.BaseOffset)
	}
	r = old.send(old.batch(5, "stale"))
	wantCode(t, "old epoch", r.ErrorCode, kerr.InvalidProducerEpoch)

	// After a restart the producer state is rebuilt from the log: the
	// last batch is still a duplicate, the old epoch still fenced.
	ts.stop()
	ts = startServerIn(t, dir, nil)
	rp.ts, rp.cl, old.cl = ts, ts.client(), nil
	r = rp.send(last)
	wantCode(t, "retry after restart", r.ErrorCode, nil)
	if r.BaseOffset != 5 {
		t.Fatalf("retry after restart answered at %d, want 5", r.BaseOffset)
	}
	if end := endOffset(t, ts, topic, 0); end != 6 {
		t.Fatalf("log end %d after the retry, want 6", end)
	}
	old.cl = rp.cl
	r = old.send(old.batch(5, "stale"))
	wantCode(t, "old epoch after restart", r.ErrorCode, kerr.InvalidProducerEpoch)
	r = rp.send(rp.batch(1, "g"))
	wantCode(t, "next batch after restart", r.ErrorCode, nil)
	if r.BaseOffset != 6 {
		t.Fatalf("next batch at %d", r.BaseOffset)
	}
}

func TestIdempotentSequenceWraps(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "wrap"); err != nil {
		t.Fatal(err)
	}
	init := initProducerID(t, ts, 4, nil, -1, -1)
	rp := &rawProducer{t: t, ts: ts, cl: ts.client(), topic: "wrap", id: init.ProducerID, epoch: init.ProducerEpoch}
	wantCode(t, "first", rp.send(rp.batch(math.MaxInt32-3, "a", "b")).ErrorCode, nil)
	// MaxInt32-1, MaxInt32, then 0.
	wrapping := rp.batch(math.MaxInt32-1, "c", "d", "e")
	wantCode(t, "wrapping", rp.send(wrapping).ErrorCode, nil)
	if r := rp.send(wrapping); r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("retry of the wrapping batch: %v at %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	wantCode(t, "after the wrap", rp.send(rp.batch(1, "f")).ErrorCode, nil)
	if end := endOffset(t, ts, "wrap", 0); end != 6 {
		t.Fatalf("log end %d, want 6", end)
	}
}

func TestRefusedBatches(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "refused"); err != nil {
		t.Fatal(err)
	}
	rp := &rawProducer{t: t, ts: ts, cl: ts.client(), topic: "refused", id: 1, epoch: 0}
	// A transactional batch outside a transaction that holds the
	// partition, and a control batch, which only the broker writes.
	for name, c := range map[string]struct {
		attrs int16
		want  *kerr.Error
	}{"transactional": {0x10, kerr.InvalidTxnState}, "control": {0x20, kerr.InvalidRecord}} {
		b := storage.AppendBatch(nil, storage.BatchSpec{Attributes: c.attrs, ProducerID: rp.id, ProducerEpoch: 0, BaseSequence: 0,
			Records: []storage.Record{{Value: []byte("x")}}})
		r := rp.send(b)
		wantCode(t, name, r.ErrorCode, c.want)
	}
	if end := endOffset(t, ts, "refused", 0); end != 0 {
		t.Fatalf("refused batches were stored: end %d", end)
	}
}

func TestInitProducerID(t *testing.T) {
	dir := t.TempDir()
	ts := startServerIn(t, dir, nil)

	// Every version hands out distinct ids.
	ids := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		r := initProducerID(t, ts, v, nil, -1, -1)
		wantCode(t, fmt.Sprintf("v%d", v), r.ErrorCode, nil)
		if r.ProducerID < 0 || r.ProducerEpoch != 0 || ids[r.ProducerID] {
			t.Fatalf("v%d: id %d epoch %d (seen before: %v)", v, r.ProducerID, r.ProducerEpoch, ids[r.ProducerID])
		}
		ids[r.ProducerID] = true
	}
	id := initProducerID(t, ts, 5, nil, -1, -1).ProducerID

	// Epoch bumps, their retries, stale and exhausted epochs.
	for _, c := range []struct {
		name      string
		epoch     int16
		wantSame  bool
		wantEpoch int16
	}{
		{"bump", 0, true, 1},
		{"retry of the bump", 0, true, 1},
		{"next bump", 1, true, 2},
		{"stale epoch", 0, false, 0},
	} {
		r := initProducerID(t, ts, 3, nil, id, c.epoch)
		wantCode(t, c.name, r.ErrorCode, nil)
		if (r.ProducerID == id) != c.wantSame || r.ProducerEpoch != c.wantEpoch {
			t.Fatalf("%s: %d/%d from %d/%d", c.name, r.ProducerID, r.ProducerEpoch, id, c.epoch)
		}
	}
	other := initProducerID(t, ts, 5, nil, -1, -1).ProducerID
	if r := initProducerID(t, ts, 5, nil, other, math.MaxInt16-1); r.ProducerID == other || r.ProducerEpoch != 0 {
		t.Fatalf("exhausted epoch: %d/%d", r.ProducerID, r.ProducerEpoch)
	}
	if r := initProducerID(t, ts, 5, nil, 1<<40, 3); r.ProducerID == 1<<40 || r.ProducerEpoch != 0 {
		t.Fatalf("an id never handed out: %d/%d", r.ProducerID, r.ProducerEpoch)
	}
	for _, c := range []struct {
		id    int64
		epoch int16
	}{{id, -1}, {-1, 4}} {
		r := initProducerID(t, ts, 3, nil, c.id, c.epoch)
		wantCode(t, fmt.Sprintf("id %d epoch %d", c.id, c.epoch), r.ErrorCode, kerr.InvalidRequest)
		if r.ProducerID != -1 || r.ProducerEpoch != -1 {
			t.Fatalf("error answer carries %d/%d", r.ProducerID, r.ProducerEpoch)
		}
	}

	// A transactional id keeps its producer id; each init bumps the epoch.
	txnID := int64(-1)
	for i, v := range []int16{0, 5} {
		r := initProducerID(t, ts, v, strp("my-txn"), -1, -1)
		wantCode(t, "transactional id", r.ErrorCode, nil)
		if (i == 0 && ids[r.ProducerID]) || (i > 0 && r.ProducerID != txnID) || r.ProducerEpoch != int16(i) {
			t.Fatalf("transactional init %d: %d/%d", i, r.ProducerID, r.ProducerEpoch)
		}
		txnID = r.ProducerID
	}
	wantCode(t, "empty transactional id", initProducerID(t, ts, 5, strp(""), -1, -1).ErrorCode, kerr.InvalidRequest)

	// Ids stay unique across a restart.
	maxID := int64(-1)
	for id := range ids {
		maxID = max(maxID, id)
	}
	ts.stop()
	ts = startServerIn(t, dir, nil)
	r := initProducerID(t, ts, 5, nil, -1, -1)
	wantCode(t, "after restart", r.ErrorCode, nil)
	if r.ProducerID <= maxID {
		t.Fatalf("id %d after a restart; ids up to %d were handed out before", r.ProducerID, maxID)
	}
	// A producer from before the restart may still bump its epoch.
	if r := initProducerID(t, ts, 5, nil, id, 2); r.ProducerID != id || r.ProducerEpoch != 3 {
		t.Fatalf("bump after restart: %d/%d", r.ProducerID, r.ProducerEpoch)
	}
}

// TestCorruptIdempotentBatch: a new idempotent batch whose CRC is wrong is
// refused with CORRUPT_MESSAGE and leaves no producer state behind, so the
// same sequence sent intact afterwards is written, not taken for a
// duplicate; a corrupt retry of a batch already stored is answered with the
// stored original's offsets.
func TestCorruptIdempotentBatch(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	const topic = "crc"
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	init := initProducerID(t, ts, 5, nil, -1, -1)
	rp := &rawProducer{t: t, ts: ts, cl: ts.client(), topic: topic, id: init.ProducerID, epoch: init.ProducerEpoch}

	good := rp.batch(0, "a", "b")
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff
	wantCode(t, "corrupt new batch", rp.send(bad).ErrorCode, kerr.CorruptMessage)
	if end := endOffset(t, ts, topic, 0); end != 0 {
		t.Fatalf("a corrupt batch moved the end offset to %d", end)
	}
	r := rp.send(good)
	wantCode(t, "intact batch after the corrupt one", r.ErrorCode, nil)
	if r.BaseOffset != 0 || endOffset(t, ts, topic, 0) != 2 {
		t.Fatalf("intact batch at %d, end %d", r.BaseOffset, endOffset(t, ts, topic, 0))
	}
	r = rp.send(bad)
	wantCode(t, "corrupt retry of a stored batch", r.ErrorCode, nil)
	if r.BaseOffset != 0 || endOffset(t, ts, topic, 0) != 2 {
		t.Fatalf("corrupt retry answered at %d, end %d", r.BaseOffset, endOffset(t, ts, topic, 0))
	}
}
