package wire

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// unhex decodes a hex string, ignoring spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// allMethods returns a zero value of every method the package defines.
func allMethods() []Method {
	var out []Method
	for c := range 1 << 8 {
		for m := range 1 << 8 {
			if v := newMethod(uint16(c), uint16(m)); v != nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// sampleTable holds one value of every field-table type.
func sampleTable() Table {
	return Table{
		"bool":    true,
		"int8":    int8(-8),
		"uint8":   uint8(200),
		"int16":   int16(-1600),
		"uint16":  uint16(60000),
		"int32":   int32(-320000),
		"uint32":  uint32(4000000000),
		"int64":   int64(-1 << 40),
		"float32": float32(1.5),
		"float64": 2.25,
		"decimal": Decimal{Scale: 2, Value: 12345},
		"string":  "héllo",
		"bytes":   []byte{0, 1, 2, 0xFF},
		"time":    time.Unix(1700000000, 0).UTC(),
		"void":    nil,
		"table":   Table{"inner": "x", "deeper": Table{"n": int32(1)}},
		"array":   []any{int32(1), "two", []any{false}, Table{"k": nil}},
	}
}

// fillMethod sets every field of the method m points to a non-zero value;
// bit fields take their values from bit (called with the field's index
// among the method's bools).
func fillMethod(m Method, bit func(i int) bool) {
	v := reflect.ValueOf(m).Elem()
	bools := 0
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(bit(bools))
			bools++
		case reflect.Uint8:
			f.SetUint(0xA0 + uint64(i))
		case reflect.Uint16:
			f.SetUint(0xBE00 + uint64(i))
		case reflect.Uint32:
			f.SetUint(0xDEAD0000 + uint64(i))
		case reflect.Uint64:
			f.SetUint(0xFEEDFACE_CAFE0000 + uint64(i))
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Map:
			f.Set(reflect.ValueOf(sampleTable()))
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Unix(1700000000+int64(i), 0).UTC()))
		default:
			panic("unhandled field kind " + f.Kind().String())
		}
	}
}

// countBools returns how many bit fields the method has.
func countBools(m Method) int {
	v := reflect.ValueOf(m).Elem()
	n := 0
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Bool {
			n++
		}
	}
	return n
}

// wantCode fails unless err is an *Error with the code and the cause.
func wantCode(t testing.TB, err error, code uint16, cause error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("error %v: code %d, want %d", err, e.Code, code)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("error %v: cause is not %v", err, cause)
	}
	return e
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
