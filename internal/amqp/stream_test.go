package amqp

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/wharfmq/wharf/internal/broker"
)

// Stream queues over amqp091-go: declaration rules, publishing with
// confirms, consuming from every kind of x-stream-offset, credit, and
// restarts.

var streamArgs = amqp091.Table{"x-queue-type": "stream"}

// declareStream declares a durable stream queue with extra arguments.
func declareStream(t *testing.T, ch *amqp091.Channel, name string, extra amqp091.Table) {
	t.Helper()
	args := amqp091.Table{"x-queue-type": "stream"}
	for k, v := range extra {
		args[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare stream %q: %v", name, err)
	}
}

// publishStream publishes bodies to the default exchange with routing
// key queue and waits for every confirmation to be an ack.
func publishStream(t *testing.T, ch *amqp091.Channel, queue string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, false, false, amqp091.Publishing{Body: []byte(b)})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ok, err := dc.WaitContext(ctx)
		cancel()
		if err != nil || !ok {
			t.Fatalf("confirm of %q: ack=%v err=%v", b, ok, err)
		}
	}
}

// consumeStream starts a consumer of a stream with prefetch and offset
// (nil: none given).
func consumeStream(t *testing.T, ch *amqp091.Channel, queue string, prefetch int, offset any) <-chan amqp091.Delivery {
	t.Helper()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		t.Fatalf("qos: %v", err)
	}
	var args amqp091.Table
	if offset != nil {
		args = amqp091.Table{"x-stream-offset": offset}
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, args)
	if err != nil {
		t.Fatalf("consume %q at %v: %v", queue, offset, err)
	}
	return ds
}

// nextStreamDelivery waits for a delivery.
func nextStreamDelivery(t *testing.T, ds <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("the consumer ended")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	return amqp091.Delivery{}
}

// streamOffset returns a delivery's x-stream-offset header, which must be
// a long.
func streamOffset(t *testing.T, d amqp091.Delivery) int64 {
	t.Helper()
	v, ok := d.Headers["x-stream-offset"].(int64)
	if !ok {
		t.Fatalf("delivery %q has x-stream-offset %#v (%T), want an int64", d.Body, d.Headers["x-stream-offset"], d.Headers["x-stream-offset"])
	}
	return v
}

// expectOffsets takes deliveries and checks their offsets and bodies
// (body "m<offset>"), acking each.
func expectOffsets(t *testing.T, ds <-chan amqp091.Delivery, offsets ...int64) {
	t.Helper()
	for _, want := range offsets {
		d := nextStreamDelivery(t, ds)
		if got := streamOffset(t, d); got != want || string(d.Body) != fmt.Sprintf("m%d", want) {
			t.Fatalf("got offset %d body %q, want offset %d body m%d", got, d.Body, want, want)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

func bodies(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

func TestStreamDeclareRules(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	cases := []struct {
		name                        string
		durable, exclusive, autoDel bool
		args                        amqp091.Table
		want                        string
	}{
		{"s-nondurable", false, false, false, nil, "invalid property 'non-durable' for queue 's-nondurable'"},
		{"s-exclusive", true, true, false, nil, "invalid property 'exclusive-owner' for queue 's-exclusive'"},
		{"s-autodelete", true, false, true, nil, "invalid property 'auto-delete' for queue 's-autodelete'"},
		{"", true, false, false, nil, "Cannot declare a server-named queue for type rabbit_stream_queue"},
		{"s-age", true, false, false, amqp091.Table{"x-max-age": "10x"}, "invalid arg 'x-max-age' for queue 's-age' in vhost '/': invalid_max_age"},
		{"s-ttl", true, false, false, amqp091.Table{"x-message-ttl": int32(5)}, "invalid arg 'x-message-ttl' for queue 's-ttl' in vhost '/' of queue type rabbit_stream_queue"},
		{"s-seg", true, false, false, amqp091.Table{"x-stream-max-segment-size-bytes": int64(-1)}, "invalid arg 'x-stream-max-segment-size-bytes'"},
		{"s-seg-small", true, false, false, amqp091.Table{"x-stream-max-segment-size-bytes": int64(3)}, "invalid retention arguments for queue 's-seg-small'"},
	}
	for _, c := range cases {
		_, ch := ts.channel(t)
		args := amqp091.Table{"x-queue-type": "stream"}
		for k, v := range c.args {
			args[k] = v
		}
		_, err := ch.QueueDeclare(c.name, c.durable, c.autoDel, c.exclusive, false, args)
		if amqpErrorCode(err) != 406 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("declare %q: got %v, want 406 with %q", c.name, err, c.want)
		}
	}
	_, ch := ts.channel(t)
	declareStream(t, ch, "s-ok", amqp091.Table{"x-max-age": "7D"})
	q, err := ch.QueueDeclarePassive("s-ok", true, false, false, false, nil)
	if err != nil || q.Name != "s-ok" {
		t.Fatalf("passive declare: %+v %v", q, err)
	}
	_, err = ch.QueueDeclare("s-ok", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-max-age": "8D"})
	if amqpErrorCode(err) != 406 || !strings.Contains(err.Error(), "inequivalent arg 'x-max-age'") {
		t.Fatalf("redeclare with another x-max-age: %v", err)
	}
	if ti, ok := ts.b.Topic("s-ok"); !ok || ti.Partitions != 1 {
		t.Fatalf("topic of the stream: %+v %v", ti, ok)
	}
}

func TestStreamConsumeRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	declareStream(t, ch, "refusals", nil)

	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if _, err := ch.Consume("refusals", "", false, false, false, false, nil); err == nil {
		t.Fatal("consume without basic.qos succeeded")
	}
	e := waitClose(t, closed)
	if e.Code != 406 || e.Reason != "PRECONDITION_FAILED - consumer prefetch count is not set for stream queue 'refusals' in vhost '/'" {
		t.Fatalf("consume without qos: %v", e)
	}

	_, ch = ts.channel(t)
	ch.Qos(10, 0, false)
	closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	if _, err := ch.Consume("refusals", "", false, false, false, false, amqp091.Table{"x-stream-offset": "sometime"}); err == nil {
		t.Fatal("consume with a bad x-stream-offset succeeded")
	}
	if e := waitClose(t, closed); e.Code != 406 || !strings.Contains(e.Reason, "invalid arg 'x-stream-offset'") {
		t.Fatalf("bad x-stream-offset: %v", e)
	}

	c, ch := ts.channel(t)
	ch.Qos(10, 0, false)
	connClosed := c.NotifyClose(make(chan *amqp091.Error, 1))
	if _, err := ch.Consume("refusals", "", true, false, false, false, nil); err == nil {
		t.Fatal("no-ack consume of a stream succeeded")
	}
	if e := waitClose(t, connClosed); e.Code != 540 || e.Reason != "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues queue 'refusals' in vhost '/'" {
		t.Fatalf("no-ack consume: %v", e)
	}

	c, ch = ts.channel(t)
	connClosed = c.NotifyClose(make(chan *amqp091.Error, 1))
	if _, _, err := ch.Get("refusals", false); err == nil {
		t.Fatal("basic.get of a stream succeeded")
	}
	if e := waitClose(t, connClosed); e.Code != 540 || e.Reason != "NOT_IMPLEMENTED - basic.get not supported by stream queues queue 'refusals' in vhost '/'" {
		t.Fatalf("basic.get: %v", e)
	}
}

func TestStreamOffsets(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	ts := startServer(t, Options{Now: clock})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "offsets", nil)
	t0 := clock()
	publishStream(t, pub, "offsets", bodies(0, 3)...)
	set(t0.Add(time.Hour))
	publishStream(t, pub, "offsets", bodies(3, 5)...)
	set(t0.Add(time.Hour + 5*time.Minute))

	for _, c := range []struct {
		offset any
		want   []int64
	}{
		{"first", []int64{0, 1, 2, 3, 4}},
		{"last", []int64{4}},
		{int64(2), []int64{2, 3, 4}},
		{int32(0), []int64{0, 1, 2, 3, 4}},
		{int64(99), nil},
		{t0.Add(30 * time.Minute), []int64{3, 4}},
		{t0.Add(-time.Hour), []int64{0, 1, 2, 3, 4}},
		{"10m", []int64{3, 4}},
		{"2h", []int64{0, 1, 2, 3, 4}},
		{"next", nil},
		{nil, nil},
	} {
		_, ch := ts.channel(t)
		ds := consumeStream(t, ch, "offsets", 10, c.offset)
		expectOffsets(t, ds, c.want...)
		defer func(ch *amqp091.Channel, ds <-chan amqp091.Delivery, offset any) {
			// Every consumer also gets what is published after it started.
			expectOffsets(t, ds, 5)
		}(ch, ds, c.offset)
	}
	publishStream(t, pub, "offsets", "m5")
}

func TestStreamCredit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "credit", nil)
	publishStream(t, pub, "credit", bodies(0, 10)...)

	_, ch := ts.channel(t)
	ds := consumeStream(t, ch, "credit", 3, "first")
	var got []amqp091.Delivery
	for range 3 {
		got = append(got, nextStreamDelivery(t, ds))
	}
	select {
	case d := <-ds:
		t.Fatalf("a fourth delivery (offset %d) went out with a prefetch of 3 and nothing acked", streamOffset(t, d))
	case <-time.After(300 * time.Millisecond):
	}
	// A nack with requeue gives credit back and redelivers nothing.
	if err := got[0].Nack(false, true); err != nil {
		t.Fatal(err)
	}
	if d := nextStreamDelivery(t, ds); streamOffset(t, d) != 3 || d.Redelivered {
		t.Fatalf("after a nack: offset %d redelivered %v, want offset 3, not redelivered", streamOffset(t, d), d.Redelivered)
	}
	// A reject and a multiple ack give theirs back too.
	if err := got[1].Reject(false); err != nil {
		t.Fatal(err)
	}
	if d := nextStreamDelivery(t, ds); streamOffset(t, d) != 4 {
		t.Fatalf("after a reject: offset %d, want 4", streamOffset(t, d))
	}
	if err := ch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	expectOffsets(t, ds, 5, 6, 7, 8, 9)
}

func TestStreamRestartKeepsLog(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "durable-log", amqp091.Table{"x-max-length-bytes": int64(1 << 30)})
	publishStream(t, pub, "durable-log", bodies(0, 3)...)
	ts.restart()

	_, ch := ts.channel(t)
	if _, err := ch.QueueDeclare("durable-log", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-max-length-bytes": int64(1 << 30)}); err != nil {
		t.Fatalf("redeclare after restart: %v", err)
	}
	qs, err := ts.b.ListQueues("/")
	if err != nil {
		t.Fatal(err)
	}
	var typ broker.QueueType
	for _, q := range qs {
		if q.Name == "durable-log" {
			typ = q.Type
		}
	}
	if typ != broker.QueueStream {
		t.Fatalf("queue type after restart: %q", typ)
	}
	ds := consumeStream(t, ch, "durable-log", 10, "first")
	expectOffsets(t, ds, 0, 1, 2)
	_, pub = ts.channel(t)
	pub.Confirm(false)
	publishStream(t, pub, "durable-log", "m3")
	expectOffsets(t, ds, 3)
}

func TestStreamOtherVhostIsHidden(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	if err := ts.b.CreateVhost(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}
	grantVhost(t, ts, "guest", "v1")
	c, err := amqp091.Dial("amqp://guest:guest@" + ts.addr + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pub, _ := c.Channel()
	pub.Confirm(false)
	declareStream(t, pub, "hidden", nil)
	publishStream(t, pub, "hidden", bodies(0, 2)...)
	ch, _ := c.Channel()
	expectOffsets(t, consumeStream(t, ch, "hidden", 5, "first"), 0, 1)
	for _, ti := range ts.b.Topics() {
		if strings.HasPrefix(ti.Name, "#") || ti.Name == "hidden" {
			t.Fatalf("the log of a stream queue outside the default vhost is listed as topic %q", ti.Name)
		}
	}
	qi, _ := ts.b.LookupQueue("v1", "hidden")
	topic := broker.StreamTopicName("v1", "hidden", qi.ID)
	if _, err := ts.b.Partition(topic, 0); err == nil {
		t.Fatalf("partition 0 of hidden topic %q is reachable", topic)
	}
	if err := ts.b.DeleteTopic(context.Background(), topic); err == nil {
		t.Fatalf("hidden topic %q could be deleted as a topic", topic)
	}
	// Deleting the queue ends its consumer with basic.cancel and its log.
	cancels := ch.NotifyCancel(make(chan string, 1))
	if _, err := pub.QueueDelete("hidden", false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancels:
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel after the stream queue was deleted")
	}
	ts.restart()
	if _, ok := ts.b.LookupQueue("v1", "hidden"); ok {
		t.Fatal("the deleted stream queue came back")
	}
}

func TestStreamDeleteBothSides(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	declareStream(t, ch, "both", nil)
	if _, err := ch.QueueDelete("both", false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.b.Topic("both"); ok {
		t.Fatal("deleting the stream queue left its topic")
	}
	declareStream(t, ch, "both", nil)
	if err := ts.b.DeleteTopic(context.Background(), "both"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.b.LookupQueue("/", "both"); ok {
		t.Fatal("deleting the topic left its stream queue")
	}
	ts.restart()
	if _, ok := ts.b.LookupQueue("/", "both"); ok {
		t.Fatal("the stream queue came back after a restart")
	}
	if _, ok := ts.b.Topic("both"); ok {
		t.Fatal("the topic came back after a restart")
	}
}

// TestStreamConsumersStop is not parallel: it counts goroutines. Every
// stream consumer's reader ends on basic.cancel and on channel.close.
func TestStreamConsumersStop(t *testing.T) {
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	declareStream(t, pub, "leaks", nil)
	c, ch := ts.channel(t)
	ch2, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	for range 3 {
		consumeStream(t, ch, "leaks", 2, "first")
	}
	if err := ch2.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.Consume("leaks", "c2", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	s, ok, err := ts.b.Stream("/", "", "leaks")
	if err != nil || !ok || s.Consumers() != 4 {
		t.Fatalf("stream: %v %v, want 4 consumers", ok, err)
	}
	if err := ch2.Cancel("c2", false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base || s.Consumers() != 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the consumers, %d consumers:\n%s", runtime.NumGoroutine(), base, s.Consumers(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamRetention: x-max-length-bytes and x-max-age with small
// segments (x-stream-max-segment-size-bytes) delete the oldest segments
// when retention runs; a consumer from "first" starts at the new start.
func TestStreamRetention(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := &testServer{t: t, dir: t.TempDir(), opts: Options{Now: clock}, now: clock}
	ts.start()
	t.Cleanup(ts.stop)
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "by-size", amqp091.Table{"x-max-length-bytes": int64(1000), "x-stream-max-segment-size-bytes": int64(200)})
	declareStream(t, pub, "by-age", amqp091.Table{"x-max-age": "1h", "x-stream-max-segment-size-bytes": int64(200)})
	for _, q := range []string{"by-size", "by-age"} {
		publishStream(t, pub, q, bodies(0, 30)...)
	}
	ti, _ := ts.b.Topic("by-size")
	cfg := map[string]string{}
	for _, c := range ti.Configs {
		cfg[c.Name] = c.Value
	}
	if cfg["retention.bytes"] != "1000" || cfg["segment.bytes"] != "200" {
		t.Fatalf("topic configs of by-size: %v", cfg)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	ts.b.ApplyRetention()
	for _, q := range []string{"by-size", "by-age"} {
		p, err := ts.b.Partition(q, 0)
		if err != nil {
			t.Fatal(err)
		}
		start, hw, _ := p.Offsets()
		if start == 0 || hw != 30 {
			t.Fatalf("%s after retention: start %d, high watermark %d; want a start past 0 and 30", q, start, hw)
		}
		_, ch := ts.channel(t)
		ds := consumeStream(t, ch, q, 50, "first")
		var want []int64
		for o := start; o < 30; o++ {
			want = append(want, o)
		}
		expectOffsets(t, ds, want...)
	}
}

// TestStreamChannelFlow: channel.flow active=false holds a stream
// consumer's deliveries; active=true lets them go.
func TestStreamChannelFlow(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "flow", nil)
	_, ch := ts.channel(t)
	ds := consumeStream(t, ch, "flow", 10, "next")
	if err := ch.Flow(false); err != nil {
		t.Fatal(err)
	}
	publishStream(t, pub, "flow", bodies(0, 3)...)
	select {
	case d := <-ds:
		t.Fatalf("delivery %q with the channel's flow off", d.Body)
	case <-time.After(300 * time.Millisecond):
	}
	if err := ch.Flow(true); err != nil {
		t.Fatal(err)
	}
	expectOffsets(t, ds, 0, 1, 2)
}

// TestStreamListedWithType: listings and metrics show a stream queue with
// its type, records and consumers.
func TestStreamListedWithType(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "listed", nil)
	publishStream(t, pub, "listed", bodies(0, 4)...)
	_, ch := ts.channel(t)
	expectOffsets(t, consumeStream(t, ch, "listed", 10, "first"), 0, 1, 2, 3)
	q, err := pub.QueueDeclarePassive("listed", true, false, false, false, nil)
	if err != nil || q.Messages != 4 || q.Consumers != 1 {
		t.Fatalf("passive declare: %+v %v, want 4 messages and 1 consumer", q, err)
	}
	var found bool
	for _, st := range ts.b.QueueStats() {
		if st.Name == "listed" {
			found = true
			if st.Ready != 4 || st.Consumers != 1 || st.MsgsIn != 4 || st.MsgsOut != 4 {
				t.Fatalf("stats %+v", st)
			}
		}
	}
	if !found {
		t.Fatal("no stats for the stream queue")
	}
}

// TestStreamNoConsumerTimeout: a stream delivery left unacknowledged past
// the consumer timeout does not close the channel; it only holds credit.
func TestStreamNoConsumerTimeout(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := startServer(t, Options{Now: clock, ConsumerTimeout: time.Second, ConsumerTimeoutCheck: 10 * time.Millisecond})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "patient", nil)
	publishStream(t, pub, "patient", bodies(0, 2)...)
	_, ch := ts.channel(t)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	ds := consumeStream(t, ch, "patient", 1, "first")
	d := nextStreamDelivery(t, ds)
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	select {
	case e := <-closed:
		t.Fatalf("the channel closed: %v", e)
	case <-time.After(300 * time.Millisecond): // thirty checks
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectOffsets(t, ds, 1)
}

// TestStreamFilter: x-stream-filter delivers the messages published with
// one of its x-stream-filter-value headers, and with
// x-stream-match-unfiltered those without one too; filtered-out messages
// take no credit.
func TestStreamFilter(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, pub := ts.channel(t)
	pub.Confirm(false)
	declareStream(t, pub, "filtered", amqp091.Table{"x-stream-filter-size-bytes": int32(32)})
	for i, v := range []any{"eu", "us", nil, "eu", "asia", nil, "us"} {
		p := amqp091.Publishing{Body: []byte(fmt.Sprintf("m%d", i))}
		if v != nil {
			p.Headers = amqp091.Table{"x-stream-filter-value": v}
		}
		dc, err := pub.PublishWithDeferredConfirmWithContext(context.Background(), "", "filtered", false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
			t.Fatalf("confirm: %v %v", ok, err)
		}
	}
	for _, c := range []struct {
		args amqp091.Table
		want []int64
	}{
		{amqp091.Table{"x-stream-filter": "eu"}, []int64{0, 3}},
		{amqp091.Table{"x-stream-filter": []any{"us", "asia"}}, []int64{1, 4, 6}},
		{amqp091.Table{"x-stream-filter": "eu", "x-stream-match-unfiltered": true}, []int64{0, 2, 3, 5}},
		{nil, []int64{0, 1, 2, 3, 4, 5, 6}},
	} {
		_, ch := ts.channel(t)
		if err := ch.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		args := amqp091.Table{"x-stream-offset": "first"}
		for k, v := range c.args {
			args[k] = v
		}
		ds, err := ch.Consume("filtered", "", false, false, false, false, args)
		if err != nil {
			t.Fatal(err)
		}
		expectOffsets(t, ds, c.want...)
	}
	_, ch := ts.channel(t)
	ch.Qos(1, 0, false)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	ch.Consume("filtered", "", false, false, false, false, amqp091.Table{"x-stream-filter": int32(1)})
	if e := waitClose(t, closed); e.Code != 406 || !strings.Contains(e.Reason, "x-stream-filter") {
		t.Fatalf("invalid x-stream-filter: %v", e)
	}
}

// TestStreamMessageTooLarge: a message larger than the stream's topic
// takes (max.message.bytes) closes the channel with 406 saying so.
func TestStreamMessageTooLarge(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Options{})
	_, ch := ts.channel(t)
	declareStream(t, ch, "small", nil)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.PublishWithContext(context.Background(), "", "small", false, false, amqp091.Publishing{Body: make([]byte, 2<<20)}); err != nil {
		t.Fatal(err)
	}
	if e := waitClose(t, closed); e.Code != 406 || !strings.Contains(e.Reason, "too large for the log of stream queue 'small'") {
		t.Fatalf("publishing 2 MiB to a stream: %v", e)
	}
}
