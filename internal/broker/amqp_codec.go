package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// The AMQP 0-9-1 encoding of field tables and of the basic class's
// properties, as far as the core rewrites messages: dead-lettering adds the
// x-death headers and removes the expiration. Tags are RabbitMQ's (see
// Table); keys are written sorted, so equal tables encode to equal bytes.

var errCodec = errors.New("malformed AMQP encoding")

// maxCodecDepth bounds how deep tables and arrays nest.
const maxCodecDepth = 32

// appendWireTable appends t with its length prefix.
func appendWireTable(b []byte, t map[string]any, depth int) ([]byte, error) {
	if depth > maxCodecDepth {
		return nil, fmt.Errorf("%w: tables nested too deep", errCodec)
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if len(k) > math.MaxUint8 {
			return nil, fmt.Errorf("%w: table key too long", errCodec)
		}
		b = append(b, byte(len(k)))
		b = append(b, k...)
		var err error
		if b, err = appendWireField(b, t[k], depth); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}

func appendWireField(b []byte, v any, depth int) ([]byte, error) {
	tag := fieldTag(v)
	b = append(b, tag)
	switch x := v.(type) {
	case nil:
	case bool:
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case int8:
		return append(b, byte(x)), nil
	case uint8:
		return append(b, x), nil
	case int16:
		return binary.BigEndian.AppendUint16(b, uint16(x)), nil
	case uint16:
		return binary.BigEndian.AppendUint16(b, x), nil
	case int32:
		return binary.BigEndian.AppendUint32(b, uint32(x)), nil
	case uint32:
		return binary.BigEndian.AppendUint32(b, x), nil
	case int64:
		return binary.BigEndian.AppendUint64(b, uint64(x)), nil
	case int:
		return binary.BigEndian.AppendUint64(b, uint64(x)), nil
	case float32:
		return binary.BigEndian.AppendUint32(b, math.Float32bits(x)), nil
	case float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case Decimal:
		return binary.BigEndian.AppendUint32(append(b, x.Scale), x.Value), nil
	case string:
		return append(binary.BigEndian.AppendUint32(b, uint32(len(x))), x...), nil
	case []byte:
		return append(binary.BigEndian.AppendUint32(b, uint32(len(x))), x...), nil
	case time.Time:
		return binary.BigEndian.AppendUint64(b, uint64(x.Unix())), nil
	case []any:
		if depth+1 > maxCodecDepth {
			return nil, fmt.Errorf("%w: arrays nested too deep", errCodec)
		}
		start := len(b)
		b = append(b, 0, 0, 0, 0)
		for _, e := range x {
			var err error
			if b, err = appendWireField(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
		return b, nil
	default:
		if t, ok := asTable(v); ok {
			return appendWireTable(b, t, depth+1)
		}
		if d, ok := asDecimal(v); ok {
			return binary.BigEndian.AppendUint32(append(b, d.Scale), d.Value), nil
		}
		return nil, fmt.Errorf("%w: unsupported value type %T", errCodec, v)
	}
	return b, nil
}

// wireReader decodes from a byte slice, remembering the first failure.
type wireReader struct {
	p   []byte
	bad bool
}

func (r *wireReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.p) {
		r.bad = true
		return nil
	}
	out := r.p[:n]
	r.p = r.p[n:]
	return out
}

func (r *wireReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *wireReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *wireReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *wireReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// table reads a table with its length prefix.
func (r *wireReader) table(depth int) Table {
	if depth > maxCodecDepth {
		r.bad = true
		return nil
	}
	sub := wireReader{p: r.take(int(r.u32()))}
	if r.bad {
		return nil
	}
	t := Table{}
	for len(sub.p) > 0 && !sub.bad {
		k := string(sub.take(int(sub.u8())))
		t[k] = sub.field(depth)
	}
	r.bad = r.bad || sub.bad
	return t
}

func (r *wireReader) field(depth int) any {
	switch r.u8() {
	case 'V':
		return nil
	case 't':
		return r.u8() != 0
	case 'b':
		return int8(r.u8())
	case 'B':
		return r.u8()
	case 's':
		return int16(r.u16())
	case 'u':
		return r.u16()
	case 'I':
		return int32(r.u32())
	case 'i':
		return r.u32()
	case 'l':
		return int64(r.u64())
	case 'f':
		return math.Float32frombits(r.u32())
	case 'd':
		return math.Float64frombits(r.u64())
	case 'D':
		return Decimal{Scale: r.u8(), Value: r.u32()}
	case 'S':
		return string(r.take(int(r.u32())))
	case 'x':
		return slices.Clone(r.take(int(r.u32())))
	case 'T':
		return time.Unix(int64(r.u64()), 0).UTC()
	case 'F':
		return r.table(depth + 1)
	case 'A':
		if depth+1 > maxCodecDepth {
			r.bad = true
			return nil
		}
		sub := wireReader{p: r.take(int(r.u32()))}
		out := []any{}
		for len(sub.p) > 0 && !sub.bad {
			out = append(out, sub.field(depth+1))
		}
		r.bad = r.bad || sub.bad
		return out
	}
	r.bad = true
	return nil
}

// basicProps is the basic class's properties split into their encoded
// fields: fields[i] is the encoding of the field of flag bit 15-i (with
// its length prefix, if any), nil when absent.
type basicProps struct {
	fields [14][]byte
}

const (
	propIndexHeaders    = 2 // bit 13
	propIndexExpiration = 7 // bit 8
)

// splitProperties splits encoded basic properties into their fields.
func splitProperties(props []byte) (basicProps, error) {
	var bp basicProps
	if len(props) == 0 {
		return bp, nil
	}
	r := wireReader{p: props}
	flags := r.u16()
	if flags&1 != 0 {
		return bp, fmt.Errorf("%w: property flags continue", errCodec)
	}
	for i := range bp.fields {
		if flags&(1<<(15-i)) == 0 {
			continue
		}
		before := r.p
		switch i {
		case propIndexHeaders:
			r.take(int(r.u32()))
		case 3, 4: // delivery-mode, priority
			r.take(1)
		case 9: // timestamp
			r.take(8)
		default: // short strings
			r.take(int(r.u8()))
		}
		if r.bad {
			return bp, fmt.Errorf("%w: properties", errCodec)
		}
		bp.fields[i] = before[:len(before)-len(r.p)]
	}
	return bp, nil
}

// headers decodes the headers property; nil when absent.
func (bp *basicProps) headers() (Table, error) {
	f := bp.fields[propIndexHeaders]
	if f == nil {
		return nil, nil
	}
	r := wireReader{p: f}
	t := r.table(1)
	if r.bad {
		return nil, fmt.Errorf("%w: headers", errCodec)
	}
	return t, nil
}

// encode writes the properties back.
func (bp *basicProps) encode() []byte {
	var flags uint16
	n := 2
	for i, f := range bp.fields {
		if f != nil {
			flags |= 1 << (15 - i)
			n += len(f)
		}
	}
	out := binary.BigEndian.AppendUint16(make([]byte, 0, n), flags)
	for _, f := range bp.fields {
		out = append(out, f...)
	}
	return out
}
