package service

import (
	"reflect"
	"testing"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

func TestRecordAMQP(t *testing.T) {
	w := wire.Properties{ContentType: "text/plain", DeliveryMode: 2, CorrelationID: "c", Headers: wire.Table{"n": int32(1)}}
	enc, err := wire.EncodeProperties(&w)
	if err != nil {
		t.Fatal(err)
	}
	hs := []broker.Header{{Key: "n", Value: []byte("1")}, {Key: broker.HeaderAMQPExchange, Value: []byte("x")}, {Key: broker.HeaderAMQPProperties, Value: enc}}
	props, exchange, rest := recordAMQP(hs)
	if props == nil || exchange != "x" {
		t.Fatalf("props %v exchange %q", props, exchange)
	}
	if want := FromWire(&w); !reflect.DeepEqual(*props, want) {
		t.Errorf("props %+v, want %+v", *props, want)
	}
	if len(rest) != 2 || rest[0].Key != "n" || rest[1].Key != broker.HeaderAMQPExchange {
		t.Errorf("headers left %v, want n and x-amqp-exchange", rest)
	}

	bad := []broker.Header{{Key: broker.HeaderAMQPProperties, Value: []byte{0xff}}}
	if props, _, rest := recordAMQP(bad); props != nil || len(rest) != 1 {
		t.Errorf("undecodable properties: props %v, headers %v; want none and the header kept", props, rest)
	}
	plain := []broker.Header{{Key: "a", Value: []byte("b")}}
	if props, exchange, rest := recordAMQP(plain); props != nil || exchange != "" || len(rest) != 1 {
		t.Errorf("plain record: props %v exchange %q headers %v", props, exchange, rest)
	}
}

// FuzzRecordAMQP: whatever a record's x-amqp-properties header holds,
// reading it never panics, and the header leaves the headers exactly when
// properties are given.
func FuzzRecordAMQP(f *testing.F) {
	w := wire.Properties{ContentType: "a", Headers: wire.Table{"t": wire.Table{"u": []any{"v", int64(2)}}}, Priority: 3}
	enc, err := wire.EncodeProperties(&w)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte{0x80, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		hs := []broker.Header{{Key: "k", Value: []byte("v")}, {Key: broker.HeaderAMQPProperties, Value: raw}}
		props, _, rest := recordAMQP(hs)
		switch {
		case props != nil && len(rest) != 1:
			t.Fatalf("decoded, yet %d headers left", len(rest))
		case props == nil && len(rest) != 2:
			t.Fatalf("not decoded, yet %d headers left", len(rest))
		}
	})
}
