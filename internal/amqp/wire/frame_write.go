package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// AppendFrame appends f with its framing. The caller keeps the payload
// within frame-max.
func AppendFrame(b []byte, f Frame) []byte {
	b = append(b, f.Type)
	b = binary.BigEndian.AppendUint16(b, f.Channel)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	b = append(b, f.Payload...)
	return append(b, FrameEnd)
}

// AppendHeartbeat appends a heartbeat frame (type 8, channel 0, no payload).
func AppendHeartbeat(b []byte) []byte {
	return AppendFrame(b, Frame{Type: FrameHeartbeat})
}

// appendFramed appends a frame of type typ whose payload fill appends, and
// fails (leaving b as it was) if fill fails or the frame exceeds frameMax.
func appendFramed(b []byte, typ uint8, channel uint16, frameMax uint32, fill func([]byte) ([]byte, error)) ([]byte, error) {
	start := len(b)
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, channel)
	b = append(b, 0, 0, 0, 0)
	b, err := fill(b)
	if err != nil {
		return b[:start], err
	}
	size := len(b) - start - 7
	if limit := normFrameMax(frameMax) - frameOverhead; uint64(size) > uint64(limit) {
		return b[:start], fmt.Errorf("amqp: frame type %d of %d payload bytes: %w (%d)", typ, size, ErrFrameTooLarge, limit)
	}
	binary.BigEndian.PutUint32(b[start+3:], uint32(size))
	return append(b, FrameEnd), nil
}

// AppendMethodFrame appends a method frame for m on channel. A method
// cannot be split across frames: one larger than frameMax (see
// FrameReader.SetFrameMax for its meaning) is an error.
func AppendMethodFrame(b []byte, channel uint16, m Method, frameMax uint32) ([]byte, error) {
	return appendFramed(b, FrameMethod, channel, frameMax, m.AppendTo)
}

// AppendContent appends the content header frame for props and body, then
// the body in body frames of at most frameMax-8 payload bytes (none for an
// empty body). The class is basic, the only class with content.
func AppendContent(b []byte, channel uint16, props *Properties, body []byte, frameMax uint32) ([]byte, error) {
	h := ContentHeader{ClassID: ClassBasic, BodySize: uint64(len(body))}
	if props != nil {
		h.Properties = *props
	}
	start := len(b)
	b, err := appendFramed(b, FrameHeader, channel, frameMax, func(b []byte) ([]byte, error) {
		return AppendContentHeader(b, &h)
	})
	if err != nil {
		return b[:start], err
	}
	return appendBody(b, channel, body, frameMax), nil
}

// AppendMessage appends a content-carrying method (basic.deliver,
// basic.get-ok, basic.return, basic.publish) with its content: the method
// frame, the content header frame and the body frames.
func AppendMessage(b []byte, channel uint16, m Method, props *Properties, body []byte, frameMax uint32) ([]byte, error) {
	if !m.HasContent() {
		return b, fmt.Errorf("amqp: %s carries no content", m.Name())
	}
	start := len(b)
	b, err := AppendMethodFrame(b, channel, m, frameMax)
	if err != nil {
		return b[:start], err
	}
	b, err = AppendContent(b, channel, props, body, frameMax)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// AppendMessageRaw is AppendMessage with the properties already encoded
// (see EncodeProperties and Command.RawProperties).
func AppendMessageRaw(b []byte, channel uint16, m Method, rawProps, body []byte, frameMax uint32) ([]byte, error) {
	if !m.HasContent() {
		return b, fmt.Errorf("amqp: %s carries no content", m.Name())
	}
	start := len(b)
	b, err := AppendMethodFrame(b, channel, m, frameMax)
	if err != nil {
		return b[:start], err
	}
	b, err = appendFramed(b, FrameHeader, channel, frameMax, func(b []byte) ([]byte, error) {
		b = binary.BigEndian.AppendUint16(b, ClassBasic)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
		if len(rawProps) == 0 {
			return append(b, 0, 0), nil // no property flags
		}
		return append(b, rawProps...), nil
	})
	if err != nil {
		return b[:start], err
	}
	return appendBody(b, channel, body, frameMax), nil
}

// appendBody appends body in body frames of at most frameMax-8 payload
// bytes (none for an empty body).
func appendBody(b []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := int(normFrameMax(frameMax) - frameOverhead)
	for len(body) > 0 {
		n := min(chunk, len(body))
		b = AppendFrame(b, Frame{Type: FrameBody, Channel: channel, Payload: body[:n]})
		body = body[n:]
	}
	return b
}

// maxRetainedWriteBuffer is the largest buffer a FrameWriter keeps between
// writes; a larger one (built for a large message) is dropped.
const maxRetainedWriteBuffer = 1 << 20

// FrameWriter writes frames to a connection, each Write call in one Write
// to the underlying writer, so a message's method, header and body frames
// leave together. It splits bodies by frame-max.
//
// A FrameWriter is not safe for concurrent use; a connection has one writer.
type FrameWriter struct {
	w        io.Writer
	frameMax uint32
	buf      []byte
}

// NewFrameWriter returns a writer of frames to w limited by frameMax (see
// SetFrameMax).
func NewFrameWriter(w io.Writer, frameMax uint32) *FrameWriter {
	return &FrameWriter{w: w, frameMax: normFrameMax(frameMax)}
}

// SetFrameMax sets the negotiated frame-max: the largest frame, framing
// included, to send. Values below FrameMinSize (0 included) mean
// FrameMinSize.
func (fw *FrameWriter) SetFrameMax(n uint32) { fw.frameMax = normFrameMax(n) }

// FrameMax returns the frame-max in force.
func (fw *FrameWriter) FrameMax() uint32 { return fw.frameMax }

// WriteProtocolHeader writes ProtocolHeader.
func (fw *FrameWriter) WriteProtocolHeader() error {
	return fw.flush(append(fw.buf[:0], ProtocolHeader...))
}

// WriteHeartbeat writes a heartbeat frame.
func (fw *FrameWriter) WriteHeartbeat() error {
	return fw.flush(AppendHeartbeat(fw.buf[:0]))
}

// WriteFrame writes one frame as given.
func (fw *FrameWriter) WriteFrame(f Frame) error {
	if uint64(len(f.Payload)) > uint64(fw.frameMax-frameOverhead) {
		return fmt.Errorf("amqp: frame type %d of %d payload bytes: %w (%d)", f.Type, len(f.Payload), ErrFrameTooLarge, fw.frameMax-frameOverhead)
	}
	return fw.flush(AppendFrame(fw.buf[:0], f))
}

// WriteMethod writes a method frame for a method without content.
func (fw *FrameWriter) WriteMethod(channel uint16, m Method) error {
	if m.HasContent() {
		return fmt.Errorf("amqp: %s carries content: use WriteMessage", m.Name())
	}
	b, err := AppendMethodFrame(fw.buf[:0], channel, m, fw.frameMax)
	if err != nil {
		return err
	}
	return fw.flush(b)
}

// WriteMessage writes a content-carrying method with its content header and
// body frames in one write.
func (fw *FrameWriter) WriteMessage(channel uint16, m Method, props *Properties, body []byte) error {
	b, err := AppendMessage(fw.buf[:0], channel, m, props, body, fw.frameMax)
	if err != nil {
		return err
	}
	return fw.flush(b)
}

// flush writes b (built in fw.buf's storage) and keeps the storage for the
// next write unless it grew too large.
func (fw *FrameWriter) flush(b []byte) error {
	_, err := fw.w.Write(b)
	if cap(b) <= maxRetainedWriteBuffer {
		fw.buf = b[:0]
	} else {
		fw.buf = nil
	}
	if err != nil {
		return fmt.Errorf("amqp: write frames: %w", err)
	}
	return nil
}
