package broker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Table is an AMQP field table as the core sees it: declare and bind
// arguments, and message headers for the headers exchange. Values are plain
// Go values, one Go type per AMQP field type:
//
//	nil         void ('V')
//	bool        boolean ('t')
//	int8        short-short-int ('b')      uint8   short-short-uint ('B')
//	int16       short-int ('s')            uint16  short-uint ('u')
//	int32       long-int ('I')             uint32  long-uint ('i')
//	int64       long-long-int ('l')
//	float32     float ('f')                float64 double ('d')
//	Decimal     decimal ('D')
//	string      long string ('S')          []byte  byte array ('x')
//	time.Time   timestamp ('T', whole seconds)
//	Table       nested table ('F')         []any   array ('A')
//
// Tables the broker keeps (arguments) are normalised when they come in: int
// and uint become int64, a nested map[string]any becomes a Table, timestamps
// are cut to whole seconds, and anything else is refused. A Table handed out
// by the broker is a copy. Message headers passed to Route are read as they
// are, without normalisation.
type Table map[string]any

// Decimal is an AMQP decimal value: Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value uint32
}

// asTable reports v as a table: a Table, a map[string]any, or a value of
// another named type with that underlying type (a protocol codec's own
// table type), so adapters can pass decoded tables as they are.
func asTable(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case Table:
		return x, true
	case map[string]any:
		return x, true
	case nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	mt := reflect.TypeFor[map[string]any]()
	if rv.Kind() != reflect.Map || !rv.Type().ConvertibleTo(mt) {
		return nil, false
	}
	return rv.Convert(mt).Interface().(map[string]any), true
}

// asDecimal reports v as a Decimal: a Decimal, or a value of another struct
// type with the same fields (a protocol codec's own decimal type).
func asDecimal(v any) (Decimal, bool) {
	switch x := v.(type) {
	case Decimal:
		return x, true
	case nil:
		return Decimal{}, false
	}
	rv := reflect.ValueOf(v)
	dt := reflect.TypeFor[Decimal]()
	if rv.Kind() != reflect.Struct || !rv.Type().ConvertibleTo(dt) {
		return Decimal{}, false
	}
	return rv.Convert(dt).Interface().(Decimal), true
}

// fieldTag is the AMQP field type letter of a normalised value ('?' for a
// value of no AMQP type).
func fieldTag(v any) byte {
	switch v.(type) {
	case nil:
		return 'V'
	case bool:
		return 't'
	case int8:
		return 'b'
	case uint8:
		return 'B'
	case int16:
		return 's'
	case uint16:
		return 'u'
	case int32:
		return 'I'
	case uint32:
		return 'i'
	case int64, int, uint, uint64:
		return 'l'
	case float32:
		return 'f'
	case float64:
		return 'd'
	case Decimal:
		return 'D'
	case string:
		return 'S'
	case []byte:
		return 'x'
	case time.Time:
		return 'T'
	case Table, map[string]any:
		return 'F'
	case []any:
		return 'A'
	}
	if _, ok := asTable(v); ok {
		return 'F'
	}
	if _, ok := asDecimal(v); ok {
		return 'D'
	}
	return '?'
}

// fieldTypeName is RabbitMQ's name for a value's field type, as it appears
// in its error messages ("of type 'signedint'").
func fieldTypeName(v any) string {
	switch fieldTag(v) {
	case 'V':
		return "void"
	case 't':
		return "bool"
	case 'b':
		return "byte"
	case 'B':
		return "unsignedbyte"
	case 's':
		return "short"
	case 'u':
		return "unsignedshort"
	case 'I':
		return "signedint"
	case 'i':
		return "unsignedint"
	case 'l':
		return "long"
	case 'f':
		return "float"
	case 'd':
		return "double"
	case 'D':
		return "decimal"
	case 'S':
		return "longstr"
	case 'x':
		return "binary"
	case 'T':
		return "timestamp"
	case 'F':
		return "table"
	case 'A':
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// normalizeTable returns a deep copy of t in normal form, or an error naming
// the first value of no AMQP type. A nil or empty table normalises to nil.
func normalizeTable(t map[string]any) (Table, error) {
	if len(t) == 0 {
		return nil, nil
	}
	out := make(Table, len(t))
	for k, v := range t {
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("argument name %q is not valid UTF-8", k)
		}
		nv, err := normalizeValue(v)
		if err != nil {
			return nil, fmt.Errorf("argument '%s': %w", k, err)
		}
		out[k] = nv
	}
	return out, nil
}

func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, float32, float64, Decimal, string:
		return x, nil
	case int:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a long-long-int", x)
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a long-long-int", x)
		}
		return int64(x), nil
	case []byte:
		return bytes.Clone(x), nil
	case time.Time:
		return time.Unix(x.Unix(), 0).UTC(), nil
	case Table:
		return normalizeNested(x)
	case map[string]any:
		return normalizeNested(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ne, err := normalizeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	}
	if t, ok := asTable(v); ok {
		return normalizeNested(t)
	}
	if d, ok := asDecimal(v); ok {
		return d, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func normalizeNested(t map[string]any) (Table, error) {
	n, err := normalizeTable(t)
	if n == nil && err == nil {
		n = Table{}
	}
	return n, err
}

// clone returns a deep copy of a normalised table.
func (t Table) clone() Table {
	c, _ := normalizeTable(t)
	return c
}

// intValue reports an integer of any width as a sign and magnitude.
func intValue(v any) (neg bool, mag uint64, ok bool) {
	var i int64
	switch x := v.(type) {
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	case int:
		i = int64(x)
	case uint8:
		return false, uint64(x), true
	case uint16:
		return false, uint64(x), true
	case uint32:
		return false, uint64(x), true
	case uint64:
		return false, x, true
	case uint:
		return false, uint64(x), true
	default:
		return false, 0, false
	}
	if i < 0 {
		return true, uint64(-(i + 1)) + 1, true
	}
	return false, uint64(i), true
}

// bytesValue reports a long string or a byte array as bytes.
func bytesValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true // no copy: the compiler does not allocate for comparisons
	}
	return "", false
}

// valuesEqual compares two field values the way RabbitMQ compares decoded
// values (Erlang's =:= on them, the AMQP type tag dropped): integers of every
// width compare by value, float and double compare by value (a float is
// widened), a long string equals a byte array of the same bytes, but an
// integer never equals a float or a decimal. Timestamps equal timestamps of
// the same second. Nested tables and arrays are equal when they have the
// same entries with the same field types and equal values (RabbitMQ keeps
// the type tags inside them).
func valuesEqual(a, b any) bool {
	if an, am, ok := intValue(a); ok {
		bn, bm, ok := intValue(b)
		return ok && an == bn && am == bm
	}
	if as, ok := bytesValue(a); ok {
		bs, ok := bytesValue(b)
		return ok && as == bs
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float32:
		return floatEqual(float64(x), b)
	case float64:
		return floatEqual(x, b)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Unix() == y.Unix()
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if fieldTag(x[i]) != fieldTag(y[i]) || !valuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if x, ok := asTable(a); ok {
		return tablesEqual(x, b)
	}
	if x, ok := asDecimal(a); ok {
		y, ok := asDecimal(b)
		return ok && x == y
	}
	return false
}

func floatEqual(x float64, b any) bool {
	switch y := b.(type) {
	case float32:
		return x == float64(y)
	case float64:
		return x == y
	}
	return false
}

func tablesEqual(x map[string]any, b any) bool {
	y, ok := asTable(b)
	if !ok || len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || fieldTag(xv) != fieldTag(yv) || !valuesEqual(xv, yv) {
			return false
		}
	}
	return true
}

// formatValue renders a value the way RabbitMQ's messages print it: strings
// as their text, everything else as Erlang would print the decoded term.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "undefined"
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case Decimal:
		return fmt.Sprintf("{%d,%d}", x.Scale, x.Value)
	case time.Time:
		return strconv.FormatInt(x.Unix(), 10)
	}
	if neg, mag, ok := intValue(v); ok {
		if neg {
			return "-" + strconv.FormatUint(mag, 10)
		}
		return strconv.FormatUint(mag, 10)
	}
	return fmt.Sprint(v)
}

// MarshalJSON encodes the table with its field types, so that it decodes to
// the same values: {"name": ["I", 5], ...}, keys sorted. Strings that are
// not valid UTF-8 and byte arrays are base64; floats are strings (so NaN
// and infinities survive).
func (t Table) MarshalJSON() ([]byte, error) {
	return appendTableJSON(nil, t)
}

// canonicalKey is a deterministic encoding of a normalised table: two
// tables have the same key exactly when they hold the same names with the
// same field types and values.
func (t Table) canonicalKey() string {
	if len(t) == 0 {
		return ""
	}
	b, err := appendTableJSON(nil, t)
	if err != nil { // normalised tables always encode
		return fmt.Sprint(map[string]any(t))
	}
	return string(b)
}

func appendTableJSON(b []byte, t map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValueJSON(b, t[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValueJSON(b []byte, v any) ([]byte, error) {
	tag := fieldTag(v)
	b = append(b, '[', '"', tag)
	switch x := v.(type) {
	case nil:
		return append(b, '"', ']'), nil
	case bool:
		b = append(b, `",`...)
		b = strconv.AppendBool(b, x)
	case float32:
		b = append(b, `","`...)
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
		b = append(b, '"')
	case float64:
		b = append(b, `","`...)
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
		b = append(b, '"')
	case Decimal:
		b = fmt.Appendf(b, `",[%d,%d]`, x.Scale, x.Value)
	case string:
		if utf8.ValidString(x) {
			b = append(b, `",`...)
			b = appendJSONString(b, x)
		} else {
			b = append(b, `64","`...) // "S64": base64 of bytes that are not UTF-8
			b = base64.StdEncoding.AppendEncode(b, []byte(x))
			b = append(b, '"')
		}
	case []byte:
		b = append(b, `","`...)
		b = base64.StdEncoding.AppendEncode(b, x)
		b = append(b, '"')
	case time.Time:
		b = append(b, `",`...)
		b = strconv.AppendInt(b, x.Unix(), 10)
	case Table:
		b = append(b, `",`...)
		var err error
		if b, err = appendTableJSON(b, x); err != nil {
			return nil, err
		}
	case map[string]any:
		b = append(b, `",`...)
		var err error
		if b, err = appendTableJSON(b, x); err != nil {
			return nil, err
		}
	case []any:
		b = append(b, `",[`...)
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValueJSON(b, e); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	default:
		neg, mag, ok := intValue(v)
		if !ok {
			return nil, fmt.Errorf("unsupported value type %T", v)
		}
		b = append(b, `",`...)
		if neg {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, mag, 10)
	}
	return append(b, ']'), nil
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (t *Table) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*t = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("decoding a table: %w", err)
	}
	out := make(Table, len(raw))
	for k, r := range raw {
		v, err := decodeValueJSON(r)
		if err != nil {
			return fmt.Errorf("decoding table entry %q: %w", k, err)
		}
		out[k] = v
	}
	*t = out
	return nil
}

func decodeValueJSON(data []byte) (any, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	var tag string
	if err := json.Unmarshal(parts[0], &tag); err != nil {
		return nil, err
	}
	if tag == "V" {
		return nil, nil
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("value of type %q: want [type, value]", tag)
	}
	p := parts[1]
	parseInt := func(bits int) (int64, error) { return strconv.ParseInt(string(p), 10, bits) }
	parseUint := func(bits int) (uint64, error) { return strconv.ParseUint(string(p), 10, bits) }
	parseString := func() (string, error) {
		var s string
		err := json.Unmarshal(p, &s)
		return s, err
	}
	switch tag {
	case "t":
		var x bool
		err := json.Unmarshal(p, &x)
		return x, err
	case "b":
		n, err := parseInt(8)
		return int8(n), err
	case "B":
		n, err := parseUint(8)
		return uint8(n), err
	case "s":
		n, err := parseInt(16)
		return int16(n), err
	case "u":
		n, err := parseUint(16)
		return uint16(n), err
	case "I":
		n, err := parseInt(32)
		return int32(n), err
	case "i":
		n, err := parseUint(32)
		return uint32(n), err
	case "l":
		return parseInt(64)
	case "f", "d":
		s, err := parseString()
		if err != nil {
			return nil, err
		}
		if tag == "f" {
			f, err := strconv.ParseFloat(s, 32)
			return float32(f), err
		}
		return strconv.ParseFloat(s, 64)
	case "D":
		var d [2]int64
		if err := json.Unmarshal(p, &d); err != nil {
			return nil, err
		}
		if d[0] < 0 || d[0] > math.MaxUint8 || d[1] < 0 || d[1] > math.MaxUint32 {
			return nil, fmt.Errorf("decimal %v out of range", d)
		}
		return Decimal{Scale: uint8(d[0]), Value: uint32(d[1])}, nil
	case "S":
		return parseString()
	case "S64", "x":
		s, err := parseString()
		if err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if tag == "S64" {
			return string(raw), err
		}
		return raw, err
	case "T":
		n, err := parseInt(64)
		return time.Unix(n, 0).UTC(), err
	case "F":
		var nested Table
		if err := nested.UnmarshalJSON(p); err != nil {
			return nil, err
		}
		if nested == nil {
			nested = Table{}
		}
		return nested, nil
	case "A":
		var elems []json.RawMessage
		if err := json.Unmarshal(p, &elems); err != nil {
			return nil, err
		}
		out := make([]any, len(elems))
		for i, e := range elems {
			v, err := decodeValueJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown field type %q", tag)
}
