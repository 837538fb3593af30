package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnProducer is a transactional franz-go producer writing to explicit
// partitions.
func txnProducer(ts *testServer, id string, extra ...kgo.Opt) *kgo.Client {
	return ts.client(append([]kgo.Opt{kgo.TransactionalID(id), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0)}, extra...)...)
}

// txnProduce produces values in one transaction and ends it as told.
func txnProduce(t *testing.T, cl *kgo.Client, topic string, partition int32, commit kgo.TransactionEndTry, values ...string) {
	t.Helper()
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("transactional produce: %v", err)
		}
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("ending the transaction: %v", err)
	}
}

// readUntil reads a partition from its start, at the isolation level,
// until a record with value last arrives, and returns every value read
// before it. A plain record written after the records under test serves
// as last: a read-committed reader reaches it once everything before it
// is decided.
func readUntil(t *testing.T, ts *testServer, topic string, partition int32, committed bool, last string) []string {
	t.Helper()
	ctx := testCtx(t)
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s-%d: %v", topic, partition, err)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == last {
				return got
			}
			got = append(got, string(r.Value))
		}
	}
}

// listEnd is the latest offset of a partition at an isolation level.
func listEnd(t *testing.T, ts *testServer, topic string, partition int32, committed bool) int64 {
	t.Helper()
	return listOffset(t, ts, topic, partition, committed, -1)
}

// listOffset is ListOffsets for one timestamp at an isolation level.
func listOffset(t *testing.T, ts *testServer, topic string, partition int32, committed bool, timestamp int64) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), ts.client())
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

func createTopic(t *testing.T, ts *testServer, topic string, partitions int32) {
	t.Helper()
	if _, err := ts.admin().CreateTopic(testCtx(t), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// TestTxnCommitAbortVisibility: committed transactions are visible to
// both isolation levels, aborted ones only to read_uncommitted, and an
// open one holds read_committed readers (and the latest offset they are
// told) at its first offset.
func TestTxnCommitAbortVisibility(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "vis", 1)
	p := txnProducer(ts, "vis-txn")
	txnProduce(t, p, "vis", 0, kgo.TryCommit, "c1", "c2")
	txnProduce(t, p, "vis", 0, kgo.TryAbort, "a1", "a2")
	txnProduce(t, p, "vis", 0, kgo.TryCommit, "c3")

	// An open transaction: read_committed stops before it.
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "vis", Value: []byte("o1"), Timestamp: future}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lso, hw := listEnd(t, ts, "vis", 0, true), listEnd(t, ts, "vis", 0, false)
	// c1 c2 commit a1 a2 abort c3 commit = 0..7; o1 at 8.
	if lso != 8 || hw != 9 {
		t.Fatalf("latest offsets: read_committed %d, read_uncommitted %d; want 8 and 9", lso, hw)
	}
	// A timestamp only the open transaction's record reaches.
	at := future.Add(-time.Minute).UnixMilli()
	if got := listOffset(t, ts, "vis", 0, false, at); got != 8 {
		t.Fatalf("read_uncommitted offset for the open transaction's timestamp: %d, want 8", got)
	}
	if got := listOffset(t, ts, "vis", 0, true, at); got != -1 {
		t.Fatalf("read_committed offset for the open transaction's timestamp: %d, want -1 (not readable yet)", got)
	}
	plain := manualProducer(ts)
	produceValues(t, plain, "vis", 0, time.Now(), "end")
	if got := readUntil(t, ts, "vis", 0, false, "end"); !slices.Equal(got, []string{"c1", "c2", "a1", "a2", "c3", "o1"}) {
		t.Fatalf("read_uncommitted: %q", got)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, ts, "vis", 0, true, "end"); !slices.Equal(got, []string{"c1", "c2", "c3", "o1"}) {
		t.Fatalf("read_committed: %q", got)
	}
	if lso, hw := listEnd(t, ts, "vis", 0, true), listEnd(t, ts, "vis", 0, false); lso != hw {
		t.Fatalf("latest offsets once every transaction ended: read_committed %d, read_uncommitted %d", lso, hw)
	}
}

// TestTxnZombieFenced: a second producer with the same transactional id
// fences the first; the first's open transaction is aborted and its
// commit refused.
func TestTxnZombieFenced(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "zombie", 1)
	ctx := testCtx(t)
	old := txnProducer(ts, "z")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: "zombie", Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnProducer(ts, "z")
	txnProduce(t, fresh, "zombie", 0, kgo.TryCommit, "fresh")

	err := old.ProduceSync(ctx, &kgo.Record{Topic: "zombie", Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidProducerIDMapping) {
		t.Fatalf("the fenced producer's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	produceValues(t, manualProducer(ts), "zombie", 0, time.Now(), "end")
	if got := readUntil(t, ts, "zombie", 0, true, "end"); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("read_committed: %q, want only the new producer's record", got)
	}
}

// TestTxnRawErrors: the coordinator's refusals: committing a transaction
// that holds nothing, stale epochs (by version), another producer id,
// unknown partitions, and a timeout over the maximum.
func TestTxnRawErrors(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "raw", 1)
	c := dialRaw(t, ts)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = strp("raw"), 60_000
	ir := c.do(init, 4).(*kmsg.InitProducerIDResponse)
	wantErr(t, "init", ir.ErrorCode, nil)

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "raw", ir.ProducerID, ir.ProducerEpoch, true
	wantErr(t, "commit of nothing", c.do(end, 3).(*kmsg.EndTxnResponse).ErrorCode, kerr.InvalidTxnState)

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "raw", ir.ProducerID, ir.ProducerEpoch-1
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "raw", []int32{0}
	add.Topics = append(add.Topics, at)
	wantErr(t, "stale epoch v3", c.do(add, 3).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, kerr.ProducerFenced)
	wantErr(t, "stale epoch v1", c.do(add, 1).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, kerr.InvalidProducerEpoch)
	add.ProducerID = ir.ProducerID + 1
	add.ProducerEpoch = ir.ProducerEpoch
	wantErr(t, "other producer id", c.do(add, 3).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, kerr.InvalidProducerIDMapping)
	add.ProducerID = ir.ProducerID
	at.Topic, at.Partitions = "raw-missing", []int32{0}
	add.Topics = append(add.Topics[:1], at)
	ar := c.do(add, 3).(*kmsg.AddPartitionsToTxnResponse)
	wantErr(t, "known partition beside an unknown one", ar.Topics[0].Partitions[0].ErrorCode, kerr.OperationNotAttempted)
	wantErr(t, "unknown partition", ar.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)

	big := kmsg.NewPtrInitProducerIDRequest()
	big.TransactionalID, big.TransactionTimeoutMillis = strp("raw-big"), int32(time.Hour/time.Millisecond)
	wantErr(t, "timeout over the maximum", c.do(big, 4).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.InvalidTransactionTimeout)
}

// TestTxnOffsetsRequireStable: offsets committed in a transaction appear
// only when it commits; until then OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT. An aborted transaction's offsets never appear.
func TestTxnOffsetsRequireStable(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "stable", 1)
	c := dialRaw(t, ts)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = strp("st"), 60_000
	ir := c.do(init, 4).(*kmsg.InitProducerIDResponse)
	wantErr(t, "init", ir.ErrorCode, nil)

	commitIn := func(offset int64, commit bool) {
		t.Helper()
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "st", ir.ProducerID, ir.ProducerEpoch, "g"
		wantErr(t, "add offsets", c.do(ao, 3).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.TransactionalID, oc.ProducerID, oc.ProducerEpoch, oc.Group, oc.Generation = "st", ir.ProducerID, ir.ProducerEpoch, "g", -1
		ot := kmsg.NewTxnOffsetCommitRequestTopic()
		ot.Topic = "stable"
		op := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		op.Offset = offset
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		wantErr(t, "txn offset commit", c.do(oc, 3).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

		fetch := func(stable bool) kmsg.OffsetFetchResponseTopicPartition {
			of := kmsg.NewPtrOffsetFetchRequest()
			of.Group, of.RequireStable = "g", stable
			ft := kmsg.NewOffsetFetchRequestTopic()
			ft.Topic, ft.Partitions = "stable", []int32{0}
			of.Topics = append(of.Topics, ft)
			return c.do(of, 7).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		}
		wantErr(t, "require stable while pending", fetch(true).ErrorCode, kerr.UnstableOffsetCommit)
		before := fetch(false)
		wantErr(t, "fetch while pending", before.ErrorCode, nil)

		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "st", ir.ProducerID, ir.ProducerEpoch, commit
		wantErr(t, "end", c.do(end, 3).(*kmsg.EndTxnResponse).ErrorCode, nil)
		wantErr(t, "retried end", c.do(end, 3).(*kmsg.EndTxnResponse).ErrorCode, nil)
		after := fetch(true)
		wantErr(t, "require stable after the end", after.ErrorCode, nil)
		want := before.Offset
		if commit {
			want = offset
		}
		if after.Offset != want {
			t.Fatalf("committed offset %d after the transaction ended (commit %v), want %d", after.Offset, commit, want)
		}
	}
	commitIn(5, true)
	commitIn(9, false)
	commitIn(7, true)
}

// TestTxnTimeoutAborts: a transaction left open past its timeout is
// aborted by the broker, which fences its producer.
func TestTxnTimeoutAborts(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "timeout", 1)
	ctx := testCtx(t)
	p := txnProducer(ts, "slow", kgo.TransactionTimeout(time.Second))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "timeout", Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broker to abort the transaction", 30*time.Second, func() bool {
		return listEnd(t, ts, "timeout", 0, true) == listEnd(t, ts, "timeout", 0, false)
	})
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("a transaction aborted for its timeout committed")
	}
	produceValues(t, manualProducer(ts), "timeout", 0, time.Now(), "end")
	if got := readUntil(t, ts, "timeout", 0, true, "end"); len(got) != 0 {
		t.Fatalf("read_committed after the timeout: %q", got)
	}
	if got := readUntil(t, ts, "timeout", 0, false, "end"); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("read_uncommitted after the timeout: %q", got)
	}
}

// TestTxnOpenAcrossRestart: a transaction open when the broker stops is
// still open after it starts again, and its producer commits it; one that
// nobody ends is aborted once its timeout passes.
func TestTxnOpenAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServerIn(t, dir, nil)
	createTopic(t, ts, "restart", 2)
	ctx := testCtx(t)

	// Partition 0: a raw producer whose transaction spans the restart.
	c := dialRaw(t, ts)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = strp("kept"), 60_000
	ir := c.do(init, 4).(*kmsg.InitProducerIDResponse)
	wantErr(t, "init", ir.ErrorCode, nil)
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "kept", ir.ProducerID, ir.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "restart", []int32{0}
	add.Topics = append(add.Topics, at)
	wantErr(t, "add partitions", c.do(add, 3).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, nil)
	rp := &rawProducer{t: t, ts: ts, cl: ts.client(), topic: "restart", id: ir.ProducerID, epoch: ir.ProducerEpoch}
	batch := rp.batch(0, "kept")
	binary.BigEndian.PutUint16(batch[21:], 0x10) // transactional
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))
	wantErr(t, "transactional produce", rp.send(batch).ErrorCode, nil)

	// Partition 1: a franz-go producer that is never heard of again.
	left := txnProducer(ts, "left", kgo.TransactionTimeout(2*time.Second))
	if err := left.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := left.ProduceSync(ctx, &kgo.Record{Topic: "restart", Partition: 1, Value: []byte("left")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	left.Close()
	ts.stop()

	ts = startServerIn(t, dir, nil)
	if lso := listEnd(t, ts, "restart", 0, true); lso != 0 {
		t.Fatalf("last stable offset %d after the restart, want 0: the transaction is still open", lso)
	}
	eventually(t, "the abandoned transaction to be aborted", 30*time.Second, func() bool {
		return listEnd(t, ts, "restart", 1, true) == listEnd(t, ts, "restart", 1, false)
	})
	c = dialRaw(t, ts)
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "kept", ir.ProducerID, ir.ProducerEpoch, true
	wantErr(t, "commit after the restart", c.do(end, 3).(*kmsg.EndTxnResponse).ErrorCode, nil)

	plain := manualProducer(ts)
	produceValues(t, plain, "restart", 0, time.Now(), "end")
	produceValues(t, plain, "restart", 1, time.Now(), "end")
	if got := readUntil(t, ts, "restart", 0, true, "end"); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("partition 0 read_committed: %q", got)
	}
	if got := readUntil(t, ts, "restart", 1, true, "end"); len(got) != 0 {
		t.Fatalf("partition 1 read_committed: %q", got)
	}
	if got := readUntil(t, ts, "restart", 1, false, "end"); !slices.Equal(got, []string{"left"}) {
		t.Fatalf("partition 1 read_uncommitted: %q", got)
	}
}

// TestGroupTransactSessionChain runs three consume-transform-produce stages
// with franz-go's GroupTransactSession, some of whose transactions abort:
// the read_committed output holds every input exactly once, in order per
// key.
func TestGroupTransactSessionChain(t *testing.T) {
	ts := startServer(t, nil)
	const parts, keys, perKey = 3, 6, 40
	for _, topic := range []string{"chain-in", "chain-mid", "chain-mid2", "chain-out"} {
		createTopic(t, ts, topic, parts)
	}
	plain := ts.client(kgo.ProducerLinger(0))
	var recs []*kgo.Record
	for i := range perKey {
		for k := range keys {
			recs = append(recs, &kgo.Record{Topic: "chain-in", Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "%d", i)})
		}
	}
	if err := plain.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stage := func(name, in, out string, abortEvery int) chan error {
		done := make(chan error, 1)
		go func() {
			done <- runStage(ctx, ts, name, in, out, abortEvery)
		}()
		return done
	}
	s1 := stage("s1", "chain-in", "chain-mid", 3)
	s2 := stage("s2", "chain-mid", "chain-mid2", 4)
	s3 := stage("s3", "chain-mid2", "chain-out", 5)

	c, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeTopics("chain-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[string][]string{}
	total := 0
	for total < keys*perKey {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("reading the output: %v (read %d of %d)", err, total, keys*perKey)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
			total++
		})
	}
	cancel()
	for _, d := range []chan error{s1, s2, s3} {
		if err := <-d; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stage: %v", err)
		}
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		want := make([]string, perKey)
		for i := range want {
			want[i] = fmt.Sprintf("%d-s1-s2-s3", i)
		}
		if !slices.Equal(got[key], want) {
			t.Fatalf("key %s: output %q, want every input once in order", key, got[key])
		}
	}
}

// runStage is one consume-transform-produce stage: it appends "-name" to
// each value, and aborts every abortEvery-th transaction after producing.
func runStage(ctx context.Context, ts *testServer, name, in, out string, abortEvery int) error {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(ts.addr), kgo.TransactionalID("stage-"+name),
		kgo.ConsumerGroup("group-"+name), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerLinger(0), kgo.RequireStableFetchOffsets())
	if err != nil {
		return err
	}
	defer sess.Close()
	for n := 1; ; n++ {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fs.Err(); err != nil {
			return fmt.Errorf("%s poll: %w", name, err)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("%s begin: %w", name, err)
		}
		var outs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			outs = append(outs, &kgo.Record{Topic: out, Key: r.Key, Value: fmt.Appendf(nil, "%s-%s", r.Value, name)})
		})
		if err := sess.ProduceSync(ctx, outs...).FirstErr(); err != nil {
			return fmt.Errorf("%s produce: %w", name, err)
		}
		try := kgo.TryCommit
		if n%abortEvery == 0 {
			try = kgo.TryAbort
		}
		if _, err := sess.End(ctx, try); err != nil {
			return fmt.Errorf("%s end: %w", name, err)
		}
	}
}

// TestTxnAdmin: DescribeProducers, DescribeTransactions and
// ListTransactions through kadm, with one transaction open and one
// committed.
func TestTxnAdmin(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "adm", 1)
	ctx := testCtx(t)
	done := txnProducer(ts, "adm-done")
	txnProduce(t, done, "adm", 0, kgo.TryCommit, "a")
	open := txnProducer(ts, "adm-open")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Topic: "adm", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := ts.admin()
	described, err := adm.DescribeTransactions(ctx, "adm-done", "adm-open", "adm-none")
	if err != nil {
		t.Fatal(err)
	}
	if d := described["adm-done"]; d.Err != nil || d.State != "CompleteCommit" || d.StartTimestamp != -1 {
		t.Fatalf("adm-done: %+v", d)
	}
	d := described["adm-open"]
	if d.Err != nil || d.State != "Ongoing" || d.StartTimestamp <= 0 || len(d.Topics["adm"]) != 1 {
		t.Fatalf("adm-open: %+v", d)
	}
	if e := described["adm-none"].Err; !errors.Is(e, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown transactional id: %v", e)
	}
	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed["adm-open"].ProducerID != d.ProducerID {
		t.Fatalf("ongoing transactions: %+v", listed)
	}
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	producers.EachProducer(func(p kadm.DescribedProducer) {
		if p.ProducerID == d.ProducerID {
			found = p.CurrentTxnStartOffset == 2 && p.ProducerEpoch == d.ProducerEpoch && p.LastSequence == 0 && p.LastTimestamp > 0
		}
	})
	if !found {
		t.Fatalf("producers of adm-0: %+v, want adm-open's transaction from offset 2", producers)
	}
}

// TestTxnKeysAtEveryAdvertisedBound sends each transaction key at the
// lowest and highest version advertised, in one transaction per version
// pair: init, add a partition and a group, commit an offset, end.
func TestTxnKeysAtEveryAdvertisedBound(t *testing.T) {
	ts := startServer(t, nil)
	createTopic(t, ts, "bounds", 1)
	ctx := testCtx(t)
	for _, v := range []struct{ init, add, offsets, end, commit int16 }{{0, 0, 0, 0, 0}, {5, 3, 3, 3, 3}} {
		id := fmt.Sprintf("bounds-%d", v.init)
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = strp(id), 60_000
		r, err := pinned(ctx, ts, init, v.init)
		if err != nil {
			t.Fatal(err)
		}
		ir := r.(*kmsg.InitProducerIDResponse)
		wantErr(t, fmt.Sprintf("InitProducerId v%d", v.init), ir.ErrorCode, nil)

		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
		at := kmsg.NewAddPartitionsToTxnRequestTopic()
		at.Topic, at.Partitions = "bounds", []int32{0}
		add.Topics = append(add.Topics, at)
		if r, err = pinned(ctx, ts, add, v.add); err != nil {
			t.Fatal(err)
		}
		wantErr(t, fmt.Sprintf("AddPartitionsToTxn v%d", v.add), r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode, nil)

		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ir.ProducerID, ir.ProducerEpoch, "bounds-group"
		if r, err = pinned(ctx, ts, ao, v.offsets); err != nil {
			t.Fatal(err)
		}
		wantErr(t, fmt.Sprintf("AddOffsetsToTxn v%d", v.offsets), r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)

		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.TransactionalID, oc.ProducerID, oc.ProducerEpoch, oc.Group, oc.Generation = id, ir.ProducerID, ir.ProducerEpoch, "bounds-group", -1
		ot := kmsg.NewTxnOffsetCommitRequestTopic()
		ot.Topic = "bounds"
		op := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		op.Offset = 1
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		if r, err = pinned(ctx, ts, oc, v.commit); err != nil {
			t.Fatal(err)
		}
		wantErr(t, fmt.Sprintf("TxnOffsetCommit v%d", v.commit), r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, true
		if r, err = pinned(ctx, ts, end, v.end); err != nil {
			t.Fatal(err)
		}
		wantErr(t, fmt.Sprintf("EndTxn v%d", v.end), r.(*kmsg.EndTxnResponse).ErrorCode, nil)
	}
	if o := ts.b.CommittedOffsets("bounds-group"); len(o) != 1 {
		t.Fatalf("committed offsets after two committed transactions: %+v", o)
	}
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.DurationFilterMillis = -1
	for _, v := range []int16{0, 1} {
		r, err := pinned(ctx, ts, lt, v)
		if err != nil {
			t.Fatal(err)
		}
		if l := r.(*kmsg.ListTransactionsResponse); l.ErrorCode != 0 || len(l.TransactionStates) != 2 {
			t.Fatalf("ListTransactions v%d: %v, %d transactional ids, want 2", v, kerr.ErrorForCode(l.ErrorCode), len(l.TransactionStates))
		}
	}
}
