package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/wharfmq/wharf/internal/amqp/spec"
)

func TestEveryMethodOfTheSpecIsGenerated(t *testing.T) {
	var d struct {
		Classes []struct {
			ID      int
			Name    string
			Methods []struct {
				ID          int
				Name        string
				Synchronous bool
				Content     bool
			}
		}
	}
	if err := json.Unmarshal(spec.JSON(), &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range d.Classes {
		if ClassName(uint16(c.ID)) != c.Name {
			t.Errorf("ClassName(%d) = %q, want %q", c.ID, ClassName(uint16(c.ID)), c.Name)
		}
		for _, sm := range c.Methods {
			n++
			m := newMethod(uint16(c.ID), uint16(sm.ID))
			if m == nil {
				t.Errorf("%s.%s not generated", c.Name, sm.Name)
				continue
			}
			if m.Name() != c.Name+"."+sm.Name || m.ClassID() != uint16(c.ID) || m.MethodID() != uint16(sm.ID) ||
				m.HasContent() != sm.Content || m.Synchronous() != sm.Synchronous {
				t.Errorf("%T: name %q ids %d/%d content %v sync %v; spec %s.%s %d/%d content %v sync %v",
					m, m.Name(), m.ClassID(), m.MethodID(), m.HasContent(), m.Synchronous(),
					c.Name, sm.Name, c.ID, sm.ID, sm.Content, sm.Synchronous)
			}
		}
	}
	if got := len(allMethods()); got != n {
		t.Fatalf("%d methods generated, spec has %d", got, n)
	}
}

// TestMethodRoundTrip encodes every method with every field set, and with
// each bit alone, decodes it and compares.
func TestMethodRoundTrip(t *testing.T) {
	for _, proto := range allMethods() {
		patterns := []func(int) bool{
			func(int) bool { return true },
			func(int) bool { return false },
		}
		for i := range countBools(proto) {
			patterns = append(patterns, func(j int) bool { return i == j })
		}
		for _, bit := range patterns {
			m := newMethod(proto.ClassID(), proto.MethodID())
			fillMethod(m, bit)
			b, err := m.AppendTo([]byte("prefix"))
			if err != nil {
				t.Fatalf("%s: encode: %v", m.Name(), err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatalf("%s: AppendTo overwrote the prefix", m.Name())
			}
			got, err := DecodeMethod(b[6:])
			if err != nil {
				t.Fatalf("%s: decode: %v", m.Name(), err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("%s: round trip\n got %#v\nwant %#v", m.Name(), got, m)
			}
			again, err := got.AppendTo(nil)
			if err != nil || !bytes.Equal(again, b[6:]) {
				t.Fatalf("%s: re-encoding differs (%v)", m.Name(), err)
			}
		}
	}
}

// TestMethodInteropBytes checks encodings written out by hand from the
// specification's layout (ids, then arguments; bits packed LSB first).
func TestMethodInteropBytes(t *testing.T) {
	cases := []struct {
		m    Method
		want string
	}{
		{&ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60},
			"000a 001e 07ff 00020000 003c"},
		{&ConnectionOpen{VirtualHost: "/"},
			"000a 0028 01 2f 00 00"},
		{&ConnectionClose{ReplyCode: ReplyFrameError, ReplyText: "x", FailingClassID: 60, FailingMethodID: 40},
			"000a 0032 01f5 01 78 003c 0028"},
		{&ChannelOpenOk{},
			"0014 000b 00000000"},
		{&QueueDeclare{Queue: "q", Durable: true, NoWait: true},
			"0032 000a 0000 01 71 12 00000000"},
		{&ExchangeDeclare{Exchange: "x", Type: "topic", Passive: true, Internal: true, Arguments: Table{"alternate-exchange": "ae"}},
			"0028 000a 0000 01 78 05 746f706963 09 0000001a 12 616c7465726e6174652d65786368616e6765 53 00000002 6165"},
		{&BasicPublish{Exchange: "", RoutingKey: "rk", Mandatory: true},
			"003c 0028 0000 00 02 726b 01"},
		{&BasicPublish{RoutingKey: "rk", Immediate: true},
			"003c 0028 0000 00 02 726b 02"},
		{&BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, Redelivered: true, Exchange: "e", RoutingKey: "r"},
			"003c 003c 01 63 0000000000000001 01 01 65 01 72"},
		{&BasicNack{DeliveryTag: 5, Multiple: true, Requeue: true},
			"003c 0078 0000000000000005 03"},
		{&BasicNack{DeliveryTag: 5, Requeue: true},
			"003c 0078 0000000000000005 02"},
		{&BasicQos{PrefetchCount: 10, Global: true},
			"003c 000a 00000000 000a 01"},
		{&ConfirmSelect{NoWait: true}, "0055 000a 01"},
		{&ExchangeUnbindOk{}, "0028 0033"},
		{&ConnectionBlocked{Reason: "low"}, "000a 003c 03 6c6f77"},
		{&ConnectionUpdateSecret{NewSecret: "s", Reason: "r"}, "000a 0046 00000001 73 01 72"},
		{&AccessRequest{Realm: "/data", Passive: true, Active: true, Write: true, Read: true}, "001e 000a 05 2f64617461 1e"},
	}
	for _, c := range cases {
		want := unhex(t, c.want)
		got, err := c.m.AppendTo(nil)
		if err != nil {
			t.Fatalf("%s: %v", c.m.Name(), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s encodes to\n% x\nwant\n% x", c.m.Name(), got, want)
		}
		back, err := DecodeMethod(want)
		if err != nil {
			t.Fatalf("%s: decode: %v", c.m.Name(), err)
		}
		if !reflect.DeepEqual(back, c.m) {
			t.Errorf("%s decodes to %#v, want %#v", c.m.Name(), back, c.m)
		}
	}
}

func TestDecodeMethodReservedBitsIgnored(t *testing.T) {
	// basic.ack with multiple set and the unused bits of the octet set too.
	m, err := DecodeMethod(unhex(t, "003c 0050 0000000000000007 ff"))
	if err != nil {
		t.Fatal(err)
	}
	if a := m.(*BasicAck); a.DeliveryTag != 7 || !a.Multiple {
		t.Fatalf("got %#v", a)
	}
}

func TestDecodeMethodErrors(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		code    uint16
		cause   error
		ids     [2]uint16
	}{
		{"empty", "", ReplyFrameError, ErrTruncated, [2]uint16{}},
		{"half an id", "003c00", ReplyFrameError, ErrTruncated, [2]uint16{}},
		{"unknown class", "0063 000a", ReplyNotImplemented, ErrUnknownClass, [2]uint16{}},
		{"unknown method", "003c 0063", ReplyNotImplemented, ErrUnknownMethod, [2]uint16{60, 99}},
		{"truncated args", "003c 0028 0000 00 05 726b", ReplyFrameError, ErrTruncated, [2]uint16{60, 40}},
		{"missing bits", "003c 0028 0000 00 02 726b", ReplyFrameError, ErrTruncated, [2]uint16{60, 40}},
		{"trailing bytes", "003c 0028 0000 00 02 726b 01 00", ReplyFrameError, ErrTrailingBytes, [2]uint16{60, 40}},
		{"table longer than payload", "0032 000a 0000 01 71 00 00000010 0000", ReplyFrameError, ErrTruncated, [2]uint16{50, 10}},
		{"bad table tag", "0032 000a 0000 01 71 00 00000004 01 6b 3f 00", ReplySyntaxError, ErrUnknownFieldType, [2]uint16{50, 10}},
		{"close-ok with args", "000a 0033 00", ReplyFrameError, ErrTrailingBytes, [2]uint16{10, 51}},
	}
	for _, c := range cases {
		m, err := DecodeMethod(unhex(t, c.payload))
		if m != nil {
			t.Errorf("%s: decoded %#v", c.name, m)
		}
		e := wantCode(t, err, c.code, c.cause)
		if e.ClassID != c.ids[0] || e.MethodID != c.ids[1] {
			t.Errorf("%s: error names %d/%d, want %d/%d", c.name, e.ClassID, e.MethodID, c.ids[0], c.ids[1])
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	long := string(make([]byte, 256))
	_, err := (&BasicPublish{RoutingKey: long}).AppendTo(nil)
	if !errors.Is(err, ErrShortStringTooLong) {
		t.Fatalf("long routing key: %v", err)
	}
	if _, ok := ReplyCode(err); ok {
		t.Fatalf("encoding error %v carries a reply code", err)
	}
	_, err = (&QueueDeclare{Arguments: Table{"x": struct{}{}}}).AppendTo(nil)
	if !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("unsupported argument: %v", err)
	}
	b := []byte("keep")
	out, err := (&QueueDeclare{Queue: long}).AppendTo(b)
	if err == nil || string(out) != "keep" {
		t.Fatalf("failed encode returned %q, %v", out, err)
	}
}

func TestMethodNames(t *testing.T) {
	if got := MethodName(ClassBasic, 40); got != "basic.publish" {
		t.Fatalf("MethodName = %q", got)
	}
	if got := MethodName(ClassBasic, 999); got != "" {
		t.Fatalf("MethodName of an unknown id = %q", got)
	}
	if ReplyName(ReplyFrameError) != "FRAME_ERROR" || ReplyName(1) != "" {
		t.Fatal("ReplyName")
	}
	if !IsHardError(ReplyFrameError) || !IsHardError(ReplyNotImplemented) || IsHardError(ReplyPreconditionFailed) || IsHardError(ReplySuccess) {
		t.Fatal("IsHardError")
	}
	if ProtocolHeader != "AMQP\x00\x00\x09\x01" || FrameEnd != 0xCE || FrameMinSize != 4096 {
		t.Fatal("constants")
	}
}

func TestErrorText(t *testing.T) {
	_, err := DecodeMethod(unhex(t, "003c 0028 0000 00 05 726b"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if txt := e.ReplyText(); len(txt) > 255 || txt[:len("FRAME_ERROR - ")] != "FRAME_ERROR - " {
		t.Fatalf("ReplyText %q", txt)
	}
	big := &Error{Code: ReplySyntaxError, Err: errors.New(string(bytes.Repeat([]byte("é"), 300)))}
	txt := big.ReplyText()
	if len(txt) > 255 || !utf8Valid(txt) {
		t.Fatalf("long ReplyText: %d bytes, valid %v", len(txt), utf8Valid(txt))
	}
	if code, ok := ReplyCode(err); !ok || code != ReplyFrameError {
		t.Fatalf("ReplyCode = %d, %v", code, ok)
	}
}
