package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTableRoundTripEveryType(t *testing.T) {
	in := sampleTable()
	b, err := AppendTable(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip\n got %#v\nwant %#v", out, in)
	}
	again, err := AppendTable(nil, out)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs: %v", err)
	}
}

// TestTableDecodeEveryTag decodes hand-written bytes for each of RabbitMQ's
// type tags.
func TestTableDecodeEveryTag(t *testing.T) {
	cases := []struct {
		tag  string
		wire string
		want any
	}{
		{"t", "74 01", true},
		{"t false", "74 00", false},
		{"t non-zero", "74 07", true},
		{"b", "62 ff", int8(-1)},
		{"B", "42 ff", uint8(255)},
		{"s (int16, not shortstr)", "73 fffe", int16(-2)},
		{"u", "75 fffe", uint16(65534)},
		{"I", "49 ffffffff", int32(-1)},
		{"i", "69 ffffffff", uint32(math.MaxUint32)},
		{"l", "6c fffffffffffffffe", int64(-2)},
		{"f", "66 3fc00000", float32(1.5)},
		{"d", "64 4002000000000000", 2.25},
		{"D", "44 02 000001f4", Decimal{Scale: 2, Value: 500}},
		{"S", "53 00000003 616263", "abc"},
		{"x", "78 00000002 00ff", []byte{0, 0xFF}},
		{"T", "54 000000006553f100", time.Unix(1700000000, 0).UTC()},
		{"V", "56", nil},
		{"F", "46 00000007 01 6b 49 00000001", Table{"k": int32(1)}},
		{"F empty", "46 00000000", Table(nil)},
		{"A", "41 0000000b 49 00000001 53 00000001 73", []any{int32(1), "s"}},
		{"A empty", "41 00000000", []any{}},
	}
	for _, c := range cases {
		field := unhex(t, c.wire)
		// A table holding the one field under key "k".
		body := append([]byte{1, 'k'}, field...)
		b := append([]byte{0, 0, 0, byte(len(body))}, body...)
		tab, err := DecodeTable(b)
		if err != nil {
			t.Fatalf("%s: %v", c.tag, err)
		}
		got, ok := tab["k"]
		if !ok || !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: got %#v (%T), want %#v (%T)", c.tag, got, got, c.want, c.want)
		}
	}
}

// TestTableInteropBytes checks the encoding of tables against bytes written
// out by hand, among them the capabilities a RabbitMQ client announces.
func TestTableInteropBytes(t *testing.T) {
	cases := []struct {
		in   Table
		want string
	}{
		{nil, "00000000"},
		{Table{}, "00000000"},
		{Table{"publisher_confirms": true},
			"00000015 12 7075626c69736865725f636f6e6669726d73 74 01"},
		{Table{"x-max-length": int32(10)},
			"00000012 0c 782d6d61782d6c656e677468 49 0000000a"},
		{Table{"x-message-ttl": 60000},
			"00000017 0d 782d6d6573736167652d74746c 6c 000000000000ea60"},
		{Table{"b": []byte("hi"), "a": "x"},
			"00000011 01 61 53 00000001 78 01 62 78 00000002 6869"},
		{Table{"n": map[string]any{"v": nil}},
			"0000000a 01 6e 46 00000003 01 76 56"},
		{Table{"a": []any{int16(-1), uint16(1)}},
			"0000000d 01 61 41 00000006 73 ffff 75 0001"},
	}
	for _, c := range cases {
		got, err := AppendTable(nil, c.in)
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		if want := unhex(t, c.want); !bytes.Equal(got, want) {
			t.Errorf("%v encodes to\n% x\nwant\n% x", c.in, got, want)
		}
	}
}

func nest(depth int) Table {
	t := Table{"leaf": true}
	for range depth - 1 {
		t = Table{"t": t}
	}
	return t
}

func TestTableDepthLimit(t *testing.T) {
	ok, err := AppendTable(nil, nest(MaxTableDepth))
	if err != nil {
		t.Fatalf("depth %d: %v", MaxTableDepth, err)
	}
	if _, err := DecodeTable(ok); err != nil {
		t.Fatalf("decode depth %d: %v", MaxTableDepth, err)
	}
	if _, err := AppendTable(nil, nest(MaxTableDepth+1)); !errors.Is(err, ErrTableTooDeep) {
		t.Fatalf("encode depth %d: %v", MaxTableDepth+1, err)
	}
	// One level too deep, built by hand: arrays count as levels too.
	_, err = DecodeTable(wrapTable(MaxTableDepth + 1))
	wantCode(t, err, ReplySyntaxError, ErrTableTooDeep)
	if _, err := DecodeTable(wrapTable(MaxTableDepth)); err != nil {
		t.Fatalf("depth %d: %v", MaxTableDepth, err)
	}
	// A cycle is caught by the depth limit, not a stack overflow.
	cyc := Table{}
	cyc["self"] = cyc
	if _, err := AppendTable(nil, cyc); !errors.Is(err, ErrTableTooDeep) {
		t.Fatalf("cyclic table: %v", err)
	}
}

// wrapTable returns a table of depth levels: arrays inside a table, the
// innermost array empty.
func wrapTable(depth int) []byte {
	v := []byte{'A', 0, 0, 0, 0} // the innermost, empty array
	for range depth - 2 {
		v = append([]byte{'A', byte(len(v) >> 24), byte(len(v) >> 16), byte(len(v) >> 8), byte(len(v))}, v...)
	}
	body := append([]byte{1, 'k'}, v...)
	return append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func TestTableBounds(t *testing.T) {
	cases := []struct {
		name  string
		wire  string
		code  uint16
		cause error
	}{
		{"no length", "0000", ReplyFrameError, ErrTruncated},
		{"length beyond bytes", "00000010 01 6b 56", ReplyFrameError, ErrTruncated},
		{"huge length", "ffffffff 01 6b 56", ReplyFrameError, ErrTruncated},
		{"key beyond table", "00000002 05 6b", ReplyFrameError, ErrTruncated},
		{"missing value", "00000002 01 6b", ReplyFrameError, ErrTruncated},
		{"string beyond table", "00000008 01 6b 53 000000ff 61", ReplyFrameError, ErrTruncated},
		{"huge byte array", "00000007 01 6b 78 7fffffff", ReplyFrameError, ErrTruncated},
		{"value runs into next", "00000004 01 6b 49 00 0000", ReplyFrameError, ErrTruncated},
		{"nested beyond outer", "00000008 01 6b 46 00000010 00", ReplyFrameError, ErrTruncated},
		{"array beyond outer", "00000008 01 6b 41 00000010 00", ReplyFrameError, ErrTruncated},
		{"unknown tag", "00000003 01 6b 4c", ReplySyntaxError, ErrUnknownFieldType},
		{"unknown tag in array", "00000008 01 6b 41 00000001 63", ReplySyntaxError, ErrUnknownFieldType},
		{"trailing bytes", "00000003 01 6b 56 00", ReplyFrameError, ErrTrailingBytes},
	}
	for _, c := range cases {
		tab, err := DecodeTable(unhex(t, c.wire))
		if tab != nil {
			t.Errorf("%s: decoded %v", c.name, tab)
		}
		wantCode(t, err, c.code, c.cause)
	}
}

func TestTableEncodeErrors(t *testing.T) {
	for name, tab := range map[string]Table{
		"uint64":       {"k": uint64(1)},
		"struct":       {"k": struct{}{}},
		"[]string":     {"k": []string{"a"}},
		"nested":       {"k": Table{"j": complex(1, 2)}},
		"in array":     {"k": []any{uint(1)}},
		"long key":     {strings.Repeat("k", 256): true},
		"long in nest": {"k": Table{strings.Repeat("k", 256): true}},
	} {
		b, err := AppendTable([]byte("x"), tab)
		if err == nil {
			t.Errorf("%s: encoded", name)
			continue
		}
		if string(b) != "x" {
			t.Errorf("%s: failed encode returned %q", name, b)
		}
		if _, ok := ReplyCode(err); ok {
			t.Errorf("%s: encoding error carries a reply code", name)
		}
	}
}

func TestTableDecodeCopies(t *testing.T) {
	b, err := AppendTable(nil, Table{"s": "abc", "x": []byte("def")})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if tab["s"] != "abc" || string(tab["x"].([]byte)) != "def" {
		t.Fatalf("decoded table changed with its input: %v", tab)
	}
}
