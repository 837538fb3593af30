package server

// Tests of the docs/protocol-mapping.md rows on records that cross between
// Kafka and AMQP: the gateway's topic faces reading a record written from
// an AMQP message, and bridge rules reading records into exchanges.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/config"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

// crossingProperties are rich AMQP properties, as an AMQP client sends
// them.
func crossingProperties() wire.Properties {
	return wire.Properties{
		ContentType: "application/json", DeliveryMode: 2, Priority: 5, CorrelationID: "corr-7", MessageID: "msg-7",
		Timestamp: time.Unix(1700000002, 0), Type: "order.created", AppID: "shop", ReplyTo: "replies",
		Headers: wire.Table{
			"tenant": "acme", "qty": int32(3), "big": int64(1 << 40), "ok": true, "ratio": 0.5,
			"nested": wire.Table{"a": "b", "n": int16(-2)}, "list": []any{"x", int32(1)},
		},
	}
}

// crossingPropsJSON is crossingProperties in the JSON faces' form.
const crossingPropsJSON = `{
	"content_type": "application/json", "delivery_mode": 2, "priority": 5, "correlation_id": "corr-7",
	"message_id": "msg-7", "timestamp": 1700000002, "type": "order.created", "app_id": "shop", "reply_to": "replies",
	"headers": {"tenant": "acme", "qty": 3, "big": 1099511627776, "ok": true, "ratio": 0.5,
		"nested": {"a": "b", "n": -2}, "list": ["x", 1]}
}`

// kafkaRecordOf is a broker record as franz-go produces it.
func kafkaRecordOf(topic string, rec broker.Record) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

// TestMappingAMQPPropertiesThroughTopic: an AMQP message with rich
// properties, written to a Kafka topic as the crossing writes it
// (broker.RecordFromMessage, produced over Kafka), is read by a WebSocket
// topic subscription, a REST fetch and a gRPC topic subscription with its
// properties decoded and its exchange; the WebSocket client publishes it
// back to that exchange and an AMQP consumer receives the original
// properties, integers widened to 64 bits as on every JSON face. Rows
// "AMQP properties through a topic".
func TestMappingAMQPPropertiesThroughTopic(t *testing.T) {
	httpAddr, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ch := amqpChannel(t, amqpDial(t, amqpAddr))
	declareBridgeTarget(t, ch, "cross.x", "eu.new", map[string]string{"cross-classic": "classic"})

	orig := crossingProperties()
	enc, err := wire.EncodeProperties(&orig)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":7}`
	rec, err := broker.RecordFromMessage(&broker.Message{Exchange: "cross.x", RoutingKey: "eu.new", Properties: enc, Body: []byte(body), Persistent: true, Timestamp: 1700000002123})
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkaClient(t, kafkaAddr, kgo.AllowAutoTopicCreation())
	produceSync(t, ctx, cl, kafkaRecordOf("cross-t", rec))

	// WebSocket: the record frame carries the properties and the exchange;
	// x-amqp-properties is not among its headers.
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "s", "topic": "cross-t", "from": "earliest"})
	f := wsReadType(t, ctx, ws, "record")
	sameJSON(t, "websocket record properties", f["properties"], crossingPropsJSON)
	var key, value, exchange string
	var headers []struct {
		Key string `json:"key"`
	}
	for name, dst := range map[string]any{"key": &key, "value": &value, "exchange": &exchange, "headers": &headers} {
		if err := json.Unmarshal(f[name], dst); err != nil {
			t.Fatalf("record field %s %s: %v", name, f[name], err)
		}
	}
	if key != "eu.new" || value != body || exchange != "cross.x" {
		t.Errorf("record key %q value %q exchange %q", key, value, exchange)
	}
	var sawExchange bool
	for _, h := range headers {
		if h.Key == broker.HeaderAMQPProperties {
			t.Errorf("x-amqp-properties is among the record's headers")
		}
		sawExchange = sawExchange || h.Key == broker.HeaderAMQPExchange
	}
	if !sawExchange {
		t.Errorf("x-amqp-exchange is not among the record's headers")
	}

	// REST fetch: the same fields.
	status, raw := restRaw(t, http.MethodGet, "http://"+httpAddr+"/api/v1/topics/cross-t/partitions/0/records?offset=earliest", nil)
	if status != http.StatusOK {
		t.Fatalf("rest fetch: %d %s", status, raw)
	}
	var fetched struct {
		Records []map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(raw, &fetched); err != nil || len(fetched.Records) != 1 {
		t.Fatalf("rest fetch %s: %v", raw, err)
	}
	sameJSON(t, "rest record properties", fetched.Records[0]["properties"], crossingPropsJSON)
	sameJSON(t, "rest record exchange", fetched.Records[0]["exchange"], `"cross.x"`)

	// gRPC: the properties as a Properties message.
	st, err := grpcMessaging(httpAddr).SubscribeTopic(ctx, connect.NewRequest(&wharfv1.SubscribeTopicRequest{
		Topic: "cross-t", Start: wharfv1.Start_START_EARLIEST}))
	if err != nil {
		t.Fatal(err)
	}
	var gr *wharfv1.Record
	for gr == nil && st.Receive() {
		gr = st.Msg().GetRecord()
	}
	st.Close()
	if gr == nil {
		t.Fatalf("grpc topic subscription: %v", st.Err())
	}
	gp := gr.GetProperties()
	if gr.GetExchange() != "cross.x" || gp.GetContentType() != "application/json" || gp.GetDeliveryMode() != 2 || gp.GetPriority() != 5 ||
		gp.GetCorrelationId() != "corr-7" || gp.GetMessageId() != "msg-7" || gp.GetTimestamp() != 1700000002 ||
		gp.GetHeaders().GetFields()["tenant"].GetStringValue() != "acme" {
		t.Errorf("grpc record exchange %q properties %v", gr.GetExchange(), gp)
	}
	for _, h := range gr.GetHeaders() {
		if h.GetKey() == broker.HeaderAMQPProperties {
			t.Errorf("x-amqp-properties is among the grpc record's headers")
		}
	}

	// Back to AMQP through the WebSocket client, as it read the record.
	wsWrite(t, ctx, ws, map[string]any{"type": "publish", "id": "p", "exchange": exchange, "routing_key": key,
		"properties": f["properties"], "body": value})
	ok := wsReadType(t, ctx, ws, "ok")
	sameJSON(t, "publish answer", ok, `{"type":"ok","id":"p","routed":1}`)
	d := consumeN(t, ctx, ch, "cross-classic", 1)[0]
	if string(d.Body) != body || d.Exchange != "cross.x" || d.RoutingKey != "eu.new" {
		t.Errorf("delivery body %q exchange %q key %q", d.Body, d.Exchange, d.RoutingKey)
	}
	if d.ContentType != orig.ContentType || d.DeliveryMode != orig.DeliveryMode || d.Priority != orig.Priority ||
		d.CorrelationId != orig.CorrelationID || d.MessageId != orig.MessageID || !d.Timestamp.Equal(orig.Timestamp) ||
		d.Type != orig.Type || d.AppId != orig.AppID || d.ReplyTo != orig.ReplyTo {
		t.Errorf("delivery properties %+v, want %+v", d, orig)
	}
	// Integers come back as 64-bit ones (the JSON faces' documented
	// widening); everything else as it was.
	want := amqp091.Table{
		"tenant": "acme", "qty": int64(3), "big": int64(1 << 40), "ok": true, "ratio": 0.5,
		"nested": amqp091.Table{"a": "b", "n": int64(-2)}, "list": []any{"x", int64(1)},
	}
	if !tablesEqual(d.Headers, want) {
		t.Errorf("delivery headers %v, want %v", d.Headers, want)
	}
}

// TestMappingKafkaToAMQPBridge: what a bridge rule makes of a Kafka record,
// row by row of docs/protocol-mapping.md's "Kafka → AMQP through a bridge":
// key, value, headers (UTF-8 or not), timestamp, null key and value, a key
// longer than 255 bytes, and a record written from an AMQP message
// (x-amqp-properties restored, x-amqp-exchange of another exchange).
func TestMappingKafkaToAMQPBridge(t *testing.T) {
	ctx := bridgeCtx(t)
	s := startTestServer(t, bridgeConfig(t.TempDir(),
		config.BridgeConfig{Name: "map", Topic: "map-bridge", Exchange: "map-bridge.x", Start: "earliest"}), Options{})
	ch := amqpChannel(t, amqpDial(t, s.amqpAddr))
	if err := ch.ExchangeDeclare("map-bridge.x", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("map-bridge-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("map-bridge-q", "", "map-bridge.x", false, nil); err != nil {
		t.Fatal(err)
	}

	ts := time.UnixMilli(1700000003456)
	longKey := strings.Repeat("k", 300)
	orig := crossingProperties()
	enc, err := wire.EncodeProperties(&orig)
	if err != nil {
		t.Fatal(err)
	}
	fromAMQP, err := broker.RecordFromMessage(&broker.Message{Exchange: "elsewhere.x", RoutingKey: "eu.new", Properties: enc, Body: []byte("from amqp"), Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkaClient(t, s.kafkaAddr, kgo.AllowAutoTopicCreation())
	produceSync(t, ctx, cl,
		&kgo.Record{Topic: "map-bridge", Key: []byte("rk"), Value: []byte("v"), Timestamp: ts, Headers: []kgo.RecordHeader{
			{Key: "text", Value: []byte("héllo")}, {Key: "bin", Value: []byte{0xff, 0x00}}, {Key: "empty", Value: []byte{}}}},
		&kgo.Record{Topic: "map-bridge", Timestamp: ts},
		&kgo.Record{Topic: "map-bridge", Key: []byte(longKey), Value: []byte("long"), Timestamp: ts},
		kafkaRecordOf("map-bridge", fromAMQP),
	)
	ds := consumeN(t, ctx, ch, "map-bridge-q", 4)

	// Key, value, headers, timestamp.
	d := ds[0]
	if d.RoutingKey != "rk" || string(d.Body) != "v" || d.DeliveryMode != 2 || !d.Timestamp.Equal(ts.Truncate(time.Second)) || d.Exchange != "map-bridge.x" {
		t.Errorf("record 0: key %q body %q mode %d timestamp %v exchange %q", d.RoutingKey, d.Body, d.DeliveryMode, d.Timestamp, d.Exchange)
	}
	if d.Headers["text"] != "héllo" || !sameBytes(asBytes(d.Headers["bin"]), []byte{0xff, 0x00}) || d.Headers["empty"] != "" {
		t.Errorf("record 0 headers %v", d.Headers)
	}
	if d.Headers[broker.HeaderKafkaTopic] != "map-bridge" || d.Headers[broker.HeaderKafkaPartition] != int32(0) || d.Headers[broker.HeaderKafkaOffset] != int64(0) {
		t.Errorf("record 0 provenance headers %v", d.Headers)
	}
	// Null key and value: empty routing key and body.
	if d := ds[1]; d.RoutingKey != "" || len(d.Body) != 0 || d.Headers[broker.HeaderKafkaOffset] != int64(1) {
		t.Errorf("record 1 (null key and value): key %q body %q headers %v", d.RoutingKey, d.Body, d.Headers)
	}
	// A key longer than 255 bytes: empty routing key, x-kafka-key.
	if d := ds[2]; d.RoutingKey != "" || string(asBytes(d.Headers[broker.HeaderKafkaKey])) != longKey {
		t.Errorf("record 2 (long key): routing key %q, x-kafka-key %v", d.RoutingKey, d.Headers[broker.HeaderKafkaKey])
	}
	// From AMQP: the original properties, plus the provenance headers.
	d = ds[3]
	if string(d.Body) != "from amqp" || d.RoutingKey != "eu.new" || d.Exchange != "map-bridge.x" || d.ContentType != orig.ContentType ||
		d.Priority != orig.Priority || d.CorrelationId != orig.CorrelationID || d.MessageId != orig.MessageID ||
		!d.Timestamp.Equal(orig.Timestamp) || d.ReplyTo != orig.ReplyTo || d.AppId != orig.AppID || d.Type != orig.Type {
		t.Errorf("record 3 (from AMQP): %+v, want the properties %+v", d, orig)
	}
	want := amqp091.Table{
		"tenant": "acme", "qty": int32(3), "big": int64(1 << 40), "ok": true, "ratio": 0.5,
		"nested": amqp091.Table{"a": "b", "n": int16(-2)}, "list": []any{"x", int32(1)},
		broker.HeaderKafkaTopic: "map-bridge", broker.HeaderKafkaPartition: int32(0), broker.HeaderKafkaOffset: int64(3),
	}
	if !tablesEqual(d.Headers, want) {
		t.Errorf("record 3 headers %v, want %v", d.Headers, want)
	}
}

// asBytes returns a header value that should be a byte array.
func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string: // a client that decodes byte arrays as strings
		if b, err := base64.StdEncoding.DecodeString(x); err == nil {
			return b
		}
	}
	return nil
}
