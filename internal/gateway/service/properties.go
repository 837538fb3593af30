package service

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wharfmq/wharf/internal/amqp/wire"
)

// Properties are AMQP basic properties as the JSON faces (WebSocket, REST)
// carry them. Headers hold JSON values: strings, numbers, booleans, null,
// objects and arrays; see ToWire and FromWire for how they map onto AMQP
// field values.
type Properties struct {
	ContentType     string         `json:"content_type,omitempty"`
	ContentEncoding string         `json:"content_encoding,omitempty"`
	Headers         map[string]any `json:"headers,omitempty"`
	DeliveryMode    uint8          `json:"delivery_mode,omitempty"`
	Priority        uint8          `json:"priority,omitempty"`
	CorrelationID   string         `json:"correlation_id,omitempty"`
	ReplyTo         string         `json:"reply_to,omitempty"`
	Expiration      string         `json:"expiration,omitempty"`
	MessageID       string         `json:"message_id,omitempty"`
	Timestamp       int64          `json:"timestamp,omitempty"` // seconds since the Unix epoch
	Type            string         `json:"type,omitempty"`
	UserID          string         `json:"user_id,omitempty"`
	AppID           string         `json:"app_id,omitempty"`
}

// Empty reports whether no property is set.
func (p *Properties) Empty() bool {
	return p.ContentType == "" && p.ContentEncoding == "" && len(p.Headers) == 0 && p.DeliveryMode == 0 &&
		p.Priority == 0 && p.CorrelationID == "" && p.ReplyTo == "" && p.Expiration == "" && p.MessageID == "" &&
		p.Timestamp == 0 && p.Type == "" && p.UserID == "" && p.AppID == ""
}

// ToWire converts the properties to AMQP's. Header values map as: string
// to a long string, an integral number to a signed 64-bit integer, any
// other number to a double, boolean to boolean, null to void, object to a
// table and array to an array.
func (p *Properties) ToWire() (wire.Properties, error) {
	w := wire.Properties{
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, DeliveryMode: p.DeliveryMode,
		Priority: p.Priority, CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo, Expiration: p.Expiration,
		MessageID: p.MessageID, Type: p.Type, UserID: p.UserID, AppID: p.AppID,
	}
	for _, f := range []struct{ name, v string }{
		{"content_type", p.ContentType}, {"content_encoding", p.ContentEncoding}, {"correlation_id", p.CorrelationID},
		{"reply_to", p.ReplyTo}, {"expiration", p.Expiration}, {"message_id", p.MessageID}, {"type", p.Type},
		{"user_id", p.UserID}, {"app_id", p.AppID},
	} {
		if len(f.v) > 255 {
			return wire.Properties{}, Errorf(CodeInvalid, "property %s is longer than 255 bytes", f.name)
		}
	}
	if p.Timestamp != 0 {
		if p.Timestamp < 0 {
			return wire.Properties{}, Errorf(CodeInvalid, "property timestamp %d is negative", p.Timestamp)
		}
		w.Timestamp = time.Unix(p.Timestamp, 0)
	}
	if p.Headers != nil {
		t, err := jsonTable(p.Headers, 0)
		if err != nil {
			return wire.Properties{}, Errorf(CodeInvalid, "property headers: %v", err)
		}
		w.Headers = t
	}
	return w, nil
}

const maxDepth = 32

func jsonTable(m map[string]any, depth int) (wire.Table, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d deep", maxDepth)
	}
	t := make(wire.Table, len(m))
	for k, v := range m {
		if len(k) > 255 {
			return nil, fmt.Errorf("key %.20q... is longer than 255 bytes", k)
		}
		fv, err := jsonValue(v, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		t[k] = fv
	}
	return t, nil
}

func jsonValue(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case map[string]any:
		return jsonTable(x, depth)
	case []any:
		if depth > maxDepth {
			return nil, fmt.Errorf("nested more than %d deep", maxDepth)
		}
		out := make([]any, len(x))
		for i, e := range x {
			fv, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = fv
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// FromWire converts AMQP properties to the JSON form. Field values that
// JSON has no type for become: byte arrays base64 strings, decimals
// strings such as "12.34", timestamps seconds since the epoch, and the
// floats and doubles NaN, +Inf and -Inf the strings "NaN", "Infinity" and
// "-Infinity" (JSON has no number for them; encoding one failed).
func FromWire(w *wire.Properties) Properties {
	p := Properties{
		ContentType: w.ContentType, ContentEncoding: w.ContentEncoding, DeliveryMode: w.DeliveryMode,
		Priority: w.Priority, CorrelationID: w.CorrelationID, ReplyTo: w.ReplyTo, Expiration: w.Expiration,
		MessageID: w.MessageID, Type: w.Type, UserID: w.UserID, AppID: w.AppID,
	}
	if !w.Timestamp.IsZero() {
		p.Timestamp = w.Timestamp.Unix()
	}
	if w.Headers != nil {
		p.Headers = wireTable(w.Headers)
	}
	return p
}

func wireTable(t wire.Table) map[string]any {
	m := make(map[string]any, len(t))
	for k, v := range t {
		m[k] = wireValue(v)
	}
	return m
}

func wireValue(v any) any {
	switch x := v.(type) {
	case wire.Table:
		return wireTable(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = wireValue(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case wire.Decimal:
		return decimalString(x)
	case time.Time:
		return x.Unix()
	case float32:
		return floatValue(float64(x))
	case float64:
		return floatValue(x)
	}
	return v
}

// floatValue is a float as JSON can carry it: a number, or for NaN and
// the infinities a string.
func floatValue(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

func decimalString(d wire.Decimal) string {
	s := strconv.FormatUint(uint64(d.Value), 10)
	if d.Scale == 0 {
		return s
	}
	for len(s) <= int(d.Scale) {
		s = "0" + s
	}
	return s[:len(s)-int(d.Scale)] + "." + s[len(s)-int(d.Scale):]
}
