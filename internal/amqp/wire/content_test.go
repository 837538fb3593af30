package wire

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func fullProperties() Properties {
	return Properties{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers:         sampleTable(),
		DeliveryMode:    2,
		Priority:        9,
		CorrelationID:   "corr",
		ReplyTo:         "amq.rabbitmq.reply-to",
		Expiration:      "60000",
		MessageID:       "id-1",
		Timestamp:       time.Unix(1700000000, 0).UTC(),
		Type:            "order.created",
		UserID:          "guest",
		AppID:           "app",
		ClusterID:       "c1",
	}
}

func TestContentHeaderEveryProperty(t *testing.T) {
	h := ContentHeader{ClassID: ClassBasic, BodySize: 1 << 40, Properties: fullProperties()}
	b, err := AppendContentHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	if flags := uint16(b[12])<<8 | uint16(b[13]); flags != 0xFFFC {
		t.Fatalf("flags %#04x, want 0xfffc", flags)
	}
	got, err := DecodeContentHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	h.Properties.Flags = 0xFFFC
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip\n got %#v\nwant %#v", got, h)
	}
	again, err := AppendContentHeader(nil, &got)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs: %v", err)
	}
}

func TestContentHeaderNoProperties(t *testing.T) {
	h := ContentHeader{ClassID: ClassBasic, BodySize: 5}
	b, err := AppendContentHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "003c 0000 0000000000000005 0000"); !bytes.Equal(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
	got, err := DecodeContentHeader(b)
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("got %#v, %v", got, err)
	}
}

// TestContentHeaderInteropBytes checks a header as a client sends it for a
// persistent text message, written out by hand.
func TestContentHeaderInteropBytes(t *testing.T) {
	wire := unhex(t, "003c 0000 000000000000000b 9000 0a 746578742f706c61696e 02")
	h, err := DecodeContentHeader(wire)
	if err != nil {
		t.Fatal(err)
	}
	want := ContentHeader{ClassID: ClassBasic, BodySize: 11, Properties: Properties{
		Flags: FlagContentType | FlagDeliveryMode, ContentType: "text/plain", DeliveryMode: 2,
	}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %#v, want %#v", h, want)
	}
	built := ContentHeader{ClassID: ClassBasic, BodySize: 11, Properties: Properties{ContentType: "text/plain", DeliveryMode: 2}}
	b, err := AppendContentHeader(nil, &built)
	if err != nil || !bytes.Equal(b, wire) {
		t.Fatalf("built header % x, %v; want % x", b, err, wire)
	}
}

// TestPropertyFlagsKeepZeroValues checks that a property present with a
// zero value (an empty content type, priority 0) survives a round trip.
func TestPropertyFlagsKeepZeroValues(t *testing.T) {
	h := ContentHeader{ClassID: ClassBasic, Properties: Properties{Flags: FlagContentType | FlagPriority | FlagHeaders | FlagTimestamp}}
	b, err := AppendContentHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "003c 0000 0000000000000000 a840 00 00000000 00 0000000000000000")
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
	got, err := DecodeContentHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Properties.Flags != h.Properties.Flags || got.Properties.Present() != h.Properties.Flags {
		t.Fatalf("flags %#04x present %#04x", got.Properties.Flags, got.Properties.Present())
	}
}

func TestContentHeaderEachPropertyAlone(t *testing.T) {
	full := fullProperties()
	fv := reflect.ValueOf(full)
	for i := 1; i < fv.NumField(); i++ { // field 0 is Flags
		var p Properties
		reflect.ValueOf(&p).Elem().Field(i).Set(fv.Field(i))
		h := ContentHeader{ClassID: ClassBasic, BodySize: 3, Properties: p}
		b, err := AppendContentHeader(nil, &h)
		if err != nil {
			t.Fatal(err)
		}
		flag := PropertyFlags(1 << (16 - i))
		if got := PropertyFlags(uint16(b[12])<<8 | uint16(b[13])); got != flag {
			t.Fatalf("%s: flags %#04x, want %#04x", fv.Type().Field(i).Name, got, flag)
		}
		back, err := DecodeContentHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		h.Properties.Flags = flag
		if !reflect.DeepEqual(back, h) {
			t.Fatalf("%s: got %#v, want %#v", fv.Type().Field(i).Name, back, h)
		}
	}
}

func TestContentHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		wire  string
		code  uint16
		cause error
	}{
		{"short", "003c 0000 00000000", ReplyFrameError, ErrTruncated},
		{"no flags", "003c 0000 0000000000000000", ReplyFrameError, ErrTruncated},
		{"other class", "000a 0000 0000000000000000 0000", ReplyUnexpectedFrame, ErrUnexpectedFrame},
		{"weight", "003c 0001 0000000000000000 0000", ReplySyntaxError, ErrHeaderWeight},
		{"continuation bit", "003c 0000 0000000000000000 0001 0000", ReplySyntaxError, ErrPropertyFlags},
		{"reserved bit", "003c 0000 0000000000000000 0002", ReplySyntaxError, ErrPropertyFlags},
		{"flagged property missing", "003c 0000 0000000000000000 8000", ReplyFrameError, ErrTruncated},
		{"trailing bytes", "003c 0000 0000000000000000 0000 00", ReplyFrameError, ErrTrailingBytes},
		{"bad headers table", "003c 0000 0000000000000000 2000 00000003 01 6b 3f", ReplySyntaxError, ErrUnknownFieldType},
	}
	for _, c := range cases {
		_, err := DecodeContentHeader(unhex(t, c.wire))
		wantCode(t, err, c.code, c.cause)
	}
	if _, err := AppendContentHeader(nil, &ContentHeader{ClassID: ClassQueue}); err == nil {
		t.Fatal("encoded a header for class queue")
	}
}
