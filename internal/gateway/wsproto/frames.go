package wsproto

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// Frame is an encoded server frame: text (JSON) or binary (header length,
// JSON envelope, payload).
type Frame struct {
	Binary bool
	Data   []byte
}

func text(v any) Frame {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value encoded here is made of strings, numbers, booleans,
		// raw JSON that was decoded before and maps of those: Marshal
		// cannot fail on them.
		panic("wsproto: encoding a server frame: " + err.Error())
	}
	return Frame{Data: b}
}

// withPayload encodes v as the envelope of a binary frame carrying payload.
func withPayload(v any, payload []byte) Frame {
	env := text(v).Data
	out := make([]byte, 4, 4+len(env)+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(env)))
	out = append(out, env...)
	out = append(out, payload...)
	return Frame{Binary: true, Data: out}
}

// Welcome is the first frame of a session.
type Welcome struct {
	Type        string `json:"type"`
	Version     int    `json:"version"`
	ClientID    string `json:"client_id"`
	Session     string `json:"session"`
	PingSeconds int    `json:"ping_interval_s"`
	MaxBytes    int    `json:"max_message_bytes"`
}

// EncodeWelcome encodes the welcome frame.
func EncodeWelcome(clientID, session string, pingSeconds, maxBytes int) Frame {
	return text(Welcome{Type: "welcome", Version: Version, ClientID: clientID, Session: session, PingSeconds: pingSeconds, MaxBytes: maxBytes})
}

// EncodeError encodes an error reply; id is the request's id.
func EncodeError(id, code, message string) Frame {
	return text(struct {
		Type    string `json:"type"`
		ID      string `json:"id,omitempty"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"error", id, code, message})
}

// OK is a success reply. Which fields are set depends on the request.
type OK struct {
	Type      string   `json:"type"`
	ID        string   `json:"id,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Members   []string `json:"members,omitempty"`
	Partition *int32   `json:"partition,omitempty"`
	Offset    *int64   `json:"offset,omitempty"`
	Routed    *int     `json:"routed,omitempty"`
	// Delivered is how many connections a send or broadcast reached.
	Delivered *int `json:"delivered,omitempty"`
	// Partitions are, for a topic subscription, where each partition
	// starts.
	Start map[int32]int64 `json:"start,omitempty"`
	Pong  bool            `json:"pong,omitempty"`
}

// EncodeOK encodes a success reply.
func EncodeOK(ok OK) Frame {
	ok.Type = "ok"
	return text(ok)
}

// EncodeMessage encodes a message from a client: to this client (group
// empty), to a group, or broadcast.
func EncodeMessage(from, group string, broadcast bool, data json.RawMessage) Frame {
	return text(struct {
		Type      string          `json:"type"`
		From      string          `json:"from"`
		Group     string          `json:"group,omitempty"`
		Broadcast bool            `json:"broadcast,omitempty"`
		Data      json.RawMessage `json:"data"`
	}{"message", from, group, broadcast, data})
}

// EncodePresence encodes a group membership change: event is join or
// leave.
func EncodePresence(group, event, client string) Frame {
	return text(struct {
		Type   string `json:"type"`
		Group  string `json:"group"`
		Event  string `json:"event"`
		Client string `json:"client"`
	}{"presence", group, event, client})
}

// EncodeCancelled tells a client that a subscription ended without being
// asked to (its queue or topic was deleted).
func EncodeCancelled(sub, reason string) Frame {
	return text(struct {
		Type   string `json:"type"`
		Sub    string `json:"sub"`
		Reason string `json:"reason"`
	}{"cancelled", sub, reason})
}

// wireHeaderOut is a header as the server sends it.
type wireHeaderOut struct {
	Key      string  `json:"key"`
	Value    *string `json:"value,omitempty"`
	ValueB64 *string `json:"value_b64,omitempty"`
}

// bytesOut sets a text field or its base64 twin: text when b is valid
// UTF-8, base64 otherwise; neither for nil.
func bytesOut(b []byte) (txt, b64 *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// Record is a record delivered by a topic subscription.
type Record struct {
	Sub       string
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
	// Properties and Exchange are those of a record written from an AMQP
	// message; nil and empty otherwise.
	Properties *Properties
	Exchange   string
}

type recordOut struct {
	Type       string          `json:"type"`
	Sub        string          `json:"sub"`
	Topic      string          `json:"topic"`
	Partition  int32           `json:"partition"`
	Offset     int64           `json:"offset"`
	Timestamp  int64           `json:"timestamp"`
	Key        *string         `json:"key,omitempty"`
	KeyB64     *string         `json:"key_b64,omitempty"`
	Value      *string         `json:"value,omitempty"`
	ValueB64   *string         `json:"value_b64,omitempty"`
	Null       bool            `json:"null_value,omitempty"`
	Headers    []wireHeaderOut `json:"headers,omitempty"`
	Exchange   string          `json:"exchange,omitempty"`
	Properties *Properties     `json:"properties,omitempty"`
}

// EncodeRecord encodes a record, as a text frame or, with asBinary, as a
// binary frame whose payload is the value.
func EncodeRecord(r Record, asBinary bool) Frame {
	out := recordOut{Type: "record", Sub: r.Sub, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Exchange: r.Exchange, Properties: r.Properties}
	out.Key, out.KeyB64 = bytesOut(r.Key)
	for _, h := range r.Headers {
		ho := wireHeaderOut{Key: h.Key}
		ho.Value, ho.ValueB64 = bytesOut(h.Value)
		out.Headers = append(out.Headers, ho)
	}
	out.Null = r.Value == nil
	if asBinary {
		return withPayload(out, r.Value)
	}
	out.Value, out.ValueB64 = bytesOut(r.Value)
	return text(out)
}

// Delivery is a message delivered by a queue subscription.
type Delivery struct {
	Sub         string
	Tag         uint64
	Queue       string
	Exchange    string
	RoutingKey  string
	Redelivered bool
	Properties  Properties
	Body        []byte
}

type deliveryOut struct {
	Type        string      `json:"type"`
	Sub         string      `json:"sub"`
	Tag         uint64      `json:"tag"`
	Queue       string      `json:"queue"`
	Exchange    string      `json:"exchange"`
	RoutingKey  string      `json:"routing_key"`
	Redelivered bool        `json:"redelivered"`
	Properties  *Properties `json:"properties,omitempty"`
	Body        *string     `json:"body,omitempty"`
	BodyB64     *string     `json:"body_b64,omitempty"`
}

// EncodeDelivery encodes a queue delivery, as a text frame or, with
// asBinary, as a binary frame whose payload is the body.
func EncodeDelivery(d Delivery, asBinary bool) Frame {
	out := deliveryOut{Type: "delivery", Sub: d.Sub, Tag: d.Tag, Queue: d.Queue, Exchange: d.Exchange, RoutingKey: d.RoutingKey, Redelivered: d.Redelivered}
	if !d.Properties.Empty() {
		p := d.Properties
		out.Properties = &p
	}
	if asBinary {
		return withPayload(out, d.Body)
	}
	out.Body, out.BodyB64 = bytesOut(d.Body)
	if out.Body == nil && out.BodyB64 == nil {
		empty := ""
		out.Body = &empty
	}
	return text(out)
}
