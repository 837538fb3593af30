package server

// Tests of docs/protocol-mapping.md: each test sends one message with every
// field the mapping table lists over one protocol and reads it back over
// the others, over real sockets against a running server.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/structpb"

	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
)

// canonicalJSON re-encodes a JSON text with sorted keys and numbers as
// written, so two texts compare equal when they hold the same values.
func canonicalJSON(t *testing.T, raw []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// sameJSON fails unless got (a decoded value or raw JSON) holds the values
// of the JSON text want.
func sameJSON(t *testing.T, where string, got any, want string) {
	t.Helper()
	raw, ok := got.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(got); err != nil {
			t.Fatalf("%s: encoding %v: %v", where, got, err)
		}
	}
	if g, w := canonicalJSON(t, raw), canonicalJSON(t, []byte(want)); g != w {
		t.Errorf("%s:\n got %s\nwant %s", where, g, w)
	}
}

// restRaw sends a JSON request as guest and returns the status and the raw
// answer.
func restRaw(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// wsReadRaw reads the next frame of a type, as raw JSON fields.
func wsReadType(t *testing.T, ctx context.Context, c *websocket.Conn, typ string) map[string]json.RawMessage {
	t.Helper()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		var got string
		_ = json.Unmarshal(m["type"], &got)
		if got == typ {
			return m
		}
		if got == "error" {
			t.Fatalf("websocket error frame %s", data)
		}
	}
}

// mappingHeaders is an AMQP header table with a value of every field type.
func mappingHeaders() amqp091.Table {
	return amqp091.Table{
		"str":     "text",
		"int8":    int8(-8),
		"uint8":   uint8(200),
		"int16":   int16(-300),
		"uint16":  uint16(60000),
		"int32":   int32(-70000),
		"uint32":  uint32(4000000000),
		"int64":   int64(1<<60 + 1),
		"float32": float32(1.5),
		"float64": 2.25,
		"whole":   3.0,
		"nan":     math.NaN(),
		"inf":     math.Inf(1),
		"neginf":  math.Inf(-1),
		"decimal": amqp091.Decimal{Scale: 2, Value: 1234},
		"bytes":   []byte{0, 1, 0xff},
		"time":    time.Unix(1700000000, 0),
		"bool":    true,
		"void":    nil,
		"table":   amqp091.Table{"a": int32(1), "b": amqp091.Table{"c": "d"}},
		"array":   []any{"x", int32(2), []byte("y"), amqp091.Table{"e": false}},
	}
}

// mappingHeadersJSON is what mappingHeaders become on the JSON faces.
const mappingHeadersJSON = `{
	"str": "text", "int8": -8, "uint8": 200, "int16": -300, "uint16": 60000,
	"int32": -70000, "uint32": 4000000000, "int64": 1152921504606846977,
	"float32": 1.5, "float64": 2.25, "whole": 3,
	"nan": "NaN", "inf": "Infinity", "neginf": "-Infinity",
	"decimal": "12.34", "bytes": "AAH/", "time": 1700000000, "bool": true, "void": null,
	"table": {"a": 1, "b": {"c": "d"}}, "array": ["x", 2, "eQ==", {"e": false}]
}`

// mappingPublishing is an AMQP message with every basic property set.
func mappingPublishing(body string) amqp091.Publishing {
	return amqp091.Publishing{
		ContentType: "application/json", ContentEncoding: "gzip", Headers: mappingHeaders(),
		DeliveryMode: 2, Priority: 7, CorrelationId: "corr-1", ReplyTo: "replies", Expiration: "60000",
		MessageId: "msg-1", Timestamp: time.Unix(1700000001, 0), Type: "order.created", UserId: "guest",
		AppId: "mapping-test", Body: []byte(body),
	}
}

// mappingPropsJSON is mappingPublishing's properties on the JSON faces,
// headers aside.
const mappingPropsJSON = `{
	"content_type": "application/json", "content_encoding": "gzip", "delivery_mode": 2, "priority": 7,
	"correlation_id": "corr-1", "reply_to": "replies", "expiration": "60000", "message_id": "msg-1",
	"timestamp": 1700000001, "type": "order.created", "user_id": "guest", "app_id": "mapping-test"
}`

func mappingChannel(t *testing.T, amqpAddr string) *amqp091.Channel {
	t.Helper()
	ac, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ac.Close() })
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch
}

// publishConfirmed publishes and waits for the broker's confirm.
func publishConfirmed(t *testing.T, ctx context.Context, ch *amqp091.Channel, exchange, key string, p amqp091.Publishing) {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		t.Fatalf("amqp publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("amqp publish confirm: %v %v", ok, err)
	}
}

// TestMappingAMQPToGateway: a message published over AMQP with every
// property and a header of every field type, through a direct exchange,
// read over a WebSocket queue subscription, a REST get and a gRPC queue
// subscription. Rows "AMQP → WebSocket" and "AMQP → REST/gRPC".
func TestMappingAMQPToGateway(t *testing.T) {
	httpAddr, _, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	if err := ch.ExchangeDeclare("map.x", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"map-ws", "map-rest", "map-grpc"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, "rk."+q, "map.x", false, nil); err != nil {
			t.Fatal(err)
		}
		publishConfirmed(t, ctx, ch, "map.x", "rk."+q, mappingPublishing("body of "+q))
	}
	wantProps := func(headers string) string {
		return strings.TrimSuffix(strings.TrimSpace(mappingPropsJSON), "}") + `, "headers": ` + headers + `}`
	}

	// WebSocket: the delivery frame, and a second delivery after a nack
	// with requeue, which is marked redelivered.
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "q", "queue": "map-ws", "prefetch": 1})
	d := wsReadType(t, ctx, ws, "delivery")
	sameJSON(t, "websocket properties", d["properties"], wantProps(mappingHeadersJSON))
	sameJSON(t, "websocket envelope", map[string]json.RawMessage{"exchange": d["exchange"], "routing_key": d["routing_key"],
		"redelivered": d["redelivered"], "body": d["body"], "queue": d["queue"]},
		`{"exchange": "map.x", "routing_key": "rk.map-ws", "redelivered": false, "body": "body of map-ws", "queue": "map-ws"}`)
	var tag uint64
	if err := json.Unmarshal(d["tag"], &tag); err != nil {
		t.Fatal(err)
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "nack", "sub": d["sub"], "tag": tag, "requeue": true})
	d = wsReadType(t, ctx, ws, "delivery")
	sameJSON(t, "websocket redelivery", d["redelivered"], `true`)

	// REST get: ack_requeue_true puts the message back redelivered, so a
	// second get sees the flag.
	url := "http://" + httpAddr + "/api/v1/vhosts/%2F/queues/map-rest/get"
	for i, want := range []string{"false", "true"} {
		mode := "ack_requeue_true"
		if i == 1 {
			mode = "ack_requeue_false"
		}
		status, raw := restRaw(t, http.MethodPost, url, map[string]any{"count": 1, "ackmode": mode})
		if status != http.StatusOK {
			t.Fatalf("rest get: %d %s", status, raw)
		}
		var ans struct {
			Messages []map[string]json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil || len(ans.Messages) != 1 {
			t.Fatalf("rest get answer %s: %v", raw, err)
		}
		m := ans.Messages[0]
		sameJSON(t, "rest properties", m["properties"], wantProps(mappingHeadersJSON))
		sameJSON(t, "rest envelope", map[string]json.RawMessage{"exchange": m["exchange"], "routing_key": m["routing_key"],
			"redelivered": m["redelivered"], "body": m["body"]},
			`{"exchange": "map.x", "routing_key": "rk.map-rest", "redelivered": `+want+`, "body": "body of map-rest"}`)
	}

	// gRPC: headers are a google.protobuf.Struct, whose numbers are
	// doubles: the 64-bit integer 2^60+1 loses its low bits and is the
	// double 2^60, which encoding/json writes as 1152921504606847000.
	grpcHeaders := strings.Replace(mappingHeadersJSON, "1152921504606846977", "1152921504606847000", 1)
	st := grpcMessaging(httpAddr).SubscribeQueue(ctx)
	if err := st.Send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{
		Subscribe: &wharfv1.QueueSubscription{Queue: "map-grpc", Prefetch: 1}}}); err != nil {
		t.Fatal(err)
	}
	var gd *wharfv1.Delivery
	for gd == nil {
		resp, err := st.Receive()
		if err != nil {
			t.Fatalf("grpc subscribe queue: %v", err)
		}
		gd = resp.GetDelivery()
	}
	_ = st.CloseRequest()
	gp := gd.GetProperties()
	if got := gp.GetHeaders().GetFields()["int64"].GetNumberValue(); got != float64(1<<60) {
		t.Errorf("grpc int64 header %v, want the double 2^60", got)
	}
	gotProps := map[string]any{
		"content_type": gp.GetContentType(), "content_encoding": gp.GetContentEncoding(), "delivery_mode": gp.GetDeliveryMode(),
		"priority": gp.GetPriority(), "correlation_id": gp.GetCorrelationId(), "reply_to": gp.GetReplyTo(),
		"expiration": gp.GetExpiration(), "message_id": gp.GetMessageId(), "timestamp": gp.GetTimestamp(),
		"type": gp.GetType(), "user_id": gp.GetUserId(), "app_id": gp.GetAppId(), "headers": gp.GetHeaders().AsMap(),
	}
	sameJSON(t, "grpc properties", gotProps, wantProps(grpcHeaders))
	if gd.GetExchange() != "map.x" || gd.GetRoutingKey() != "rk.map-grpc" || gd.GetRedelivered() || string(gd.GetBody()) != "body of map-grpc" || gd.GetQueue() != "map-grpc" {
		t.Errorf("grpc delivery %v", gd)
	}
}

// mappingHeadersIn are JSON headers with a value of every JSON type.
const mappingHeadersIn = `{
	"str": "text", "int": 42, "neg": -7, "big": 9007199254740993, "float": 1.25, "whole_float": 2.0,
	"exp": 1e3, "bool": false, "null": null, "object": {"a": [1, "b"]}, "array": [true, 1.5, {"c": null}]
}`

// TestMappingGatewayToAMQP: messages published over WebSocket, REST and
// gRPC into an exchange with every property set and JSON headers of every
// type, consumed over AMQP. Rows "WebSocket → AMQP" and "REST/gRPC →
// AMQP".
func TestMappingGatewayToAMQP(t *testing.T) {
	httpAddr, _, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	if err := ch.ExchangeDeclare("map.in", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("map-in", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("map-in", "from.#", "map.in", false, nil); err != nil {
		t.Fatal(err)
	}
	var props map[string]any
	dec := json.NewDecoder(strings.NewReader(strings.TrimSuffix(strings.TrimSpace(mappingPropsJSON), "}") + `, "headers": ` + mappingHeadersIn + `}`))
	dec.UseNumber()
	if err := dec.Decode(&props); err != nil {
		t.Fatal(err)
	}

	// WebSocket publish.
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "publish", "id": "p", "exchange": "map.in", "routing_key": "from.ws",
		"properties": props, "body": "ws body"})
	if ok := wsReadType(t, ctx, ws, "ok"); string(ok["routed"]) != "1" {
		t.Fatalf("websocket publish: %v", ok)
	}
	// REST publish, the body in base64.
	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/exchanges/map.in/publish",
		map[string]any{"routing_key": "from.rest", "properties": props, "body_b64": base64.StdEncoding.EncodeToString([]byte{0, 0xfe})})
	if status != http.StatusOK {
		t.Fatalf("rest publish: %d %s", status, raw)
	}
	// gRPC publish: headers are a Struct, numbers doubles.
	hs := map[string]any{}
	if err := json.Unmarshal([]byte(mappingHeadersIn), &hs); err != nil {
		t.Fatal(err)
	}
	gh, err := structpb.NewStruct(hs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = grpcMessaging(httpAddr).Publish(ctx, connect.NewRequest(&wharfv1.PublishRequest{Exchange: "map.in", RoutingKey: "from.grpc",
		Body: []byte("grpc body"), Properties: &wharfv1.Properties{
			ContentType: "application/json", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 7, CorrelationId: "corr-1",
			ReplyTo: "replies", Expiration: "60000", MessageId: "msg-1", Timestamp: 1700000001, Type: "order.created",
			UserId: "guest", AppId: "mapping-test", Headers: gh,
		}}))
	if err != nil {
		t.Fatalf("grpc publish: %v", err)
	}

	msgs, err := ch.Consume("map-in", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders := func(big, wholeFloat, exp any) amqp091.Table {
		return amqp091.Table{
			"str": "text", "int": int64(42), "neg": int64(-7), "big": big, "float": 1.25, "whole_float": wholeFloat,
			"exp": exp, "bool": false, "null": nil, "object": amqp091.Table{"a": []any{int64(1), "b"}},
			"array": []any{true, 1.5, amqp091.Table{"c": nil}},
		}
	}
	for _, want := range []struct {
		key     string
		body    []byte
		headers amqp091.Table
	}{
		// The JSON faces read numbers as written: an integer literal
		// is a long-long-int, exactly; 2.0 and 1e3 are doubles.
		{"from.ws", []byte("ws body"), wantHeaders(int64(9007199254740993), 2.0, 1000.0)},
		{"from.rest", []byte{0, 0xfe}, wantHeaders(int64(9007199254740993), 2.0, 1000.0)},
		// A Struct holds doubles: a whole double below 2^53 becomes a
		// long-long-int; 2^53+1 is the double 2^53 by then, which is
		// not below 2^53 and stays a double.
		{"from.grpc", []byte("grpc body"), wantHeaders(float64(9007199254740992), int64(2), int64(1000))},
	} {
		var m amqp091.Delivery
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatalf("no message %s reached the amqp consumer", want.key)
		}
		if m.RoutingKey != want.key || m.Exchange != "map.in" || m.Redelivered || !bytes.Equal(m.Body, want.body) {
			t.Errorf("%s: envelope %q %q %v body %q", want.key, m.Exchange, m.RoutingKey, m.Redelivered, m.Body)
		}
		if m.ContentType != "application/json" || m.ContentEncoding != "gzip" || m.DeliveryMode != 2 || m.Priority != 7 ||
			m.CorrelationId != "corr-1" || m.ReplyTo != "replies" || m.Expiration != "60000" || m.MessageId != "msg-1" ||
			!m.Timestamp.Equal(time.Unix(1700000001, 0)) || m.Type != "order.created" || m.UserId != "guest" || m.AppId != "mapping-test" {
			t.Errorf("%s: properties %+v", want.key, m)
		}
		if !tablesEqual(m.Headers, want.headers) {
			t.Errorf("%s: headers\n got %#v\nwant %#v", want.key, m.Headers, want.headers)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

// tablesEqual compares AMQP tables value by value with their Go types.
func tablesEqual(a, b amqp091.Table) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !valuesEqual(v, w) {
			return false
		}
	}
	return true
}

func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case amqp091.Table:
		y, ok := b.(amqp091.Table)
		return ok && tablesEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

// mappingRecords are Kafka records covering every record row: a null key,
// a binary key, an empty key; text, binary, empty and null values; header
// values null, empty, binary and text, repeated header keys, in order; and
// timestamps set by the producer.
func mappingRecords(topic string) []*kgo.Record {
	return []*kgo.Record{
		{Topic: topic, Partition: 1, Value: []byte("v1"), Timestamp: time.UnixMilli(1700000000123), Headers: []kgo.RecordHeader{
			{Key: "h-null"}, {Key: "h-empty", Value: []byte{}}, {Key: "h-bin", Value: []byte{0xff, 0}},
			{Key: "h-text", Value: []byte("t")}, {Key: "dup", Value: []byte("1")}, {Key: "dup", Value: []byte("2")},
		}},
		{Topic: topic, Partition: 1, Key: []byte{0xff, 0}, Timestamp: time.UnixMilli(1700000000124)},
		{Topic: topic, Partition: 1, Key: []byte{}, Value: []byte{}, Timestamp: time.UnixMilli(1700000000125)},
		{Topic: topic, Partition: 1, Key: []byte("k"), Value: []byte{0, 0xfe}, Timestamp: time.UnixMilli(1700000000126)},
	}
}

// mappingRecordsJSON is what mappingRecords become on the JSON faces, at
// offsets 0 to 3 of partition 1.
const mappingRecordsJSON = `[
	{"topic": "map-k", "partition": 1, "offset": 0, "timestamp": 1700000000123, "value": "v1", "headers": [
		{"key": "h-null"}, {"key": "h-empty", "value": ""}, {"key": "h-bin", "value_b64": "/wA="},
		{"key": "h-text", "value": "t"}, {"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]},
	{"topic": "map-k", "partition": 1, "offset": 1, "timestamp": 1700000000124, "key_b64": "/wA=", "null_value": true},
	{"topic": "map-k", "partition": 1, "offset": 2, "timestamp": 1700000000125, "key": "", "value": ""},
	{"topic": "map-k", "partition": 1, "offset": 3, "timestamp": 1700000000126, "key": "k", "value_b64": "AP4="}
]`

// TestMappingKafkaToGateway: records produced over Kafka read over a
// WebSocket topic subscription, a REST fetch and a gRPC topic
// subscription. Row "Kafka → WebSocket/REST/gRPC".
func TestMappingKafkaToGateway(t *testing.T) {
	httpAddr, kafkaAddr, _ := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kafkaClient(t, kafkaAddr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "map-k"); err != nil {
		t.Fatal(err)
	}
	for _, r := range mappingRecords("map-k") {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("kafka produce: %v", err)
		}
	}
	var want []json.RawMessage
	if err := json.Unmarshal([]byte(mappingRecordsJSON), &want); err != nil {
		t.Fatal(err)
	}

	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "s", "topic": "map-k", "partitions": []int{1}, "from": "earliest"})
	for i := range want {
		f := wsReadType(t, ctx, ws, "record")
		delete(f, "type")
		delete(f, "sub")
		sameJSON(t, "websocket record", f, string(want[i]))
	}

	status, raw := restRaw(t, http.MethodGet, "http://"+httpAddr+"/api/v1/topics/map-k/partitions/1/records?offset=earliest", nil)
	if status != http.StatusOK {
		t.Fatalf("rest fetch: %d %s", status, raw)
	}
	var fetched struct {
		Records json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(raw, &fetched); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "rest records", fetched.Records, mappingRecordsJSON)

	// gRPC carries bytes as bytes; an absent optional key or value is
	// null, a present empty one empty.
	st, err := grpcMessaging(httpAddr).SubscribeTopic(ctx, connect.NewRequest(&wharfv1.SubscribeTopicRequest{
		Topic: "map-k", Partitions: []int32{1}, Start: wharfv1.Start_START_EARLIEST}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []*wharfv1.Record
	for len(got) < len(want) && st.Receive() {
		if r := st.Msg().GetRecord(); r != nil {
			got = append(got, r)
		}
	}
	if len(got) < len(want) {
		t.Fatalf("grpc topic subscription: %d records, %v", len(got), st.Err())
	}
	for i, src := range mappingRecords("map-k") {
		g := got[i]
		if g.GetTopic() != "map-k" || g.GetPartition() != 1 || g.GetOffset() != int64(i) || g.GetTimestampMs() != src.Timestamp.UnixMilli() ||
			!sameBytes(g.Key, src.Key) || !sameBytes(g.Value, src.Value) || len(g.GetHeaders()) != len(src.Headers) {
			t.Fatalf("grpc record %d: %v, want %+v", i, g, src)
		}
		for j, h := range g.GetHeaders() {
			if h.GetKey() != src.Headers[j].Key || !sameBytes(h.Value, src.Headers[j].Value) {
				t.Errorf("grpc record %d header %d: %v, want %+v", i, j, h, src.Headers[j])
			}
		}
	}
}

// sameBytes compares bytes, a null (nil) differing from an empty slice.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// TestMappingGatewayToKafka: records produced over WebSocket, REST and
// gRPC with null, empty, binary and text keys, values and header values,
// an explicit partition and timestamp, read over Kafka. Row
// "WebSocket/REST/gRPC → Kafka".
func TestMappingGatewayToKafka(t *testing.T) {
	httpAddr, kafkaAddr, _ := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kafkaClient(t, kafkaAddr)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "map-in"); err != nil {
		t.Fatal(err)
	}
	want := mappingRecords("map-in")

	// WebSocket: the first two records as text frames, the third with its
	// empty value as a binary frame's payload.
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "w0", "topic": "map-in", "partition": 1, "timestamp": 1700000000123,
		"value": "v1", "headers": []map[string]any{{"key": "h-null"}, {"key": "h-empty", "value": ""}, {"key": "h-bin", "value_b64": "/wA="},
			{"key": "h-text", "value": "t"}, {"key": "dup", "value": "1"}, {"key": "dup", "value_b64": "Mg=="}}})
	wsReadType(t, ctx, ws, "ok")
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "w1", "topic": "map-in", "partition": 1, "timestamp": 1700000000124, "key_b64": "/wA="})
	wsReadType(t, ctx, ws, "ok")
	env, _ := json.Marshal(map[string]any{"type": "produce", "id": "w2", "topic": "map-in", "partition": 1, "timestamp": 1700000000125, "key": ""})
	frame := append([]byte{0, 0, 0, byte(len(env))}, env...)
	if err := ws.Write(ctx, websocket.MessageBinary, frame); err != nil {
		t.Fatal(err)
	}
	wsReadType(t, ctx, ws, "ok")
	wsWrite(t, ctx, ws, map[string]any{"type": "produce", "id": "w3", "topic": "map-in", "partition": 1, "timestamp": 1700000000126, "key": "k", "value_b64": "AP4="})
	wsReadType(t, ctx, ws, "ok")

	// REST: the same four records in one request.
	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/topics/map-in/records", map[string]any{"records": []map[string]any{
		{"partition": 1, "timestamp": 1700000000123, "value": "v1", "headers": []map[string]any{{"key": "h-null"}, {"key": "h-empty", "value": ""},
			{"key": "h-bin", "value_b64": "/wA="}, {"key": "h-text", "value": "t"}, {"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}}},
		{"partition": 1, "timestamp": 1700000000124, "key_b64": "/wA="},
		{"partition": 1, "timestamp": 1700000000125, "key": "", "value_b64": ""},
		{"partition": 1, "timestamp": 1700000000126, "key": "k", "value_b64": "AP4="},
	}})
	if status != http.StatusOK {
		t.Fatalf("rest produce: %d %s", status, raw)
	}

	// gRPC: absent optional fields are nulls.
	var grecs []*wharfv1.ProduceRecord
	one := int32(1)
	for _, r := range want {
		g := &wharfv1.ProduceRecord{Key: r.Key, Value: r.Value, Partition: &one, TimestampMs: r.Timestamp.UnixMilli()}
		for _, h := range r.Headers {
			g.Headers = append(g.Headers, &wharfv1.Header{Key: h.Key, Value: h.Value})
		}
		grecs = append(grecs, g)
	}
	if _, err := grpcMessaging(httpAddr).Produce(ctx, connect.NewRequest(&wharfv1.ProduceRequest{Topic: "map-in", Records: grecs})); err != nil {
		t.Fatalf("grpc produce: %v", err)
	}

	rd := kafkaClient(t, kafkaAddr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"map-in": {1: kgo.NewOffset().AtStart()}}))
	var got []*kgo.Record
	for len(got) < 3*len(want) {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafka fetch after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	for i, g := range got {
		face := []string{"websocket", "rest", "grpc"}[i/len(want)]
		w := want[i%len(want)]
		if g.ProducerID != -1 {
			t.Errorf("%s record %d: producer id %d, want -1 (not idempotent)", face, i, g.ProducerID)
		}
		if g.Partition != 1 || g.Offset != int64(i) || !g.Timestamp.Equal(w.Timestamp) || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) ||
			len(g.Headers) != len(w.Headers) {
			t.Fatalf("%s record %d: partition %d offset %d ts %v key %q value %q headers %v; want key %q value %q headers %v",
				face, i, g.Partition, g.Offset, g.Timestamp, g.Key, g.Value, g.Headers, w.Key, w.Value, w.Headers)
		}
		for j, h := range g.Headers {
			if h.Key != w.Headers[j].Key || !sameBytes(h.Value, w.Headers[j].Value) {
				t.Errorf("%s record %d header %d: %q=%q (nil %v), want %q=%q (nil %v)", face, i, j, h.Key, h.Value, h.Value == nil,
					w.Headers[j].Key, w.Headers[j].Value, w.Headers[j].Value == nil)
			}
		}
	}
}

// TestMappingNonUTF8Strings: AMQP strings (properties, header keys and
// long-string values, the routing key) and Kafka header keys are bytes;
// every face that carries them as text replaces each byte that is not
// UTF-8 with U+FFFD, gRPC as the JSON faces do. gRPC used to fail the whole
// subscription on such a message or record, each time it was delivered.
func TestMappingNonUTF8Strings(t *testing.T) {
	httpAddr, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const bad, fixed = "x\xff\xfey", "x\uFFFD\uFFFDy"
	ch := mappingChannel(t, amqpAddr)
	if err := ch.ExchangeDeclare("map.utf8", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"u-ws", "u-rest", "u-grpc"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, "", "map.utf8", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	publishConfirmed(t, ctx, ch, "map.utf8", "rk-"+bad, amqp091.Publishing{ContentType: bad, MessageId: bad,
		Headers: amqp091.Table{"s": bad, "k-" + bad: "v", "t": amqp091.Table{"n": bad}}, Body: []byte("b")})
	wantProps := `{"content_type": "` + fixed + `", "message_id": "` + fixed + `", "headers": {"s": "` + fixed + `", "k-` + fixed + `": "v", "t": {"n": "` + fixed + `"}}}`

	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "q", "queue": "u-ws", "prefetch": 1})
	d := wsReadType(t, ctx, ws, "delivery")
	sameJSON(t, "websocket properties", d["properties"], wantProps)
	sameJSON(t, "websocket routing key", d["routing_key"], `"rk-`+fixed+`"`)

	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/queues/u-rest/get", map[string]any{"count": 1, "ackmode": "ack_requeue_false"})
	var ans struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(raw, &ans); status != http.StatusOK || err != nil || len(ans.Messages) != 1 {
		t.Fatalf("rest get: %d %s %v", status, raw, err)
	}
	sameJSON(t, "rest properties", ans.Messages[0]["properties"], wantProps)
	sameJSON(t, "rest routing key", ans.Messages[0]["routing_key"], `"rk-`+fixed+`"`)

	st := grpcMessaging(httpAddr).SubscribeQueue(ctx)
	if err := st.Send(&wharfv1.SubscribeQueueRequest{Request: &wharfv1.SubscribeQueueRequest_Subscribe{
		Subscribe: &wharfv1.QueueSubscription{Queue: "u-grpc", Prefetch: 1}}}); err != nil {
		t.Fatal(err)
	}
	var gd *wharfv1.Delivery
	for gd == nil {
		resp, err := st.Receive()
		if err != nil {
			t.Fatalf("grpc subscribe queue: %v", err)
		}
		gd = resp.GetDelivery()
	}
	_ = st.CloseRequest()
	gp := gd.GetProperties()
	sameJSON(t, "grpc properties", map[string]any{"content_type": gp.GetContentType(), "message_id": gp.GetMessageId(),
		"headers": gp.GetHeaders().AsMap()}, wantProps)
	if gd.GetRoutingKey() != "rk-"+fixed {
		t.Errorf("grpc routing key %q", gd.GetRoutingKey())
	}

	// A Kafka header key.
	cl := kafkaClient(t, kafkaAddr)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "map-utf8"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "map-utf8", Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: bad, Value: []byte("h")}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	status, raw = restRaw(t, http.MethodGet, "http://"+httpAddr+"/api/v1/topics/map-utf8/partitions/0/records?offset=earliest", nil)
	var fetched struct {
		Records []struct {
			Headers json.RawMessage `json:"headers"`
		} `json:"records"`
	}
	if err := json.Unmarshal(raw, &fetched); status != http.StatusOK || err != nil || len(fetched.Records) != 1 {
		t.Fatalf("rest fetch: %d %s %v", status, raw, err)
	}
	sameJSON(t, "rest record headers", fetched.Records[0].Headers, `[{"key": "`+fixed+`", "value": "h"}]`)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "t", "topic": "map-utf8", "from": "earliest"})
	sameJSON(t, "websocket record headers", wsReadType(t, ctx, ws, "record")["headers"], `[{"key": "`+fixed+`", "value": "h"}]`)
	ts, err := grpcMessaging(httpAddr).SubscribeTopic(ctx, connect.NewRequest(&wharfv1.SubscribeTopicRequest{Topic: "map-utf8", Start: wharfv1.Start_START_EARLIEST}))
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	var rec *wharfv1.Record
	for rec == nil && ts.Receive() {
		rec = ts.Msg().GetRecord()
	}
	if rec == nil {
		t.Fatalf("grpc topic subscription ended: %v", ts.Err())
	}
	if hs := rec.GetHeaders(); len(hs) != 1 || hs[0].GetKey() != fixed || string(hs[0].GetValue()) != "h" {
		t.Errorf("grpc record headers %v", hs)
	}
}

// TestMappingZeroValues: the JSON faces leave out absent properties (and
// zero-valued ones: they cannot tell the two apart), an empty headers table
// reads as none, and a record produced from a gateway face with timestamp 0
// or none gets the time of the produce.
func TestMappingZeroValues(t *testing.T) {
	httpAddr, kafkaAddr, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	if _, err := ch.QueueDeclare("zero", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ctx, ch, "", "zero", amqp091.Publishing{Headers: amqp091.Table{}, Body: []byte("plain")})
	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/queues/zero/get", map[string]any{"count": 1, "ackmode": "ack_requeue_true"})
	var ans struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(raw, &ans); status != http.StatusOK || err != nil || len(ans.Messages) != 1 {
		t.Fatalf("rest get: %d %s %v", status, raw, err)
	}
	sameJSON(t, "rest properties of a plain message", ans.Messages[0]["properties"], `{}`)
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "subscribe", "id": "q", "queue": "zero", "prefetch": 1})
	if d := wsReadType(t, ctx, ws, "delivery"); d["properties"] != nil {
		t.Errorf("websocket properties of a plain message: %s", d["properties"])
	}

	// Zero-valued properties from a gateway face are absent over AMQP.
	if _, err := ch.QueueDeclare("zero-in", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	wsWrite(t, ctx, ws, map[string]any{"type": "publish", "id": "p2", "exchange": "", "routing_key": "zero-in", "body": "z",
		"properties": map[string]any{"delivery_mode": 0, "priority": 0, "timestamp": 0, "content_type": "", "headers": map[string]any{}}})
	for {
		if ok := wsReadType(t, ctx, ws, "ok"); string(ok["id"]) == `"p2"` {
			break
		}
	}
	m, ok, err := ch.Get("zero-in", true)
	if err != nil || !ok {
		t.Fatalf("amqp get: %v %v", ok, err)
	}
	if m.DeliveryMode != 0 || m.Priority != 0 || !m.Timestamp.IsZero() || m.ContentType != "" || len(m.Headers) != 0 {
		t.Errorf("zero-valued properties over amqp: %+v", m)
	}

	// A record without a timestamp, or with 0, is stamped when produced.
	before := time.Now().UnixMilli()
	status, raw = restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/topics/zero-ts/records", map[string]any{"records": []map[string]any{
		{"value": "a", "timestamp": 0}, {"value": "b"}}})
	if status != http.StatusOK {
		t.Fatalf("rest produce: %d %s", status, raw)
	}
	after := time.Now().UnixMilli()
	rd := kafkaClient(t, kafkaAddr, kgo.ConsumeTopics("zero-ts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < 2 {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafka fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	for _, r := range got {
		if ts := r.Timestamp.UnixMilli(); ts < before || ts > after {
			t.Errorf("record %q timestamp %d, want the produce time, %d to %d", r.Value, ts, before, after)
		}
	}
}

// TestMappingSenderSelected: CC and BCC headers route a message published
// from a gateway face as they route an AMQP publish, and BCC is not
// delivered. A gateway publish used to ignore them: the message reached
// only its routing key's queue, BCC header and all.
func TestMappingSenderSelected(t *testing.T) {
	httpAddr, _, amqpAddr := runningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := mappingChannel(t, amqpAddr)
	for _, q := range []string{"ssd-main", "ssd-cc", "ssd-bcc", "ssd-none"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	headers := map[string]any{"CC": []any{"ssd-cc"}, "BCC": "ssd-bcc", "other": "kept"}
	ws := wsDial(t, ctx, httpAddr)
	wsWrite(t, ctx, ws, map[string]any{"type": "publish", "id": "p", "exchange": "", "routing_key": "ssd-main", "body": "ws",
		"properties": map[string]any{"headers": headers}})
	if ok := wsReadType(t, ctx, ws, "ok"); string(ok["routed"]) != "3" {
		t.Fatalf("websocket publish routed %s, want 3", ok["routed"])
	}
	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/exchanges/amq.default/publish",
		map[string]any{"routing_key": "ssd-main", "body": "rest", "properties": map[string]any{"headers": headers}})
	if status != http.StatusOK || canonicalJSON(t, raw) != `{"routed":3}` {
		t.Fatalf("rest publish: %d %s", status, raw)
	}
	gh, err := structpb.NewStruct(headers)
	if err != nil {
		t.Fatal(err)
	}
	res, err := grpcMessaging(httpAddr).Publish(ctx, connect.NewRequest(&wharfv1.PublishRequest{RoutingKey: "ssd-main", Body: []byte("grpc"),
		Properties: &wharfv1.Properties{Headers: gh}}))
	if err != nil || res.Msg.GetRouted() != 3 {
		t.Fatalf("grpc publish: %v %v", res, err)
	}
	for _, q := range []string{"ssd-main", "ssd-cc", "ssd-bcc"} {
		for _, body := range []string{"ws", "rest", "grpc"} {
			m, ok, err := ch.Get(q, true)
			if err != nil || !ok {
				t.Fatalf("amqp get %s: %v %v", q, ok, err)
			}
			if string(m.Body) != body || m.Headers["other"] != "kept" || !valuesEqual(m.Headers["CC"], []any{"ssd-cc"}) {
				t.Errorf("%s: %q headers %v", q, m.Body, m.Headers)
			}
			if _, ok := m.Headers["BCC"]; ok {
				t.Errorf("%s: %q delivered with its BCC header: %v", q, m.Body, m.Headers)
			}
		}
	}
	if _, ok, err := ch.Get("ssd-none", true); err != nil || ok {
		t.Errorf("a queue no key named got a message: %v %v", ok, err)
	}
}

// TestMappingReplyToFromGateway: a gateway face cannot make a direct
// reply-to request; a reply_to of amq.rabbitmq.reply-to it publishes is
// stored and delivered as given.
func TestMappingReplyToFromGateway(t *testing.T) {
	httpAddr, _, amqpAddr := runningServer(t)
	ch := mappingChannel(t, amqpAddr)
	if _, err := ch.QueueDeclare("requests", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	status, raw := restRaw(t, http.MethodPost, "http://"+httpAddr+"/api/v1/vhosts/%2F/exchanges/amq.default/publish",
		map[string]any{"routing_key": "requests", "body": "q", "properties": map[string]any{"reply_to": "amq.rabbitmq.reply-to"}})
	if status != http.StatusOK {
		t.Fatalf("rest publish: %d %s", status, raw)
	}
	m, ok, err := ch.Get("requests", true)
	if err != nil || !ok {
		t.Fatalf("amqp get: %v %v", ok, err)
	}
	if m.ReplyTo != "amq.rabbitmq.reply-to" {
		t.Errorf("reply_to %q", m.ReplyTo)
	}
}
