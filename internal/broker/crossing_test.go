package broker

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// propsWith encodes basic properties holding a content type, a headers
// table and delivery mode 2.
func propsWith(t testing.TB, contentType string, h Table) []byte {
	t.Helper()
	var bp basicProps
	bp.fields[0] = append([]byte{byte(len(contentType))}, contentType...)
	enc, err := appendWireTable(nil, h, 1)
	if err != nil {
		t.Fatal(err)
	}
	bp.fields[propIndexHeaders] = enc
	bp.fields[propIndexDeliveryMode] = []byte{2}
	return bp.encode()
}

func TestRecordFromMessage(t *testing.T) {
	props := propsWith(t, "text/plain", Table{"s": "x", "n": int32(-5), "b": true, "raw": []byte{0xff}, "v": nil,
		"t": Table{"k": "v"}, "a": []any{int8(1)}})
	msg := &Message{Exchange: "ex", RoutingKey: "rk", Properties: props, Body: []byte("body"), Persistent: true, Timestamp: 1234}
	rec, err := RecordFromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "rk" || string(rec.Value) != "body" || rec.Timestamp != 1234 {
		t.Fatalf("record %+v", rec)
	}
	want := []Header{hdr("a", []byte(`["A",[["b",1]]]`)), hdr("b", []byte("true")), hdr("n", []byte("-5")), hdr("raw", []byte{0xff}),
		hdr("s", []byte("x")), hdr("t", []byte(`{"k":["S","v"]}`)), hdr("v", []byte{}),
		hdr(HeaderAMQPExchange, []byte("ex")), hdr(HeaderAMQPProperties, props)}
	if len(rec.Headers) != len(want) {
		t.Fatalf("headers %q, want %q", rec.Headers, want)
	}
	for i, h := range want {
		if rec.Headers[i].Key != h.Key || !bytes.Equal(rec.Headers[i].Value, h.Value) {
			t.Errorf("header %d = %s:%q, want %s:%q", i, rec.Headers[i].Key, rec.Headers[i].Value, h.Key, h.Value)
		}
	}
	back := MessageFromRecord(rec)
	if back.Exchange != "ex" || back.RoutingKey != "rk" || !bytes.Equal(back.Properties, props) ||
		string(back.Body) != "body" || !back.Persistent || back.Timestamp != 1234 {
		t.Fatalf("round trip: %+v", back)
	}

	// No properties, default exchange, empty routing key: no headers, null key.
	rec, err = RecordFromMessage(&Message{Properties: []byte{0, 0}, Body: nil})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Key != nil || rec.Value == nil || len(rec.Headers) != 0 {
		t.Fatalf("bare record %+v", rec)
	}
	if _, err := RecordFromMessage(&Message{Properties: []byte{0x20, 0, 0, 0, 0, 9}}); err == nil {
		t.Fatal("malformed properties accepted")
	}
}

func TestMessageFromKafkaRecord(t *testing.T) {
	long := bytes.Repeat([]byte("k"), 300)
	rec := Record{Timestamp: 5_000_999, Key: []byte("key"), Value: nil,
		Headers: []Header{hdr("text", []byte("héllo")), hdr("bin", []byte{0xff, 0}), hdr("text", []byte("later"))}}
	msg := MessageFromRecord(rec)
	if msg.RoutingKey != "key" || msg.Exchange != "" || msg.Body == nil || len(msg.Body) != 0 || !msg.Persistent {
		t.Fatalf("message %+v", msg)
	}
	bp, err := splitProperties(msg.Properties)
	if err != nil {
		t.Fatal(err)
	}
	h, err := bp.headers()
	if err != nil {
		t.Fatal(err)
	}
	if h["text"] != "later" || !bytes.Equal(h["bin"].([]byte), []byte{0xff, 0}) || len(h) != 2 {
		t.Fatalf("headers %v", h)
	}
	if deliveryMode(&bp) != 2 || binary.BigEndian.Uint64(bp.fields[propIndexTimestamp]) != 5000 {
		t.Fatalf("properties %v", bp.fields)
	}

	msg = MessageFromRecord(Record{Key: long, Value: []byte("v")})
	bp, _ = splitProperties(msg.Properties)
	h, _ = bp.headers()
	if msg.RoutingKey != "" || !bytes.Equal(h[HeaderKafkaKey].([]byte), long) {
		t.Fatalf("long key: %q %v", msg.RoutingKey, h)
	}

	// Properties that do not decode are ignored, not trusted.
	msg = MessageFromRecord(Record{Value: []byte("v"), Headers: []Header{hdr(HeaderAMQPProperties, []byte{0x20, 0})}})
	if _, err := splitProperties(msg.Properties); err != nil || bytes.Equal(msg.Properties, []byte{0x20, 0}) {
		t.Fatalf("bad properties kept: %x", msg.Properties)
	}
}

func TestSetHeader(t *testing.T) {
	props := propsWith(t, "a/b", Table{"x": "y"})
	out, err := SetHeader(props, "x-stream-offset", int64(42))
	if err != nil {
		t.Fatal(err)
	}
	bp, _ := splitProperties(out)
	h, _ := bp.headers()
	if h["x"] != "y" || h["x-stream-offset"] != int64(42) || string(bp.fields[0][1:]) != "a/b" {
		t.Fatalf("headers %v fields %q", h, bp.fields)
	}
	out, err = SetHeader(nil, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	bp, _ = splitProperties(out)
	if h, _ := bp.headers(); h["k"] != "v" {
		t.Fatalf("from none: %v", h)
	}
}

// FuzzMessageFromRecord feeds records with arbitrary keys and headers,
// x-amqp-properties included, through the crossing in both directions: it
// never panics, and what it builds always decodes.
func FuzzMessageFromRecord(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "h", []byte("x"), []byte{0x20, 0, 0, 0, 0, 0})
	f.Add([]byte(nil), []byte(nil), HeaderAMQPProperties, []byte{0x80, 0, 3, 'a', '/', 'b'}, []byte{0xff})
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv, props []byte) {
		rec := Record{Key: key, Value: value, Timestamp: 1, Headers: []Header{hdr(hk, hv), hdr(HeaderAMQPProperties, props)}}
		msg := MessageFromRecord(rec)
		bp, err := splitProperties(msg.Properties)
		if err != nil {
			t.Fatalf("built properties do not decode: %v", err)
		}
		if _, err := bp.headers(); err != nil {
			t.Fatalf("built headers do not decode: %v", err)
		}
		back, err := RecordFromMessage(msg)
		if err != nil {
			t.Fatalf("message from a record does not cross back: %v", err)
		}
		if !bytes.Equal(back.Value, msg.Body) {
			t.Fatal("value changed")
		}
	})
}

func hdr(k string, v []byte) Header { return Header{Key: k, Value: v} }

// TestPropertyFieldOrder: message-id (flag bit 7) comes before timestamp
// (bit 6), as AMQP 0-9-1 orders them, when splitting properties and when
// building them from a record.
func TestPropertyFieldOrder(t *testing.T) {
	props := []byte{0x00, 0xc0, 2, 'm', '1', 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}
	bp, err := splitProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	if string(bp.fields[8]) != "\x02m1" || binary.BigEndian.Uint64(bp.fields[propIndexTimestamp]) != 0x6553f100 {
		t.Fatalf("fields %q", bp.fields)
	}
	if !bytes.Equal(bp.encode(), props) {
		t.Fatalf("re-encoded %x, want %x", bp.encode(), props)
	}
	msg := MessageFromRecord(Record{Timestamp: 1700000000123, Value: []byte("v")})
	// delivery-mode (bit 12) and timestamp (bit 6), and nothing else.
	want := []byte{0x10, 0x40, 2, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}
	if !bytes.Equal(msg.Properties, want) {
		t.Fatalf("built properties %x, want %x", msg.Properties, want)
	}
}
