package wire

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Table is an AMQP field table (connection properties, method arguments,
// message headers).
//
// Decoding uses RabbitMQ's type tags (the ones RabbitMQ and Qpid put on the
// wire, which differ from the table printed in the 0-9-1 specification: 's'
// is a signed 16-bit integer there, not a short string) and gives each tag
// one Go type:
//
//	't' bool          (any non-zero octet is true)
//	'b' int8          'B' uint8
//	's' int16         'u' uint16
//	'I' int32         'i' uint32
//	'l' int64
//	'f' float32       'd' float64
//	'D' Decimal
//	'S' string        (long string; any bytes)
//	'x' []byte        (byte array)
//	'T' time.Time     (seconds since the Unix epoch, in UTC; the zero
//	                  time.Time is written as 0)
//	'F' Table         (nested table)
//	'A' []any         (field array)
//	'V' nil           (void)
//
// Any other tag is a SYNTAX_ERROR. An empty table decodes to a nil Table.
//
// Encoding picks the tag from the Go type, as the list above reads in the
// other direction, and also accepts int (written as 'l', 64 bits, so no value
// is cut) and map[string]any (written as 'F'). Other types are refused with
// ErrUnsupportedType. Keys are written in sorted order, so equal tables
// encode to equal bytes.
//
// Tables and arrays nest at most MaxTableDepth deep, counting the outermost
// table as depth 1, when decoding and when encoding.
type Table map[string]any

// Decimal is a field-table decimal ('D'): Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value uint32
}

// MaxTableDepth is how deep tables and arrays may nest.
const MaxTableDepth = 32

// tableAt writes t, a table at nesting depth depth, with its length prefix.
func (e *encoder) tableAt(t Table, depth int) {
	if depth > MaxTableDepth {
		e.fail(fmt.Errorf("%w: more than %d levels", ErrTableTooDeep, MaxTableDepth))
		return
	}
	start := len(e.buf)
	e.long(0)
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if e.err != nil {
			return
		}
		if len(k) > math.MaxUint8 {
			e.fail(fmt.Errorf("table key %.20q...: %w", k, ErrShortStringTooLong))
			return
		}
		e.shortstr(k)
		e.field(t[k], depth)
	}
	e.patchLength(start)
}

// arrayAt writes a field array at nesting depth depth.
func (e *encoder) arrayAt(a []any, depth int) {
	if depth > MaxTableDepth {
		e.fail(fmt.Errorf("%w: more than %d levels", ErrTableTooDeep, MaxTableDepth))
		return
	}
	start := len(e.buf)
	e.long(0)
	for _, v := range a {
		e.field(v, depth)
	}
	e.patchLength(start)
}

// patchLength fills in the 32-bit length prefix at start.
func (e *encoder) patchLength(start int) {
	if e.err != nil {
		return
	}
	n := len(e.buf) - start - 4
	if uint64(n) > math.MaxUint32 {
		e.fail(fmt.Errorf("%w: table of %d bytes", ErrLongStringTooLong, n))
		return
	}
	binary.BigEndian.PutUint32(e.buf[start:], uint32(n))
}

// field writes one tagged value held in a table or array at depth depth.
func (e *encoder) field(v any, depth int) {
	if e.err != nil {
		return
	}
	switch v := v.(type) {
	case nil:
		e.octet('V')
	case bool:
		e.octet('t')
		if v {
			e.octet(1)
		} else {
			e.octet(0)
		}
	case int8:
		e.octet('b')
		e.octet(uint8(v))
	case uint8:
		e.octet('B')
		e.octet(v)
	case int16:
		e.octet('s')
		e.short(uint16(v))
	case uint16:
		e.octet('u')
		e.short(v)
	case int32:
		e.octet('I')
		e.long(uint32(v))
	case uint32:
		e.octet('i')
		e.long(v)
	case int64:
		e.octet('l')
		e.longlong(uint64(v))
	case int:
		e.octet('l')
		e.longlong(uint64(v))
	case float32:
		e.octet('f')
		e.long(math.Float32bits(v))
	case float64:
		e.octet('d')
		e.longlong(math.Float64bits(v))
	case Decimal:
		e.octet('D')
		e.octet(v.Scale)
		e.long(v.Value)
	case string:
		e.octet('S')
		e.longstr(v)
	case []byte:
		e.octet('x')
		if uint64(len(v)) > math.MaxUint32 {
			e.fail(fmt.Errorf("%w: byte array of %d bytes", ErrLongStringTooLong, len(v)))
			return
		}
		e.long(uint32(len(v)))
		e.buf = append(e.buf, v...)
	case time.Time:
		e.octet('T')
		e.timestamp(v)
	case Table:
		e.octet('F')
		e.tableAt(v, depth+1)
	case map[string]any:
		e.octet('F')
		e.tableAt(Table(v), depth+1)
	case []any:
		e.octet('A')
		e.arrayAt(v, depth+1)
	default:
		e.fail(fmt.Errorf("%w: %T", ErrUnsupportedType, v))
	}
}

// tableAt reads a length-prefixed table at nesting depth depth.
func (d *decoder) tableAt(depth int) Table {
	body := d.take(uint64(d.long()))
	if d.err != nil {
		return nil
	}
	if depth > MaxTableDepth {
		d.fail(protoErr(ReplySyntaxError, ErrTableTooDeep, "more than %d levels", MaxTableDepth))
		return nil
	}
	if len(body) == 0 {
		return nil
	}
	sub := decoder{buf: body}
	t := make(Table)
	for sub.err == nil && sub.remaining() > 0 {
		k := sub.shortstr()
		v := sub.field(depth)
		if sub.err == nil {
			t[k] = v
		}
	}
	if sub.err != nil {
		d.fail(sub.err)
		return nil
	}
	return t
}

// arrayAt reads a length-prefixed field array at nesting depth depth.
func (d *decoder) arrayAt(depth int) []any {
	body := d.take(uint64(d.long()))
	if d.err != nil {
		return nil
	}
	if depth > MaxTableDepth {
		d.fail(protoErr(ReplySyntaxError, ErrTableTooDeep, "more than %d levels", MaxTableDepth))
		return nil
	}
	sub := decoder{buf: body}
	a := []any{}
	for sub.err == nil && sub.remaining() > 0 {
		v := sub.field(depth)
		if sub.err == nil {
			a = append(a, v)
		}
	}
	if sub.err != nil {
		d.fail(sub.err)
		return nil
	}
	return a
}

// field reads one tagged value held in a table or array at depth depth.
func (d *decoder) field(depth int) any {
	tag := d.octet()
	if d.err != nil {
		return nil
	}
	switch tag {
	case 'V':
		return nil
	case 't':
		return d.octet() != 0
	case 'b':
		return int8(d.octet())
	case 'B':
		return d.octet()
	case 's':
		return int16(d.short())
	case 'u':
		return d.short()
	case 'I':
		return int32(d.long())
	case 'i':
		return d.long()
	case 'l':
		return int64(d.longlong())
	case 'f':
		return math.Float32frombits(d.long())
	case 'd':
		return math.Float64frombits(d.longlong())
	case 'D':
		scale := d.octet()
		return Decimal{Scale: scale, Value: d.long()}
	case 'S':
		return d.longstr()
	case 'x':
		b := d.take(uint64(d.long()))
		return append([]byte{}, b...)
	case 'T':
		return d.timestamp()
	case 'F':
		return d.tableAt(depth + 1)
	case 'A':
		return d.arrayAt(depth + 1)
	}
	d.fail(protoErr(ReplySyntaxError, ErrUnknownFieldType, "tag %q (0x%02x)", rune(tag), tag))
	return nil
}

// AppendTable appends t as a field table (32-bit length, then the fields).
func AppendTable(b []byte, t Table) ([]byte, error) {
	e := encoder{buf: b}
	e.table(t)
	if e.err != nil {
		return b, e.err
	}
	return e.buf, nil
}

// DecodeTable decodes a field table that fills b exactly (32-bit length,
// then the fields). Errors are *Error values.
func DecodeTable(b []byte) (Table, error) {
	d := decoder{buf: b}
	t := d.table()
	if err := d.finish(); err != nil {
		return nil, err
	}
	return t, nil
}
