package grpcapi

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
	wharfv1 "github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// maxDepth bounds how deeply arguments and headers may nest.
const maxDepth = 32

// vhostOr returns vhost, or the default vhost for "".
func vhostOr(vhost string) string {
	if vhost == "" {
		return broker.DefaultVhost
	}
	return vhost
}

// validUTF8 returns s with each byte that is not part of UTF-8 replaced by
// U+FFFD, as encoding/json writes strings: a protobuf string must be UTF-8,
// and one that is not failed the whole response (a gRPC subscription ended
// on the first message or record holding one, every time).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// ---- record headers ----

func toBrokerHeaders(hs []*wharfv1.Header) []broker.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]broker.Header, len(hs))
	for i, h := range hs {
		out[i] = broker.Header{Key: h.GetKey(), Value: h.GetValue()}
	}
	return out
}

func fromBrokerHeaders(hs []broker.Header) []*wharfv1.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*wharfv1.Header, len(hs))
	for i, h := range hs {
		out[i] = &wharfv1.Header{Key: validUTF8(h.Key), Value: h.Value}
	}
	return out
}

func recordOf(r service.FetchedRecord) *wharfv1.Record {
	out := &wharfv1.Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, TimestampMs: r.Timestamp,
		Key: r.Key, Value: r.Value, Headers: fromBrokerHeaders(r.Headers), Exchange: validUTF8(r.Exchange),
	}
	if r.Properties != nil {
		out.Properties = propertiesOf(*r.Properties)
	}
	return out
}

// ---- AMQP properties ----

// toWireProperties converts request properties to AMQP's, with the JSON
// faces' rules for header values (service.Properties.ToWire).
func toWireProperties(p *wharfv1.Properties) (wire.Properties, error) {
	if p == nil {
		return wire.Properties{}, nil
	}
	if p.DeliveryMode > math.MaxUint8 {
		return wire.Properties{}, invalidf("property delivery_mode %d is not an octet", p.DeliveryMode)
	}
	if p.Priority > math.MaxUint8 {
		return wire.Properties{}, invalidf("property priority %d is not an octet", p.Priority)
	}
	sp := service.Properties{
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, DeliveryMode: uint8(p.DeliveryMode),
		Priority: uint8(p.Priority), CorrelationID: p.CorrelationId, ReplyTo: p.ReplyTo, Expiration: p.Expiration,
		MessageID: p.MessageId, Timestamp: p.Timestamp, Type: p.Type, UserID: p.UserId, AppID: p.AppId,
	}
	if p.Headers != nil {
		if err := checkDepth(p.Headers, 0); err != nil {
			return wire.Properties{}, invalidf("property headers: %v", err)
		}
		sp.Headers = p.Headers.AsMap() // numbers are float64, as JSON's
	}
	w, err := sp.ToWire()
	if err != nil {
		return wire.Properties{}, toConnect(err)
	}
	return w, nil
}

// fromWireProperties converts a delivery's properties. Bytes that are not
// UTF-8 in its strings become U+FFFD, as on the JSON faces.
func fromWireProperties(w *wire.Properties) *wharfv1.Properties {
	return propertiesOf(service.FromWire(w))
}

// propertiesOf converts properties in the JSON faces' form.
func propertiesOf(p service.Properties) *wharfv1.Properties {
	out := &wharfv1.Properties{
		ContentType: validUTF8(p.ContentType), ContentEncoding: validUTF8(p.ContentEncoding), DeliveryMode: uint32(p.DeliveryMode),
		Priority: uint32(p.Priority), CorrelationId: validUTF8(p.CorrelationID), ReplyTo: validUTF8(p.ReplyTo),
		Expiration: validUTF8(p.Expiration), MessageId: validUTF8(p.MessageID), Timestamp: p.Timestamp, Type: validUTF8(p.Type),
		UserId: validUTF8(p.UserID), AppId: validUTF8(p.AppID),
	}
	if p.Headers != nil {
		out.Headers = structOf(p.Headers)
	}
	return out
}

// ---- tables (arguments, headers) ----

func checkDepth(s *structpb.Struct, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested more than %d deep", maxDepth)
	}
	for _, v := range s.GetFields() {
		if err := checkValueDepth(v, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func checkValueDepth(v *structpb.Value, depth int) error {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return checkDepth(k.StructValue, depth)
	case *structpb.Value_ListValue:
		if depth > maxDepth {
			return fmt.Errorf("nested more than %d deep", maxDepth)
		}
		for _, e := range k.ListValue.GetValues() {
			if err := checkValueDepth(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// tableOf converts arguments to the core's table: integral numbers become
// 64-bit integers (so x-max-length: 10 is an integer), other numbers
// doubles, structs tables and lists arrays. nil stays nil.
func tableOf(s *structpb.Struct) (broker.Table, error) {
	if s == nil {
		return nil, nil
	}
	if err := checkDepth(s, 0); err != nil {
		return nil, invalidf("arguments: %v", err)
	}
	return tableFields(s), nil
}

func tableFields(s *structpb.Struct) broker.Table {
	t := make(broker.Table, len(s.GetFields()))
	for k, v := range s.GetFields() {
		t[k] = tableValue(v)
	}
	return t
}

func tableValue(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		x := k.NumberValue
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case *structpb.Value_StructValue:
		return tableFields(k.StructValue)
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = tableValue(e)
		}
		return out
	}
	return nil
}

// structOf converts a table to a Struct: numbers become doubles (integers
// beyond 2^53 lose precision), byte arrays base64 strings, decimals
// strings such as "12.34", timestamps seconds since the epoch. A nil or
// empty table is nil.
func structOf[M ~map[string]any](t M) *structpb.Struct {
	if len(t) == 0 {
		return nil
	}
	return structFields(t)
}

func structFields[M ~map[string]any](t M) *structpb.Struct {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(t))}
	for k, v := range t {
		s.Fields[validUTF8(k)] = valueOf(v)
	}
	return s
}

func valueOf(v any) *structpb.Value {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue()
	case bool:
		return structpb.NewBoolValue(x)
	case string:
		return structpb.NewStringValue(validUTF8(x))
	case int8:
		return structpb.NewNumberValue(float64(x))
	case uint8:
		return structpb.NewNumberValue(float64(x))
	case int16:
		return structpb.NewNumberValue(float64(x))
	case uint16:
		return structpb.NewNumberValue(float64(x))
	case int32:
		return structpb.NewNumberValue(float64(x))
	case uint32:
		return structpb.NewNumberValue(float64(x))
	case int64:
		return structpb.NewNumberValue(float64(x))
	case int:
		return structpb.NewNumberValue(float64(x))
	case uint64:
		return structpb.NewNumberValue(float64(x))
	case float32:
		return structpb.NewNumberValue(float64(x))
	case float64:
		return structpb.NewNumberValue(x)
	case []byte:
		return structpb.NewStringValue(base64.StdEncoding.EncodeToString(x))
	case time.Time:
		return structpb.NewNumberValue(float64(x.Unix()))
	case broker.Decimal:
		return structpb.NewStringValue(decimalString(x.Scale, x.Value))
	case wire.Decimal:
		return structpb.NewStringValue(decimalString(x.Scale, x.Value))
	case broker.Table:
		return structpb.NewStructValue(structFields(x))
	case wire.Table:
		return structpb.NewStructValue(structFields(x))
	case map[string]any:
		return structpb.NewStructValue(structFields(x))
	case []any:
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(x))}
		for i, e := range x {
			l.Values[i] = valueOf(e)
		}
		return structpb.NewListValue(l)
	}
	return structpb.NewStringValue(fmt.Sprint(v))
}

func decimalString(scale uint8, value uint32) string {
	s := strconv.FormatUint(uint64(value), 10)
	if scale == 0 {
		return s
	}
	for len(s) <= int(scale) {
		s = "0" + s
	}
	return s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
}
