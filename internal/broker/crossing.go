package broker

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"unicode/utf8"
)

// One store, two models: how an AMQP message becomes a Kafka record and how
// a Kafka record reads as an AMQP message. A stream queue and the Kafka
// topic of the same name share one log, and exchange bindings into topics
// and bridge rules out of them cross the same way, so every crossing goes
// through these two functions.
//
// AMQP message → Kafka record:
//   - the value is the body;
//   - the key is the routing key (null when it is empty);
//   - the timestamp is when the broker received the message (not the
//     AMQP timestamp property, which has whole seconds and may be absent);
//   - each application header becomes a Kafka header of the same name, in
//     sorted key order: strings and byte arrays as their bytes, numbers,
//     booleans and timestamps as their decimal text, void as an empty value,
//     nested tables and arrays as Wharf's typed JSON (Table.MarshalJSON);
//   - the header x-amqp-exchange names the exchange, when it is not the
//     default one;
//   - the header x-amqp-properties carries the encoded basic properties,
//     byte for byte, when the message has any, so that the message read
//     back over AMQP is the one published.
//
// Kafka record → AMQP message:
//   - the body is the value (a null value is an empty body);
//   - when the record carries x-amqp-properties that decode, they are the
//     message's properties and the other headers are ignored (they were
//     derived from them);
//   - otherwise the properties are built: delivery_mode 2 (the record is in
//     a log), timestamp the record's in seconds, and a headers table holding
//     every Kafka header as a long string when its value is UTF-8, a byte
//     array otherwise (a later header of a repeated name wins);
//   - the routing key is the key when it is at most 255 bytes; a longer key
//     is left out of the routing key and kept in the x-kafka-key header (a
//     byte array) of built properties;
//   - the exchange is x-amqp-exchange, or "" (the default exchange).

// Record headers Wharf writes when an AMQP message becomes a Kafka record.
const (
	HeaderAMQPProperties = "x-amqp-properties"
	HeaderAMQPExchange   = "x-amqp-exchange"
	// HeaderKafkaKey holds a record key too long for a routing key.
	HeaderKafkaKey = "x-kafka-key"
)

// Indexes of basic properties in basicProps.fields (flag bit 15-i).
const (
	propIndexDeliveryMode = 3 // bit 12
	propIndexTimestamp    = 9 // bit 6
)

// RecordFromMessage returns the Kafka record an AMQP message becomes. The
// record's offset is zero; the caller's log assigns it. It fails only when
// the message's encoded properties are malformed.
func RecordFromMessage(msg *Message) (Record, error) {
	rec := Record{Timestamp: msg.Timestamp, Value: msg.Body}
	if rec.Value == nil {
		rec.Value = []byte{}
	}
	if msg.RoutingKey != "" {
		rec.Key = []byte(msg.RoutingKey)
	}
	bp, err := splitProperties(msg.Properties)
	if err != nil {
		return Record{}, err
	}
	h, err := bp.headers()
	if err != nil {
		return Record{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		v, err := headerText(h[k])
		if err != nil {
			return Record{}, fmt.Errorf("header %q: %w", k, err)
		}
		rec.Headers = append(rec.Headers, Header{Key: k, Value: v})
	}
	if msg.Exchange != "" {
		rec.Headers = append(rec.Headers, Header{Key: HeaderAMQPExchange, Value: []byte(msg.Exchange)})
	}
	if len(msg.Properties) > 2 || len(msg.Properties) == 2 && binary.BigEndian.Uint16(msg.Properties) != 0 {
		rec.Headers = append(rec.Headers, Header{Key: HeaderAMQPProperties, Value: msg.Properties})
	}
	return rec, nil
}

// headerText is an application header's value as a Kafka header's bytes.
func headerText(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return []byte{}, nil
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case []any:
		b, err := appendValueJSON(nil, x)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	if t, ok := asTable(v); ok {
		return appendTableJSON(nil, t)
	}
	return []byte(formatValue(v)), nil
}

// MessageFromRecord returns the AMQP message a Kafka record reads as. It
// never fails: a record whose x-amqp-properties do not decode reads as one
// without them.
func MessageFromRecord(rec Record) *Message {
	msg := &Message{Body: rec.Value, Persistent: true, Timestamp: rec.Timestamp}
	if msg.Body == nil {
		msg.Body = []byte{}
	}
	var props []byte
	for _, h := range rec.Headers {
		switch h.Key {
		case HeaderAMQPProperties:
			props = h.Value
		case HeaderAMQPExchange:
			msg.Exchange = string(h.Value)
		}
	}
	longKey := len(rec.Key) > math.MaxUint8
	if !longKey {
		msg.RoutingKey = string(rec.Key)
	}
	if props != nil {
		if bp, err := splitProperties(props); err == nil {
			if _, err := bp.headers(); err == nil {
				msg.Properties = props
				msg.Persistent = deliveryMode(&bp) == 2
				return msg
			}
		}
	}
	var bp basicProps
	h := Table{}
	for _, hd := range rec.Headers {
		if hd.Key == HeaderAMQPProperties || hd.Key == HeaderAMQPExchange || len(hd.Key) > math.MaxUint8 {
			continue
		}
		if utf8.Valid(hd.Value) {
			h[hd.Key] = string(hd.Value)
		} else {
			h[hd.Key] = slices.Clone(hd.Value)
		}
	}
	if longKey {
		h[HeaderKafkaKey] = slices.Clone(rec.Key)
	}
	if len(h) > 0 {
		if enc, err := appendWireTable(nil, h, 1); err == nil {
			bp.fields[propIndexHeaders] = enc
		}
	}
	bp.fields[propIndexDeliveryMode] = []byte{2}
	if rec.Timestamp >= 0 {
		bp.fields[propIndexTimestamp] = binary.BigEndian.AppendUint64(nil, uint64(rec.Timestamp/1000))
	}
	msg.Properties = bp.encode()
	return msg
}

// deliveryMode returns the delivery_mode property, 0 when absent.
func deliveryMode(bp *basicProps) byte {
	if f := bp.fields[propIndexDeliveryMode]; len(f) == 1 {
		return f[0]
	}
	return 0
}

// SetHeader returns encoded properties with the application header key set
// to v (replacing an earlier value), leaving every other property as it
// was. A stream queue uses it to tell each delivery its offset
// (x-stream-offset).
func SetHeader(props []byte, key string, v any) ([]byte, error) {
	bp, err := splitProperties(props)
	if err != nil {
		return nil, err
	}
	h, err := bp.headers()
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = Table{}
	}
	h[key] = v
	enc, err := appendWireTable(nil, h, 1)
	if err != nil {
		return nil, err
	}
	bp.fields[propIndexHeaders] = enc
	return bp.encode(), nil
}
