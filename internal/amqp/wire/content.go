package wire

import "fmt"

// ContentHeader is the payload of a content header frame: the class of the
// method the content belongs to, the body size, and the properties. (The
// weight field is always zero in AMQP 0-9-1; it is written as zero and
// refused otherwise.)
type ContentHeader struct {
	ClassID    uint16
	BodySize   uint64
	Properties Properties
}

// contentHeaderFixed is the size of a content header payload before the
// property flags: class id, weight, body size.
const contentHeaderFixed = 2 + 2 + 8

// AppendContentHeader appends the content header frame payload for h.
func AppendContentHeader(b []byte, h *ContentHeader) ([]byte, error) {
	if h.ClassID != ClassBasic {
		return b, fmt.Errorf("amqp: encode content header: class %d carries no content", h.ClassID)
	}
	e := encoder{buf: b}
	e.short(h.ClassID)
	e.short(0)
	e.longlong(h.BodySize)
	h.Properties.write(&e)
	if e.err != nil {
		return b, &encodeError{name: "content header", err: e.err}
	}
	return e.buf, nil
}

// DecodeContentHeader decodes a content header frame payload. Only class
// basic carries content; a header of another class is an UNEXPECTED_FRAME
// (505). A non-zero weight, property flags the class does not define
// (including the continuation bit) and illegal table values are
// SYNTAX_ERRORs (502); a payload that does not hold exactly the flagged
// properties is a FRAME_ERROR (501).
func DecodeContentHeader(payload []byte) (ContentHeader, error) {
	var h ContentHeader
	d := decoder{buf: payload}
	h.ClassID = d.short()
	weight := d.short()
	h.BodySize = d.longlong()
	if d.err != nil {
		return ContentHeader{}, d.err
	}
	if h.ClassID != ClassBasic {
		return ContentHeader{}, protoErr(ReplyUnexpectedFrame, ErrUnexpectedFrame, "content header for class %d, which carries no content", h.ClassID)
	}
	if weight != 0 {
		return ContentHeader{}, protoErr(ReplySyntaxError, ErrHeaderWeight, "weight %d", weight)
	}
	h.Properties.read(&d)
	if err := d.finish(); err != nil {
		return ContentHeader{}, err
	}
	return h, nil
}

// EncodeProperties returns the basic properties as they follow the body
// size in a content header: the property flags, then the fields present.
func EncodeProperties(p *Properties) ([]byte, error) {
	e := encoder{}
	p.write(&e)
	if e.err != nil {
		return nil, &encodeError{name: "properties", err: e.err}
	}
	return e.buf, nil
}

// DecodeProperties decodes what EncodeProperties returns, with the errors
// of DecodeContentHeader.
func DecodeProperties(raw []byte) (Properties, error) {
	var p Properties
	d := decoder{buf: raw}
	p.read(&d)
	if err := d.finish(); err != nil {
		return Properties{}, err
	}
	return p, nil
}
