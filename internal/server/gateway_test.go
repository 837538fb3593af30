package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runningServer starts Run with every listener on a free port and returns
// their addresses; the server stops with the test.
func runningServer(t *testing.T) (httpAddr, kafkaAddr, amqpAddr string) {
	t.Helper()
	rec := newRecorder()
	cfg := testConfig(t) // its data directory goes after the server stops
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(rec)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	httpAddr, kafkaAddr, amqpAddr = listenAddrs(rec.waitFor(t, "wharf ready"))
	go func() {
		for range rec.ch { // keep the recorder from blocking the server
		}
	}()
	return httpAddr, kafkaAddr, amqpAddr
}

// wsDial connects as guest and reads the welcome.
func wsDial(t *testing.T, ctx context.Context, httpAddr string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("guest:guest"))}}
	c, _, err := websocket.Dial(ctx, "ws://"+httpAddr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if m := wsRead(t, ctx, c); m["type"] != "welcome" {
		t.Fatalf("first frame %v", m)
	}
	return c
}

func wsRead(t *testing.T, ctx context.Context, c *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return m
}

func wsWrite(t *testing.T, ctx context.Context, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
}

// TestOneStoreEveryProtocol checks that what one protocol writes the others
// read: Kafka records reach a WebSocket subscriber, AMQP messages reach a
// WebSocket queue consumer and WebSocket publishes reach an AMQP consumer;
// then that /metrics reports all of it.
func TestOneStoreEveryProtocol(t *testing.T) {
	httpAddr, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Kafka → WebSocket, compressed batches included.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ConsumerGroup("audit"), kgo.ConsumeTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 3 {
		r := &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("order-", i)),
			Headers: []kgo.RecordHeader{{Key: "src", Value: []byte("kafka")}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("kafka produce: %v", err)
		}
	}
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "s", "topic": "orders", "from": "earliest"})
	if m := wsRead(t, ctx, ws); m["type"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	for i := range 3 {
		m := wsRead(t, ctx, ws)
		if m["type"] != "record" || m["value"] != fmt.Sprint("order-", i) || m["key"] != fmt.Sprint("k", i) || m["offset"] != float64(i) {
			t.Fatalf("record %d over websocket: %v", i, m)
		}
	}
	// ... and a record produced over WebSocket reaches the Kafka consumer
	// group, which commits it.
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "p", "topic": "orders", "key": "k9", "value": "from-ws"})
	for {
		m := wsRead(t, ctx, ws)
		if m["type"] == "ok" && m["id"] == "p" {
			break
		}
	}
	var got []string
	for len(got) < 4 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafka fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[3] != "from-ws" {
		t.Fatalf("kafka consumer got %v", got)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	// AMQP → WebSocket and WebSocket → AMQP.
	ac, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"to-ws", "from-ws"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.PublishWithContext(ctx, "", "to-ws", false, false, amqp091.Publishing{
		DeliveryMode: 2, ContentType: "text/plain", Headers: amqp091.Table{"n": int32(7)}, Body: []byte("hello ws")}); err != nil {
		t.Fatal(err)
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "q", "queue": "to-ws", "prefetch": 1})
	var d map[string]any
	for d == nil {
		m := wsRead(t, ctx, ws)
		if m["type"] == "delivery" {
			d = m
		}
	}
	props := d["properties"].(map[string]any)
	if d["body"] != "hello ws" || props["content_type"] != "text/plain" || props["headers"].(map[string]any)["n"] != float64(7) {
		t.Fatalf("delivery over websocket: %v", d)
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "ack", "sub": d["sub"], "tag": d["tag"]})
	wsWrite(t, ctx, ws, map[string]any{"type": "publish", "id": "pub", "exchange": "", "routing_key": "from-ws", "body": "hello amqp",
		"properties": map[string]any{"delivery_mode": 2, "correlation_id": "c-1"}})
	for {
		m := wsRead(t, ctx, ws)
		if m["id"] == "pub" {
			if m["type"] != "ok" || m["routed"] != float64(1) {
				t.Fatalf("publish reply %v", m)
			}
			break
		}
	}
	msgs, err := ch.Consume("from-ws", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m.Body) != "hello amqp" || m.CorrelationId != "c-1" || m.DeliveryMode != 2 {
			t.Fatalf("amqp consumer got %+v", m)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("no message from websocket reached the amqp consumer")
	}

	// /metrics reports connections, traffic, depth, lag and fsyncs.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	metric := func(pattern string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in /metrics", pattern)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := metric(`wharf_connections\{protocol="kafka"\}`); v < 1 {
		t.Errorf("kafka connections %v", v)
	}
	if v := metric(`wharf_connections\{protocol="amqp"\}`); v != 1 {
		t.Errorf("amqp connections %v", v)
	}
	if v := metric(`wharf_connections\{protocol="websocket"\}`); v != 1 {
		t.Errorf("websocket connections %v", v)
	}
	if v := metric(`wharf_topic_records_in_total\{partition="0",topic="orders"\}`); v != 4 {
		t.Errorf("records in %v, want 4", v)
	}
	if v := metric(`wharf_partition_high_watermark\{partition="0",topic="orders"\}`); v != 4 {
		t.Errorf("high watermark %v, want 4", v)
	}
	if v := metric(`wharf_consumer_group_lag\{group="audit",partition="0",topic="orders"\}`); v != 0 {
		t.Errorf("lag %v, want 0", v)
	}
	if v := metric(`wharf_queue_messages_in_total\{queue="to-ws",vhost="/"\}`); v != 1 {
		t.Errorf("queue messages in %v", v)
	}
	if v := metric(`wharf_queue_messages_out_total\{queue="from-ws",vhost="/"\}`); v != 1 {
		t.Errorf("queue messages out %v", v)
	}
	if v := metric(`wharf_queue_messages_ready\{queue="to-ws",vhost="/"\}`); v != 0 {
		t.Errorf("queue depth %v", v)
	}
	if v := metric(`wharf_fsync_duration_seconds_count`); v < 1 {
		t.Errorf("fsyncs observed %v", v)
	}
	if v := metric(`wharf_websocket_records_out_total`); v != 4 {
		t.Errorf("websocket records out %v, want 4", v)
	}
	metric(`wharf_websocket_slow_client_disconnects_total`)
}
