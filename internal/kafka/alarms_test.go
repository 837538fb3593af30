package kafka

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wharfmq/wharf/internal/alarm"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/storage"
)

// alarmFakes are the measurements a test sets.
type alarmFakes struct {
	free, used atomic.Uint64
}

// startAlarmServer starts a server whose broker measures free space and
// memory through f: the disk alarm is set below 1000 free bytes, the
// memory alarm at 1000 bytes used.
func startAlarmServer(t *testing.T, f *alarmFakes, mutate func(*Options)) *testServer {
	t.Helper()
	f.free.Store(1 << 30)
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), LogDefaults: storage.DefaultLogConfig(), Alarms: alarm.Options{
		DiskFreeLimit: 1000, MemoryHighWatermark: 1000, Interval: time.Hour,
		DiskFree:    func(string) (uint64, error) { return f.free.Load(), nil },
		MemoryInUse: f.used.Load,
	}})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AutoCreateTopics: true, DefaultPartitions: 1}
	if mutate != nil {
		mutate(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, b: b, srv: NewServer(b, opts), addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

func rawProduce(topic, value string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = storage.AppendBatch(nil, storage.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []storage.Record{{Value: []byte(value)}}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestProduceThrottledUnderMemoryAlarm: under the memory alarm a produce
// is stored and answered with throttle_time_ms, and the server reads the
// connection's next request only once that time has passed; once the
// alarm clears, responses carry no throttle.
func TestProduceThrottledUnderMemoryAlarm(t *testing.T) {
	const throttle = 300 * time.Millisecond
	f := &alarmFakes{}
	ts := startAlarmServer(t, f, func(o *Options) { o.AlarmThrottle = throttle })
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	f.used.Store(5000)
	ts.b.Alarms().Check()

	c := dialRaw(t, ts)
	start := time.Now()
	c.send(rawProduce("t", "a"), 7)
	c.send(rawProduce("t", "b"), 7) // pipelined
	for i := range 2 {
		resp := c.recv().(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != int64(i) {
			t.Fatalf("produce %d under the memory alarm: error %d offset %d; want stored at %d", i, p.ErrorCode, p.BaseOffset, i)
		}
		if resp.ThrottleMillis != int32(throttle/time.Millisecond) {
			t.Fatalf("produce %d: throttle_time_ms %d, want %d", i, resp.ThrottleMillis, throttle/time.Millisecond)
		}
	}
	// The second request was read only after the first one's throttle,
	// which began after start.
	if elapsed := time.Since(start); elapsed < throttle {
		t.Fatalf("second response after %v: the connection was not held back for %v", elapsed, throttle)
	}

	f.used.Store(0)
	ts.b.Alarms().Check()
	if resp := c.do(rawProduce("t", "c"), 7).(*kmsg.ProduceResponse); resp.ThrottleMillis != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce after the alarm cleared: throttle %d, error %d", resp.ThrottleMillis, resp.Topics[0].Partitions[0].ErrorCode)
	}
}

// TestProduceRefusedUnderDiskAlarm: under the disk alarm every partition
// of a produce gets KAFKA_STORAGE_ERROR and nothing is written, not even
// a topic auto-created; fetches go on; once the alarm clears, a retrying
// producer's record is stored.
func TestProduceRefusedUnderDiskAlarm(t *testing.T) {
	f := &alarmFakes{}
	ts := startAlarmServer(t, f, nil)
	ctx := testCtx(t)
	if _, err := ts.admin().CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(kgo.DefaultProduceTopic("t"), kgo.RecordRetries(0))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.free.Store(10)
	ts.b.Alarms().Check()

	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr(); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce under the disk alarm: %v, want KAFKA_STORAGE_ERROR", err)
	}
	c := dialRaw(t, ts)
	if resp := c.do(rawProduce("never-created", "x"), 7).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != kerr.KafkaStorageError.Code ||
		resp.Topics[0].Partitions[0].ErrorMessage != nil { // v7 has no error message
		t.Fatalf("raw produce under the disk alarm: %+v", resp.Topics[0].Partitions[0])
	}
	if _, ok := ts.b.Topic("never-created"); ok {
		t.Fatal("a produce under the disk alarm auto-created its topic")
	}
	// Fetches go on.
	consumer := ts.client(kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := consumer.PollFetches(ctx)
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "before" {
		t.Fatalf("fetch under the disk alarm: %v %d records", err, fs.NumRecords())
	}

	responses := &produceResponses{}
	retrying := ts.client(kgo.DefaultProduceTopic("t"), kgo.MetadataMinAge(50*time.Millisecond), kgo.WithHooks(responses))
	done := make(chan error, 1)
	retrying.Produce(ctx, &kgo.Record{Value: []byte("after")}, func(_ *kgo.Record, err error) { done <- err })
	for responses.n.Load() == 0 { // refused at least once
		select {
		case err := <-done:
			t.Fatalf("produce under the disk alarm finished: %v", err)
		case <-ctx.Done():
			t.Fatal("the producer never got an answer under the disk alarm")
		case <-time.After(time.Millisecond):
		}
	}
	f.free.Store(1 << 30)
	ts.b.Alarms().Check()
	if err := <-done; err != nil {
		t.Fatalf("retried produce after the alarm cleared: %v", err)
	}
	for got := 1; got < 2; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			if string(r.Value) != "after" || r.Offset != 1 {
				t.Fatalf("after the alarm the topic holds %q at %d", r.Value, r.Offset)
			}
			got++
		}
	}
}

// produceResponses counts the produce responses a client reads.
type produceResponses struct{ n atomic.Int64 }

func (h *produceResponses) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil {
		h.n.Add(1)
	}
}
