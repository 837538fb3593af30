package broker

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// codecTable and codecDecimal stand for a protocol codec's own types, with
// the broker's underlying types.
type (
	codecTable   map[string]any
	codecDecimal struct {
		Scale uint8
		Value uint32
	}
)

func TestTableJSONRoundTrip(t *testing.T) {
	in := Table{
		"void":         nil,
		"bool":         true,
		"i8":           int8(-8),
		"u8":           uint8(200),
		"i16":          int16(-16000),
		"u16":          uint16(60000),
		"i32":          int32(math.MinInt32),
		"u32":          uint32(math.MaxUint32),
		"i64":          int64(math.MinInt64),
		"int":          7,
		"f32":          float32(1.25),
		"f64":          0.1,
		"nan":          math.NaN(),
		"inf":          math.Inf(-1),
		"dec":          Decimal{Scale: 2, Value: 12345},
		"str":          "héllo \"quoted\"",
		"binstr":       "\xff\xfe not utf-8",
		"ctl":          "a\x01\tb\v<&>\u2028",
		"ctl\x01\"key": "x",
		"bytes":        []byte{0, 1, 2, 255},
		"ts":           time.Unix(1700000000, 999).In(time.FixedZone("x", 3600)),
		"table":        map[string]any{"inner": int32(1), "deeper": Table{}},
		"array":        []any{int16(1), "two", []any{}, nil},
		"codec":        codecTable{"d": codecDecimal{Scale: 1, Value: 5}},
	}
	norm, err := normalizeTable(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(AMQPChange{Steps: []AMQPStep{{DeclareExchange: &ExchangeDef{Name: "x", Type: ExchangeTopic, Arguments: norm}}}})
	if err != nil {
		t.Fatal(err)
	}
	var out AMQPChange
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	got := out.Steps[0].DeclareExchange.Arguments
	for k, want := range norm {
		g := got[k]
		if fieldTag(g) != fieldTag(want) {
			t.Errorf("%s: type %c, want %c", k, fieldTag(g), fieldTag(want))
		}
		if f, ok := want.(float64); ok && math.IsNaN(f) {
			if gf, ok := g.(float64); !ok || !math.IsNaN(gf) {
				t.Errorf("%s: %v, want NaN", k, g)
			}
			continue
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("%s: %#v, want %#v", k, g, want)
		}
	}
	if len(got) != len(norm) {
		t.Errorf("%d entries, want %d", len(got), len(norm))
	}
	// The canonical form is the same whatever the map order and decoding.
	if got.canonicalKey() != norm.canonicalKey() {
		t.Errorf("canonical keys differ:\n%s\n%s", got.canonicalKey(), norm.canonicalKey())
	}
	if _, ok := norm["codec"].(Table)["d"].(Decimal); !ok {
		t.Errorf("a codec's table and decimal types are not normalised: %#v", norm["codec"])
	}
	if norm["int"] != int64(7) || norm["ts"].(time.Time).Location() != time.UTC {
		t.Errorf("not normalised: %#v %#v", norm["int"], norm["ts"])
	}
}

func TestNormalizeTableRefuses(t *testing.T) {
	for name, tab := range map[string]Table{
		"struct":         {"a": struct{}{}},
		"nested":         {"a": []any{map[string]any{"b": 1.5i}}},
		"big uint":       {"a": uint64(math.MaxUint64)},
		"invalid key":    {"\xff": 1},
		"unsupported fn": {"a": func() {}},
	} {
		if _, err := normalizeTable(tab); err == nil {
			t.Errorf("%s: normalised", name)
		}
	}
	if n, err := normalizeTable(Table{}); n != nil || err != nil {
		t.Errorf("empty table: %v %v", n, err)
	}
}

func TestValuesEqual(t *testing.T) {
	ts := time.Unix(100, 0)
	cases := []struct {
		a, b any
		eq   bool
	}{
		{int32(5), int64(5), true},
		{int8(-1), int64(-1), true},
		{uint8(255), int16(255), true},
		{uint32(math.MaxUint32), int64(math.MaxUint32), true},
		{int64(-1), uint32(math.MaxUint32), false},
		{int32(5), float64(5), false},
		{int32(5), Decimal{Value: 5}, false},
		{float32(1.5), float64(1.5), true},
		{float32(0.1), float64(0.1), false},
		{"a", []byte("a"), true},
		{"a", "b", false},
		{"1", int32(1), false},
		{true, true, true},
		{true, int8(1), false},
		{nil, nil, true},
		{nil, "", false},
		{Decimal{2, 150}, Decimal{2, 150}, true},
		{Decimal{2, 150}, Decimal{1, 15}, false},
		{ts, time.Unix(100, 0).UTC(), true},
		{ts, int64(100), false},
		{Table{"k": int32(1)}, Table{"k": int32(1)}, true},
		{Table{"k": int32(1)}, map[string]any{"k": int32(1)}, true},
		{Table{"k": int32(1)}, Table{"k": int64(1)}, false}, // types count inside tables
		{Table{"k": int32(1)}, Table{"k": int32(1), "l": nil}, false},
		{[]any{"a", int8(1)}, []any{"a", int8(1)}, true},
		{[]any{"a", int8(1)}, []any{"a", int16(1)}, false},
		{[]any{"a"}, []any{"a", "b"}, false},
		{codecTable{"k": int32(1)}, Table{"k": int32(1)}, true},
		{codecTable{"k": codecDecimal{1, 5}}, Table{"k": Decimal{1, 5}}, true},
		{codecDecimal{1, 5}, Decimal{1, 5}, true},
		{codecDecimal{1, 5}, Decimal{1, 6}, false},
		{codecTable{}, struct{}{}, false},
	}
	for _, c := range cases {
		if got := valuesEqual(c.a, c.b); got != c.eq {
			t.Errorf("valuesEqual(%#v, %#v) = %v, want %v", c.a, c.b, got, c.eq)
		}
		if got := valuesEqual(c.b, c.a); got != c.eq {
			t.Errorf("valuesEqual(%#v, %#v) = %v, want %v (reversed)", c.b, c.a, got, c.eq)
		}
	}
}

func TestFieldTypeNames(t *testing.T) {
	names := []string{}
	for _, v := range []any{nil, true, int8(0), uint8(0), int16(0), uint16(0), int32(0), uint32(0), int64(0),
		float32(0), float64(0), Decimal{}, "", []byte{}, time.Time{}, Table{}, []any{}} {
		names = append(names, fieldTypeName(v))
	}
	want := "void bool byte unsignedbyte short unsignedshort signedint unsignedint long float double decimal longstr binary timestamp table array"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
