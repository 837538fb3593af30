package server

// Stream queues and Kafka topics are one log: these tests write it over
// one protocol and read it over the other, against a running server.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// streamDeclare declares a durable stream queue over AMQP.
func streamDeclare(t *testing.T, ch *amqp091.Channel, name string, extra amqp091.Table) {
	t.Helper()
	args := amqp091.Table{"x-queue-type": "stream"}
	for k, v := range extra {
		args[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare stream %q: %v", name, err)
	}
}

// streamConsumer consumes a stream from "first" on a new channel.
func streamConsumer(t *testing.T, amqpAddr, queue string) <-chan amqp091.Delivery {
	t.Helper()
	ch := mappingChannel(t, amqpAddr)
	if err := ch.Qos(100, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, amqp091.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatalf("consume %q: %v", queue, err)
	}
	return ds
}

func streamNext(t *testing.T, ctx context.Context, ds <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d := <-ds:
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		return d
	case <-ctx.Done():
		t.Fatal("no delivery from the stream")
	}
	return amqp091.Delivery{}
}

// kafkaRecords reads n records of a topic from the start of the given
// partitions.
func kafkaRecords(t *testing.T, ctx context.Context, kafkaAddr, topic string, partitions []int32, n int) []*kgo.Record {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for _, p := range partitions {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl := kafkaClient(t, kafkaAddr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetching %s: %v (have %d of %d)", topic, err, len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func recordHeader(r *kgo.Record, key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// sameProperties compares the basic properties of a delivery with those
// published, the x-stream-offset header aside.
func sameProperties(t *testing.T, where string, got amqp091.Delivery, want amqp091.Publishing) {
	t.Helper()
	h := amqp091.Table{}
	for k, v := range got.Headers {
		if k != "x-stream-offset" {
			h[k] = v
		}
	}
	if got.ContentType != want.ContentType || got.ContentEncoding != want.ContentEncoding || got.DeliveryMode != want.DeliveryMode ||
		got.Priority != want.Priority || got.CorrelationId != want.CorrelationId || got.ReplyTo != want.ReplyTo ||
		got.Expiration != want.Expiration || got.MessageId != want.MessageId || !got.Timestamp.Equal(want.Timestamp) ||
		got.Type != want.Type || got.UserId != want.UserId || got.AppId != want.AppId {
		t.Errorf("%s: properties %+v, want those of %+v", where, got, want)
	}
	// fmt prints maps sorted by key, and NaN and times as their values.
	if fmt.Sprint(h) != fmt.Sprint(want.Headers) {
		t.Errorf("%s: headers %v, want %v", where, h, want.Headers)
	}
}

// TestStreamAMQPToKafka: messages published over AMQP to stream queue
// "orders" are records of topic "orders" at the same offsets, key the
// routing key, value the body, application headers as Kafka headers; the
// record's x-amqp-properties, produced again over Kafka into another
// stream, give back the identical properties over AMQP. Row "AMQP →
// Kafka (stream queue)".
func TestStreamAMQPToKafka(t *testing.T) {
	_, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "orders", nil)
	streamDeclare(t, ch, "orders-copy", nil)
	pubs := []amqp091.Publishing{mappingPublishing("first"), {Body: []byte("second")}, mappingPublishing("third")}
	for _, p := range pubs {
		publishConfirmed(t, ctx, ch, "", "orders", p)
	}
	recs := kafkaRecords(t, ctx, kafkaAddr, "orders", []int32{0}, len(pubs))
	for i, r := range recs {
		if r.Offset != int64(i) || string(r.Key) != "orders" || string(r.Value) != string(pubs[i].Body) {
			t.Fatalf("record %d: offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
		}
	}
	if v, ok := recordHeader(recs[0], "str"); !ok || string(v) != "text" {
		t.Errorf("application header str of record 0: %q %v", v, ok)
	}
	if v, ok := recordHeader(recs[0], "int64"); !ok || string(v) != "1152921504606846977" {
		t.Errorf("application header int64 of record 0: %q %v", v, ok)
	}
	if _, ok := recordHeader(recs[0], "x-amqp-properties"); !ok {
		t.Error("record 0 has no x-amqp-properties")
	}
	if _, ok := recordHeader(recs[1], "x-amqp-properties"); ok {
		t.Error("record 1, published without properties, has x-amqp-properties")
	}

	// The same log over AMQP, offsets as over Kafka.
	ds := streamConsumer(t, amqpAddr, "orders")
	for i := range pubs {
		d := streamNext(t, ctx, ds)
		if d.Headers["x-stream-offset"] != recs[i].Offset || string(d.Body) != string(pubs[i].Body) || d.RoutingKey != "orders" {
			t.Fatalf("delivery %d: offset %v body %q key %q", i, d.Headers["x-stream-offset"], d.Body, d.RoutingKey)
		}
		if i == 0 {
			sameProperties(t, "read back over AMQP", d, pubs[0])
		}
	}

	// The Kafka record produced again over Kafka reads as the same
	// message over AMQP.
	cl := kafkaClient(t, kafkaAddr)
	copyRec := &kgo.Record{Topic: "orders-copy", Key: recs[0].Key, Value: recs[0].Value, Headers: recs[0].Headers}
	if err := cl.ProduceSync(ctx, copyRec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	d := streamNext(t, ctx, streamConsumer(t, amqpAddr, "orders-copy"))
	sameProperties(t, "through Kafka and back", d, pubs[0])
	if string(d.Body) != "first" || d.RoutingKey != "orders" {
		t.Errorf("through Kafka and back: body %q key %q", d.Body, d.RoutingKey)
	}
}

// TestStreamKafkaToAMQP: records produced over Kafka into a topic are read
// from the stream queue of the same name over AMQP, with x-stream-offset
// equal to the Kafka offsets, the key as routing key and the headers as
// application headers. Row "Kafka → AMQP (stream queue)".
func TestStreamKafkaToAMQP(t *testing.T) {
	_, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kafkaClient(t, kafkaAddr, kgo.DefaultProduceTopic("events"), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for i := range 3 {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("text")}, {Key: "bin", Value: []byte{0xff, 0}}}}
		res := cl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, res[0].Record.Offset)
	}
	ch := mappingChannel(t, amqpAddr)
	if _, err := ch.QueueDeclarePassive("events", true, false, false, false, amqp091.Table{"x-queue-type": "stream"}); err == nil {
		t.Fatal("a passive declare of a name that is only a topic succeeded")
	}
	ch = mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "events", nil)
	ds := streamConsumer(t, amqpAddr, "events")
	for i, off := range offsets {
		d := streamNext(t, ctx, ds)
		if d.Headers["x-stream-offset"] != off || string(d.Body) != fmt.Sprintf("v%d", i) || d.RoutingKey != fmt.Sprintf("k%d", i) {
			t.Fatalf("delivery %d: offset %v (want %d) body %q key %q", i, d.Headers["x-stream-offset"], off, d.Body, d.RoutingKey)
		}
		if d.Headers["h"] != "text" || string(d.Headers["bin"].([]byte)) != "\xff\x00" || d.DeliveryMode != 2 {
			t.Fatalf("delivery %d: headers %v delivery mode %d", i, d.Headers, d.DeliveryMode)
		}
	}
}

// TestStreamExchangeToPartitions: direct and topic exchanges bound to a
// stream queue whose topic has 3 partitions put each message in the
// partition franz-go's default partitioner picks for its routing key, or
// in the one its x-kafka-partition header names. Row "AMQP exchange →
// Kafka partition".
func TestStreamExchangeToPartitions(t *testing.T) {
	_, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kafkaClient(t, kafkaAddr)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, -1, nil, "routed"); err != nil {
		t.Fatal(err)
	}
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "routed", nil)
	if err := ch.ExchangeDeclare("routed.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("routed.topic", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("routed", "order.#", "routed.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{}
	exchange := map[string]string{} // body → the exchange it was published to
	part := kgo.StickyKeyPartitioner(nil).ForTopic("routed")
	var n int
	for i := range 12 {
		key := fmt.Sprintf("order.%d", i)
		ex := "routed.topic"
		if i%2 == 0 {
			ex = "routed.direct"
			if err := ch.QueueBind("routed", key, ex, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		body := "body-" + key
		publishConfirmed(t, ctx, ch, ex, key, amqp091.Publishing{Body: []byte(body)})
		want[body] = int32(part.Partition(&kgo.Record{Key: []byte(key)}, 3))
		exchange[body] = ex
		n++
	}
	for _, c := range []struct {
		header any
		want   int32
	}{{int32(2), 2}, {int64(0), 0}, {"1", 1}} {
		body := fmt.Sprintf("explicit-%v", c.header)
		publishConfirmed(t, ctx, ch, "routed.topic", "order.explicit", amqp091.Publishing{Body: []byte(body), Headers: amqp091.Table{"x-kafka-partition": c.header}})
		want[body] = c.want
		n++
	}
	// Out of range: partitioned by routing key.
	publishConfirmed(t, ctx, ch, "routed.topic", "order.far", amqp091.Publishing{Body: []byte("far"), Headers: amqp091.Table{"x-kafka-partition": int32(7)}})
	want["far"] = int32(part.Partition(&kgo.Record{Key: []byte("order.far")}, 3))
	n++

	seen := map[int32]bool{}
	for _, r := range kafkaRecords(t, ctx, kafkaAddr, "routed", []int32{0, 1, 2}, n) {
		w, ok := want[string(r.Value)]
		if !ok {
			t.Fatalf("unexpected record %q", r.Value)
		}
		if r.Partition != w {
			t.Errorf("record %q (key %q) is in partition %d, want %d", r.Value, r.Key, r.Partition, w)
		}
		if ex, ok := exchange[string(r.Value)]; ok {
			if got, _ := recordHeader(r, "x-amqp-exchange"); string(got) != ex {
				t.Errorf("record %q: x-amqp-exchange %q, want %q", r.Value, got, ex)
			}
		}
		seen[r.Partition] = true
	}
	if len(seen) < 2 {
		t.Errorf("every record landed in one partition: %v", seen)
	}

	// Over AMQP the deliveries say their partition.
	ds := streamConsumer(t, amqpAddr, "routed")
	for range n {
		d := streamNext(t, ctx, ds)
		p, ok := d.Headers["x-stream-partition"].(int32)
		if !ok || p != want[string(d.Body)] {
			t.Fatalf("delivery %q: x-stream-partition %#v, want %d", d.Body, d.Headers["x-stream-partition"], want[string(d.Body)])
		}
	}
}

// TestStreamRetentionConfigs: the retention arguments of a stream queue
// are its topic's configs, as Kafka's DescribeConfigs shows them; the
// gateway's queue faces (REST get, WebSocket queue subscription) refuse
// the stream queue saying why, and its topic subscription reads the log.
func TestStreamRetentionConfigs(t *testing.T) {
	httpAddr, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "kept", amqp091.Table{"x-max-age": "2h", "x-max-length-bytes": int64(100000), "x-stream-max-segment-size-bytes": int32(4096)})
	rcs, err := kadm.NewClient(kafkaClient(t, kafkaAddr)).DescribeTopicConfigs(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("kept", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v %v", err, rc.Err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	for k, v := range map[string]string{"retention.ms": "7200000", "retention.bytes": "100000", "segment.bytes": "4096"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	// The gateway refuses it as a classic queue, saying why, and reads
	// the same log as a topic.
	status, body := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/queues/kept/get", map[string]any{"count": 1, "ackmode": "ack_requeue_true"})
	if status < 400 || !strings.Contains(string(body), "stream queue") {
		t.Errorf("REST get of a stream queue: %d %s", status, body)
	}
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "q", "queue": "kept", "prefetch": 1})
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v", err)
		}
		if strings.Contains(string(data), `"error"`) {
			if !strings.Contains(string(data), "stream queue") {
				t.Errorf("websocket subscription to a stream queue: %s", data)
			}
			break
		}
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "t", "topic": "kept", "from": "earliest"})
	ch = mappingChannel(t, amqpAddr)
	publishConfirmed(t, ctx, ch, "", "kept", amqp091.Publishing{Body: []byte("over the gateway")})
	rec := wsReadType(t, ctx, ws, "record")
	if !strings.Contains(string(rec["value"]), "over the gateway") {
		t.Errorf("websocket topic record of the stream: %v", rec)
	}
}

// TestStreamHiddenFromKafka: a stream queue whose name Kafka cannot use
// works over AMQP, and its log is not a topic Kafka clients see.
func TestStreamHiddenFromKafka(t *testing.T) {
	_, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "orders:eu", nil)
	publishConfirmed(t, ctx, ch, "", "orders:eu", amqp091.Publishing{Body: []byte("hidden")})
	d := streamNext(t, ctx, streamConsumer(t, amqpAddr, "orders:eu"))
	if string(d.Body) != "hidden" || d.Headers["x-stream-offset"] != int64(0) {
		t.Fatalf("delivery %q at %v", d.Body, d.Headers["x-stream-offset"])
	}
	topics, err := kadm.NewClient(kafkaClient(t, kafkaAddr)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "#") || strings.Contains(name, "orders") {
			t.Errorf("Kafka lists topic %q", name)
		}
	}
}

// TestStreamReadsCommitted: a stream consumer reads a topic as a Kafka
// read-committed consumer does: records of an aborted transaction are
// skipped, those of a committed one delivered once it commits.
func TestStreamReadsCommitted(t *testing.T) {
	_, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "txns", nil)
	cl := kafkaClient(t, kafkaAddr, kgo.DefaultProduceTopic("txns"), kgo.TransactionalID("stream-txn"))
	for _, commit := range []bool{false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			v := fmt.Sprintf("aborted-%d", i)
			if commit {
				v = fmt.Sprintf("committed-%d", i)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	publishConfirmed(t, ctx, ch, "", "txns", amqp091.Publishing{Body: []byte("after")})
	ds := streamConsumer(t, amqpAddr, "txns")
	for _, want := range []string{"committed-0", "committed-1", "after"} {
		if d := streamNext(t, ctx, ds); string(d.Body) != want {
			t.Fatalf("delivery %q at offset %v, want %q", d.Body, d.Headers["x-stream-offset"], want)
		}
	}
}

// TestStreamCountsInAdminListings: REST lists a stream queue with its
// records as messages and nothing unacknowledged.
func TestStreamCountsInAdminListings(t *testing.T) {
	httpAddr, _, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	streamDeclare(t, ch, "counted", nil)
	for _, body := range []string{"a", "b", "c"} {
		publishConfirmed(t, ctx, ch, "", "counted", amqp091.Publishing{Body: []byte(body)})
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/api/v1/vhosts/%2F/queues/counted", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q struct {
		Type     string `json:"type"`
		Messages int    `json:"messages"`
		Unacked  int    `json:"messages_unacknowledged"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil {
		t.Fatal(err)
	}
	if q.Type != "stream" || q.Messages != 3 || q.Unacked != 0 {
		t.Fatalf("stream in the REST listing: %+v", q)
	}
}
