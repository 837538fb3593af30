package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// encoder appends AMQP field values to buf. The first failure is kept in
// err and later calls do nothing, so generated code can write a whole
// argument list and check once.
type encoder struct {
	buf []byte
	err error
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) octet(v uint8) {
	if e.err == nil {
		e.buf = append(e.buf, v)
	}
}

func (e *encoder) short(v uint16) {
	if e.err == nil {
		e.buf = binary.BigEndian.AppendUint16(e.buf, v)
	}
}

func (e *encoder) long(v uint32) {
	if e.err == nil {
		e.buf = binary.BigEndian.AppendUint32(e.buf, v)
	}
}

func (e *encoder) longlong(v uint64) {
	if e.err == nil {
		e.buf = binary.BigEndian.AppendUint64(e.buf, v)
	}
}

func (e *encoder) shortstr(s string) {
	if e.err != nil {
		return
	}
	if len(s) > math.MaxUint8 {
		e.fail(fmt.Errorf("%w: %d bytes", ErrShortStringTooLong, len(s)))
		return
	}
	e.buf = append(e.buf, byte(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) longstr(s string) {
	if e.err != nil {
		return
	}
	if uint64(len(s)) > math.MaxUint32 {
		e.fail(fmt.Errorf("%w: %d bytes", ErrLongStringTooLong, len(s)))
		return
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(s)))
	e.buf = append(e.buf, s...)
}

// timestamp writes t as seconds since the Unix epoch (sub-second precision
// is dropped, as the wire format has none). The zero time.Time is written as
// 0, the epoch.
func (e *encoder) timestamp(t time.Time) {
	if t.IsZero() {
		e.longlong(0)
		return
	}
	e.longlong(uint64(t.Unix()))
}

// table writes a field table (see table.go).
func (e *encoder) table(t Table) {
	if e.err == nil {
		e.tableAt(t, 1)
	}
}

// decoder reads AMQP field values from buf. Every read checks the bytes
// present before it slices or allocates; the first failure is kept in err
// and later reads return zero values. Decoded strings and byte slices are
// copies: nothing decoded aliases buf.
type decoder struct {
	buf []byte
	off int
	err *Error
}

func (d *decoder) fail(err *Error) {
	if d.err == nil {
		d.err = err
	}
}

// take returns the next n bytes, or nil (and a FRAME_ERROR) when fewer
// are left.
func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail(protoErr(ReplyFrameError, ErrTruncated, "need %d bytes at offset %d, have %d", n, d.off, len(d.buf)-d.off))
		return nil
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) octet() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) short() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) long() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) longlong() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) shortstr() string {
	n := d.octet()
	return string(d.take(uint64(n)))
}

func (d *decoder) longstr() string {
	n := d.long()
	return string(d.take(uint64(n)))
}

// timestamp reads seconds since the Unix epoch as a UTC time.
func (d *decoder) timestamp() time.Time {
	return time.Unix(int64(d.longlong()), 0).UTC()
}

// table reads a field table (see table.go).
func (d *decoder) table() Table {
	return d.tableAt(1)
}

// finish reports a FRAME_ERROR if bytes are left over, and returns the
// first error (always an *Error) or nil.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail(protoErr(ReplyFrameError, ErrTrailingBytes, "%d bytes", len(d.buf)-d.off))
	}
	if d.err != nil {
		return d.err
	}
	return nil
}
