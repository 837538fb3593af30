package grpcapi

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

// topicStream reads a topic subscription.
type topicStream struct {
	t      *testing.T
	s      *connect.ServerStreamForClient[wharfv1.SubscribeTopicResponse]
	cancel context.CancelFunc
	starts map[int32]int64
}

func (e *env) subscribeTopic(t *testing.T, req *wharfv1.SubscribeTopicRequest) *topicStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	s, err := e.msg.SubscribeTopic(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if !s.Receive() {
		t.Fatalf("subscribe: no subscribed event: %v", s.Err())
	}
	sub := s.Msg().GetSubscribed()
	if sub == nil {
		t.Fatalf("first event is %v, want subscribed", s.Msg())
	}
	return &topicStream{t: t, s: s, cancel: cancel, starts: sub.GetStartOffsets()}
}

func (ts *topicStream) next() *wharfv1.Record {
	ts.t.Helper()
	if !ts.s.Receive() {
		ts.t.Fatalf("stream ended: %v", ts.s.Err())
	}
	r := ts.s.Msg().GetRecord()
	if r == nil {
		ts.t.Fatalf("event is %v, want a record", ts.s.Msg())
	}
	return r
}

// end waits for the stream to end and returns its error.
func (ts *topicStream) end() error {
	ts.t.Helper()
	for ts.s.Receive() {
		ts.t.Fatalf("unexpected event %v", ts.s.Msg())
	}
	return ts.s.Err()
}

func (e *env) produce(t *testing.T, topic string, recs ...*wharfv1.ProduceRecord) []*wharfv1.RecordPosition {
	t.Helper()
	res, err := e.msg.Produce(testCtx(t), connect.NewRequest(&wharfv1.ProduceRequest{Topic: topic, Records: recs}))
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	if len(res.Msg.Positions) != len(recs) {
		t.Fatalf("produce: %d positions for %d records", len(res.Msg.Positions), len(recs))
	}
	return res.Msg.Positions
}

func value(s string) *wharfv1.ProduceRecord {
	return &wharfv1.ProduceRecord{Value: []byte(s), Partition: ptr[int32](0)}
}

func TestProduceThenSubscribeFromEarliestLiveAndResume(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "orders", 2)
	pos := e.produce(t, "orders",
		&wharfv1.ProduceRecord{Key: []byte("k1"), Value: []byte("v1"), Partition: ptr[int32](0), TimestampMs: 1000,
			Headers: []*wharfv1.Header{{Key: "source", Value: []byte("web")}, {Key: "null"}}},
		&wharfv1.ProduceRecord{Key: []byte("k2"), Partition: ptr[int32](0)},                   // null value
		&wharfv1.ProduceRecord{Key: []byte{}, Value: []byte{}, Partition: ptr[int32](0)},      // empty key and value
		&wharfv1.ProduceRecord{Value: []byte("p1"), Partition: ptr[int32](1), TimestampMs: 5}, // the other partition
	)
	for i, want := range []struct {
		p   int32
		off int64
	}{{0, 0}, {0, 1}, {0, 2}, {1, 0}} {
		if pos[i].Partition != want.p || pos[i].Offset != want.off {
			t.Fatalf("record %d went to %d@%d, want %d@%d", i, pos[i].Partition, pos[i].Offset, want.p, want.off)
		}
	}

	ts := e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "orders", Partitions: []int32{0}, Start: wharfv1.Start_START_EARLIEST})
	if len(ts.starts) != 1 || ts.starts[0] != 0 {
		t.Fatalf("start offsets %v, want {0:0}", ts.starts)
	}
	r := ts.next()
	if r.Topic != "orders" || r.Partition != 0 || r.Offset != 0 || r.TimestampMs != 1000 || string(r.Key) != "k1" || string(r.Value) != "v1" {
		t.Fatalf("first record %v", r)
	}
	if len(r.Headers) != 2 || r.Headers[0].Key != "source" || string(r.Headers[0].Value) != "web" || r.Headers[1].Key != "null" || r.Headers[1].Value != nil {
		t.Fatalf("headers %v", r.Headers)
	}
	if r := ts.next(); r.Offset != 1 || r.Value != nil || string(r.Key) != "k2" {
		t.Fatalf("second record %v, want a null value", r)
	}
	if r := ts.next(); r.Offset != 2 || r.Value == nil || len(r.Value) != 0 || r.Key == nil || len(r.Key) != 0 {
		t.Fatalf("third record %v, want an empty key and value", r)
	}

	// Live: records produced after the subscription caught up.
	e.produce(t, "orders", value("live-1"), value("live-2"))
	for _, want := range []string{"live-1", "live-2"} {
		if r := ts.next(); string(r.Value) != want {
			t.Fatalf("live record %q, want %q", r.Value, want)
		}
	}
	ts.cancel()

	// Resume after offset 3 (live-1): offsets wins over start.
	ts = e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "orders", Partitions: []int32{0}, Offsets: map[int32]int64{0: 4}})
	if ts.starts[0] != 4 {
		t.Fatalf("resumed at %v, want 4", ts.starts)
	}
	if r := ts.next(); r.Offset != 4 || string(r.Value) != "live-2" {
		t.Fatalf("resumed record %v", r)
	}
}

func TestSubscribeTopicStarts(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "events", 1)
	for i := range 3 {
		rec := value(fmt.Sprintf("r%d", i))
		rec.TimestampMs = int64(1000 * (i + 1))
		e.produce(t, "events", rec)
	}

	ts := e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "events", Start: wharfv1.Start_START_TIMESTAMP, TimestampMs: 1500})
	if r := ts.next(); r.Offset != 1 || string(r.Value) != "r1" {
		t.Fatalf("from timestamp: %v", r)
	}
	ts.cancel()

	ts = e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "events", Start: wharfv1.Start_START_OFFSET, Offset: 2})
	if r := ts.next(); r.Offset != 2 {
		t.Fatalf("from offset: %v", r)
	}
	ts.cancel()

	// Latest (the default) starts at the high watermark: the first record
	// is the one produced after the subscription.
	ts = e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "events"})
	if ts.starts[0] != 3 {
		t.Fatalf("latest starts at %v, want 3", ts.starts)
	}
	e.produce(t, "events", value("new"))
	if r := ts.next(); r.Offset != 3 || string(r.Value) != "new" {
		t.Fatalf("from latest: %v", r)
	}
}

func TestSubscribeTopicAllPartitions(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "multi", 3)
	ts := e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "multi", Start: wharfv1.Start_START_EARLIEST})
	if len(ts.starts) != 3 {
		t.Fatalf("start offsets %v, want three partitions", ts.starts)
	}
	want := map[int32]string{}
	for p := range int32(3) {
		v := fmt.Sprintf("p%d", p)
		want[p] = v
		e.produce(t, "multi", &wharfv1.ProduceRecord{Value: []byte(v), Partition: ptr(p)})
	}
	for range 3 {
		r := ts.next()
		if want[r.Partition] != string(r.Value) {
			t.Fatalf("record %v", r)
		}
		delete(want, r.Partition)
	}
}

func TestSubscribeTopicErrors(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "t", 1)
	e.produce(t, "t", value("a"))
	for _, c := range []struct {
		name string
		req  *wharfv1.SubscribeTopicRequest
		code connect.Code
	}{
		{"unknown topic", &wharfv1.SubscribeTopicRequest{Topic: "nope"}, connect.CodeNotFound},
		{"unknown partition", &wharfv1.SubscribeTopicRequest{Topic: "t", Partitions: []int32{5}}, connect.CodeNotFound},
		{"offset past the end", &wharfv1.SubscribeTopicRequest{Topic: "t", Start: wharfv1.Start_START_OFFSET, Offset: 9}, connect.CodeOutOfRange},
		{"offsets of another partition", &wharfv1.SubscribeTopicRequest{Topic: "t", Partitions: []int32{0}, Offsets: map[int32]int64{1: 0}}, connect.CodeInvalidArgument},
		{"bad start", &wharfv1.SubscribeTopicRequest{Topic: "t", Start: 42}, connect.CodeInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := e.msg.SubscribeTopic(testCtx(t), connect.NewRequest(c.req))
			if err == nil {
				for s.Receive() {
					t.Fatalf("unexpected event %v", s.Msg())
				}
				err = s.Err()
			}
			wantCode(t, err, c.code)
		})
	}
}

func TestSubscribeTopicEndsWhenTopicDeleted(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "doomed", 1)
	ts := e.subscribeTopic(t, &wharfv1.SubscribeTopicRequest{Topic: "doomed"})
	if _, err := e.admin.DeleteTopic(testCtx(t), connect.NewRequest(&wharfv1.DeleteTopicRequest{Name: "doomed"})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, ts.end(), connect.CodeNotFound)
}

func TestProduceErrors(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "t", 1)
	for _, c := range []struct {
		name string
		req  *wharfv1.ProduceRequest
		code connect.Code
	}{
		{"no records", &wharfv1.ProduceRequest{Topic: "t"}, connect.CodeInvalidArgument},
		{"unknown partition", &wharfv1.ProduceRequest{Topic: "t", Records: []*wharfv1.ProduceRecord{{Partition: ptr[int32](3)}}}, connect.CodeNotFound},
		{"bad partition", &wharfv1.ProduceRequest{Topic: "t", Records: []*wharfv1.ProduceRecord{{Partition: ptr[int32](-2)}}}, connect.CodeInvalidArgument},
		{"bad topic name", &wharfv1.ProduceRequest{Topic: "a/b", Records: []*wharfv1.ProduceRecord{{}}}, connect.CodeInvalidArgument},
		{"too large", &wharfv1.ProduceRequest{Topic: "t", Records: []*wharfv1.ProduceRecord{{Value: bytes.Repeat([]byte{1}, 1<<20+1)}}}, connect.CodeResourceExhausted},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.msg.Produce(testCtx(t), connect.NewRequest(c.req))
			wantCode(t, err, c.code)
		})
	}
	// Auto-creation, and a record without a partition.
	pos := e.produce(t, "auto", &wharfv1.ProduceRecord{Key: []byte("k"), Value: []byte("v")})
	if pos[0].Partition != 0 || pos[0].Offset != 0 {
		t.Fatalf("auto-created topic: %v", pos[0])
	}
}
