package wsproto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/wharfmq/wharf/internal/gateway/service"
)

// Version is the protocol version this package speaks.
const Version = 1

// Subprotocol is the Sec-WebSocket-Protocol name of this version. Clients
// may offer it; the server then selects it.
const Subprotocol = "wharf.v1"

// Request types.
const (
	TypeAuth        = "auth"
	TypePing        = "ping"
	TypeSend        = "send"
	TypeBroadcast   = "broadcast"
	TypeJoin        = "join"
	TypeLeave       = "leave"
	TypePresence    = "presence"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypeAck         = "ack"
	TypeNack        = "nack"
	TypeProduce     = "produce"
	TypePublish     = "publish"
)

// Limits on names and ids, in bytes.
const (
	MaxIDLen    = 128
	MaxNameLen  = 255
	MaxSubCount = 10000
)

// Header is one record header. A nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Properties are AMQP basic properties as the JSON faces carry them.
type Properties = service.Properties

// Request is a decoded client request. Which fields are set depends on
// Type; Decode has checked that those the type needs are there.
type Request struct {
	Type string
	ID   string // echoed in the reply; may be empty

	// auth
	Token    string
	Username string
	Password string

	// send, broadcast: Data is a JSON value passed through as it is.
	To    string
	Group string // also join, leave, presence
	Data  json.RawMessage

	// subscribe to a topic: Partitions nil means all; From is earliest,
	// latest (the default), offset or timestamp; Offsets resume chosen
	// partitions at given offsets and win over From.
	Topic      string // also produce
	Partitions []int32
	From       string
	Offset     int64
	Timestamp  int64 // also produce (milliseconds)
	Offsets    map[int32]int64
	// subscribe to a queue: Prefetch bounds unacknowledged deliveries.
	Queue    string
	Vhost    string // also publish
	Prefetch int
	// Binary asks for deliveries as binary frames.
	Binary bool

	// unsubscribe, ack, nack
	Sub      string
	Tag      uint64
	Multiple bool
	Requeue  bool

	// produce
	Partition int32 // -1: chosen by key hash
	Key       []byte
	Value     []byte
	Headers   []Header

	// publish
	Exchange   string
	RoutingKey string
	Properties Properties
	Body       []byte
	Mandatory  bool
}

// Error is a request that cannot be decoded; ID is the request's id when
// it could be read, for the error reply.
type Error struct {
	ID      string
	Message string
}

func (e *Error) Error() string { return e.Message }

// wireHeader is a header in JSON.
type wireHeader struct {
	Key      *string `json:"key"`
	Value    *string `json:"value"`
	ValueB64 *string `json:"value_b64"`
}

// wireRequest is the JSON object of a request: every field of every type.
type wireRequest struct {
	Type       string           `json:"type"`
	ID         *string          `json:"id"`
	Token      *string          `json:"token"`
	Username   *string          `json:"username"`
	Password   *string          `json:"password"`
	To         *string          `json:"to"`
	Group      *string          `json:"group"`
	Data       json.RawMessage  `json:"data"`
	Topic      *string          `json:"topic"`
	Partitions []int32          `json:"partitions"`
	From       *string          `json:"from"`
	Offset     *int64           `json:"offset"`
	Timestamp  *int64           `json:"timestamp"`
	Offsets    map[string]int64 `json:"offsets"`
	Queue      *string          `json:"queue"`
	Vhost      *string          `json:"vhost"`
	Prefetch   *int             `json:"prefetch"`
	Binary     *bool            `json:"binary"`
	Sub        *string          `json:"sub"`
	Tag        *uint64          `json:"tag"`
	Multiple   *bool            `json:"multiple"`
	Requeue    *bool            `json:"requeue"`
	Partition  *int32           `json:"partition"`
	Key        *string          `json:"key"`
	KeyB64     *string          `json:"key_b64"`
	Value      *string          `json:"value"`
	ValueB64   *string          `json:"value_b64"`
	Headers    []wireHeader     `json:"headers"`
	Exchange   *string          `json:"exchange"`
	RoutingKey *string          `json:"routing_key"`
	Properties *Properties      `json:"properties"`
	Body       *string          `json:"body"`
	BodyB64    *string          `json:"body_b64"`
	Mandatory  *bool            `json:"mandatory"`
}

// Decode decodes a text frame: one JSON object.
func Decode(frame []byte) (*Request, error) {
	return decode(frame, nil)
}

// DecodeBinary decodes a binary frame: a 4-byte big-endian length n, n
// bytes of JSON request, then the payload, which is the value of a
// produce, the body of a publish, or (as a base64-free JSON string is not
// required) nothing for other types.
func DecodeBinary(frame []byte) (*Request, error) {
	if len(frame) < 4 {
		return nil, &Error{Message: "binary frame shorter than its 4-byte header length"}
	}
	n := binary.BigEndian.Uint32(frame)
	if uint64(n) > uint64(len(frame)-4) {
		return nil, &Error{Message: fmt.Sprintf("binary frame header length %d is longer than the %d bytes after it", n, len(frame)-4)}
	}
	payload := frame[4+n:]
	return decode(frame[4:4+n], payload)
}

func decode(frame, payload []byte) (*Request, error) {
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, &Error{Message: "malformed request: " + jsonError(err)}
	}
	if dec.More() {
		return nil, &Error{Message: "malformed request: more than one JSON value in a frame"}
	}
	var r Request
	if w.ID != nil {
		if len(*w.ID) > MaxIDLen {
			return nil, &Error{Message: fmt.Sprintf("id is longer than %d bytes", MaxIDLen)}
		}
		r.ID = *w.ID
	}
	d := decoder{w: &w, r: &r, payload: payload}
	if err := d.decode(); err != nil {
		return nil, &Error{ID: r.ID, Message: err.Error()}
	}
	return &r, nil
}

func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	return err.Error()
}

type decoder struct {
	w       *wireRequest
	r       *Request
	payload []byte
}

func (d *decoder) decode() error {
	w, r := d.w, d.r
	r.Type = w.Type
	if d.payload != nil && w.Type != TypeProduce && w.Type != TypePublish {
		return fmt.Errorf("a %q request cannot be sent in a binary frame", w.Type)
	}
	switch w.Type {
	case "":
		return errors.New("missing type")
	case TypeAuth:
		switch {
		case w.Token != nil:
			if w.Username != nil || w.Password != nil {
				return errors.New("auth: give a token or a username and password, not both")
			}
			r.Token = *w.Token
		case w.Username != nil && w.Password != nil:
			r.Username, r.Password = *w.Username, *w.Password
		default:
			return errors.New("auth: give token, or username and password")
		}
	case TypePing:
	case TypeSend:
		if (w.To == nil) == (w.Group == nil) {
			return errors.New("send: give either to (a client id) or group")
		}
		if w.To != nil {
			if err := name("to", *w.To); err != nil {
				return err
			}
			r.To = *w.To
		} else {
			if err := name("group", *w.Group); err != nil {
				return err
			}
			r.Group = *w.Group
		}
		return d.data()
	case TypeBroadcast:
		return d.data()
	case TypeJoin, TypeLeave, TypePresence:
		if w.Group == nil {
			return fmt.Errorf("%s: missing group", w.Type)
		}
		if err := name("group", *w.Group); err != nil {
			return err
		}
		r.Group = *w.Group
	case TypeSubscribe:
		return d.subscribe()
	case TypeUnsubscribe:
		if w.Sub == nil || *w.Sub == "" {
			return errors.New("unsubscribe: missing sub")
		}
		r.Sub = *w.Sub
	case TypeAck, TypeNack:
		if w.Sub == nil || *w.Sub == "" {
			return fmt.Errorf("%s: missing sub", w.Type)
		}
		if w.Tag == nil || *w.Tag == 0 {
			return fmt.Errorf("%s: missing tag (delivery tags start at 1)", w.Type)
		}
		r.Sub, r.Tag = *w.Sub, *w.Tag
		r.Multiple = w.Multiple != nil && *w.Multiple
		r.Requeue = w.Type == TypeNack && (w.Requeue == nil || *w.Requeue)
		if w.Type == TypeAck && w.Requeue != nil {
			return errors.New("ack: requeue belongs to nack")
		}
	case TypeProduce:
		return d.produce()
	case TypePublish:
		return d.publish()
	default:
		return fmt.Errorf("unknown type %q", w.Type)
	}
	return nil
}

func name(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty", field)
	case len(v) > MaxNameLen:
		return fmt.Errorf("%s is longer than %d bytes", field, MaxNameLen)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

func (d *decoder) data() error {
	if len(d.w.Data) == 0 {
		return fmt.Errorf("%s: missing data", d.w.Type)
	}
	d.r.Data = d.w.Data
	return nil
}

func (d *decoder) subscribe() error {
	w, r := d.w, d.r
	if (w.Topic == nil) == (w.Queue == nil) {
		return errors.New("subscribe: give either topic or queue")
	}
	r.Binary = w.Binary != nil && *w.Binary
	if w.Queue != nil {
		if err := name("queue", *w.Queue); err != nil {
			return err
		}
		r.Queue = *w.Queue
		if w.Vhost != nil {
			r.Vhost = *w.Vhost
		}
		r.Prefetch = 100
		if w.Prefetch != nil {
			if *w.Prefetch < 1 || *w.Prefetch > 65535 {
				return fmt.Errorf("subscribe: prefetch %d is not between 1 and 65535", *w.Prefetch)
			}
			r.Prefetch = *w.Prefetch
		}
		if w.Partitions != nil || w.From != nil || w.Offset != nil || w.Timestamp != nil || w.Offsets != nil {
			return errors.New("subscribe: partitions, from, offset, timestamp and offsets belong to topic subscriptions")
		}
		return nil
	}
	if err := name("topic", *w.Topic); err != nil {
		return err
	}
	r.Topic = *w.Topic
	if w.Prefetch != nil || w.Vhost != nil {
		return errors.New("subscribe: prefetch and vhost belong to queue subscriptions")
	}
	if len(w.Partitions) > MaxSubCount {
		return fmt.Errorf("subscribe: more than %d partitions", MaxSubCount)
	}
	for _, p := range w.Partitions {
		if p < 0 {
			return fmt.Errorf("subscribe: partition %d is negative", p)
		}
	}
	r.Partitions = w.Partitions
	r.From = "latest"
	if w.From != nil {
		r.From = *w.From
	}
	switch r.From {
	case "earliest", "latest":
	case "offset":
		if w.Offset == nil || *w.Offset < 0 {
			return errors.New("subscribe: from offset needs a non-negative offset")
		}
		r.Offset = *w.Offset
	case "timestamp":
		if w.Timestamp == nil {
			return errors.New("subscribe: from timestamp needs a timestamp (milliseconds)")
		}
		r.Timestamp = *w.Timestamp
	default:
		return fmt.Errorf("subscribe: from %q: give earliest, latest, offset or timestamp", r.From)
	}
	if r.From != "offset" && w.Offset != nil {
		return errors.New("subscribe: offset needs from offset")
	}
	if r.From != "timestamp" && w.Timestamp != nil {
		return errors.New("subscribe: timestamp needs from timestamp")
	}
	if len(w.Offsets) > MaxSubCount {
		return fmt.Errorf("subscribe: more than %d offsets", MaxSubCount)
	}
	if w.Offsets != nil {
		r.Offsets = make(map[int32]int64, len(w.Offsets))
		for k, v := range w.Offsets {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || p < 0 {
				return fmt.Errorf("subscribe: offsets key %q is not a partition index", k)
			}
			if v < 0 {
				return fmt.Errorf("subscribe: offset %d for partition %d is negative", v, p)
			}
			r.Offsets[int32(p)] = v
		}
	}
	return nil
}

// bytesField decodes one byte field given as text, base64 or the binary
// frame's payload (at most one of the three). present reports whether it
// was given at all.
func (d *decoder) bytesField(field string, text, b64 *string, usePayload bool) (v []byte, present bool, err error) {
	n := 0
	if text != nil {
		n++
	}
	if b64 != nil {
		n++
	}
	if usePayload && d.payload != nil {
		n++
	}
	switch {
	case n > 1:
		return nil, false, fmt.Errorf("%s: give %s, %s_b64 or a binary frame's payload, not more than one", d.w.Type, field, field)
	case text != nil:
		return []byte(*text), true, nil
	case b64 != nil:
		v, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %s_b64 is not base64: %v", d.w.Type, field, err)
		}
		return v, true, nil
	case usePayload && d.payload != nil:
		return d.payload, true, nil
	}
	return nil, false, nil
}

func (d *decoder) produce() error {
	w, r := d.w, d.r
	if w.Topic == nil {
		return errors.New("produce: missing topic")
	}
	if err := name("topic", *w.Topic); err != nil {
		return err
	}
	r.Topic = *w.Topic
	r.Partition = -1
	if w.Partition != nil {
		if *w.Partition < -1 {
			return fmt.Errorf("produce: partition %d: give -1 or a partition index", *w.Partition)
		}
		r.Partition = *w.Partition
	}
	if w.Timestamp != nil {
		if *w.Timestamp < 0 {
			return fmt.Errorf("produce: timestamp %d is negative", *w.Timestamp)
		}
		r.Timestamp = *w.Timestamp
	}
	var err error
	if r.Key, _, err = d.bytesField("key", w.Key, w.KeyB64, false); err != nil {
		return err
	}
	var present bool
	if r.Value, present, err = d.bytesField("value", w.Value, w.ValueB64, true); err != nil {
		return err
	}
	if !present {
		r.Value = nil // a null value, as Kafka allows (a tombstone)
	}
	for i, h := range w.Headers {
		if h.Key == nil {
			return fmt.Errorf("produce: header %d has no key", i)
		}
		if h.Value != nil && h.ValueB64 != nil {
			return fmt.Errorf("produce: header %q: give value or value_b64, not both", *h.Key)
		}
		hd := Header{Key: *h.Key}
		switch {
		case h.Value != nil:
			hd.Value = []byte(*h.Value)
		case h.ValueB64 != nil:
			v, err := base64.StdEncoding.DecodeString(*h.ValueB64)
			if err != nil {
				return fmt.Errorf("produce: header %q: value_b64 is not base64: %v", *h.Key, err)
			}
			hd.Value = v
		}
		r.Headers = append(r.Headers, hd)
	}
	return nil
}

func (d *decoder) publish() error {
	w, r := d.w, d.r
	if w.Exchange == nil {
		return errors.New(`publish: missing exchange ("" is the default exchange)`)
	}
	r.Exchange = *w.Exchange
	if w.RoutingKey != nil {
		r.RoutingKey = *w.RoutingKey
	}
	if len(r.Exchange) > MaxNameLen || len(r.RoutingKey) > MaxNameLen {
		return fmt.Errorf("publish: exchange and routing_key are at most %d bytes", MaxNameLen)
	}
	if w.Vhost != nil {
		r.Vhost = *w.Vhost
	}
	if w.Properties != nil {
		r.Properties = *w.Properties
		if dm := r.Properties.DeliveryMode; dm > 2 {
			return fmt.Errorf("publish: delivery_mode %d: give 1 (transient) or 2 (persistent)", dm)
		}
	}
	r.Mandatory = w.Mandatory != nil && *w.Mandatory
	var err error
	if r.Body, _, err = d.bytesField("body", w.Body, w.BodyB64, true); err != nil {
		return err
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	return nil
}
