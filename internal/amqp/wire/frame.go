package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Frame is one AMQP frame: type (FrameMethod, FrameHeader, FrameBody or
// FrameHeartbeat), channel and payload, without the 7-byte frame header
// and the frame-end octet.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// frameOverhead is the framing around a payload: type (1), channel (2),
// size (4) and the frame-end octet (1).
const frameOverhead = 8

// readChunk is how far a frame buffer grows ahead of the bytes received.
const readChunk = 64 << 10

// normFrameMax returns the frame-max in force for n: n itself, or the
// specification's minimum frame size when n is below it (0 included: before
// connection.tune-ok no larger frame may be sent).
func normFrameMax(n uint32) uint32 {
	return max(n, FrameMinSize)
}

// ReadProtocolHeader reads the eight bytes a client opens a connection with
// and returns nil if they are ProtocolHeader. Other bytes give a
// *ProtocolHeaderError (errors.Is ErrBadProtocolHeader), after which the
// server writes ProtocolHeader and closes the connection; a read failure is
// returned wrapped.
func ReadProtocolHeader(r io.Reader) error {
	var got [len(ProtocolHeader)]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return fmt.Errorf("amqp: read protocol header: %w", err)
	}
	if string(got[:]) != ProtocolHeader {
		return &ProtocolHeaderError{Got: got}
	}
	return nil
}

// FrameReader reads frames from a connection. The size a frame declares is
// checked against frame-max before any byte of the payload is read, and the
// payload buffer grows only as bytes arrive, so a peer cannot make it
// allocate more than it sends or than frame-max.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r        *bufio.Reader
	frameMax uint32
	buf      []byte
}

// NewFrameReader returns a reader of frames from r, limited by frameMax
// (see SetFrameMax). Read the protocol header through it too
// (FrameReader.ReadProtocolHeader), as it buffers r.
func NewFrameReader(r io.Reader, frameMax uint32) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, readChunk), frameMax: normFrameMax(frameMax)}
}

// SetFrameMax sets the negotiated frame-max: the largest frame, framing
// included, the peer may send. Values below FrameMinSize (0 included) mean
// FrameMinSize; after tuning, pass the negotiated value, never 0 for "no
// limit". As RabbitMQ does, the reader tolerates frames 8 bytes over the
// limit (a payload of frame-max bytes), because some clients count
// frame-max without the framing.
func (fr *FrameReader) SetFrameMax(n uint32) { fr.frameMax = normFrameMax(n) }

// ReadProtocolHeader is ReadProtocolHeader on the reader's buffered input.
func (fr *FrameReader) ReadProtocolHeader() error { return ReadProtocolHeader(fr.r) }

// ReadFrame reads the next frame. Its payload is valid until the next call.
//
// io.EOF means the peer closed between frames; io.ErrUnexpectedEOF, that
// it closed inside one. Protocol violations are *Error values with reply
// code FRAME_ERROR (501): an unknown frame type, a payload larger than
// frame-max allows, a frame-end octet other than 0xCE, or a heartbeat
// frame on a channel other than 0 or with a payload.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	var h [7]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: h[0], Channel: binary.BigEndian.Uint16(h[1:3])}
	size := binary.BigEndian.Uint32(h[3:7])
	switch f.Type {
	case FrameMethod, FrameHeader, FrameBody:
	case FrameHeartbeat:
		if f.Channel != 0 || size != 0 {
			return Frame{}, protoErr(ReplyFrameError, ErrBadHeartbeat, "channel %d, %d payload bytes", f.Channel, size)
		}
	default:
		return Frame{}, protoErr(ReplyFrameError, ErrUnknownFrameType, "type %d on channel %d", f.Type, f.Channel)
	}
	if size > fr.frameMax {
		return Frame{}, protoErr(ReplyFrameError, ErrFrameTooLarge, "payload of %d bytes, frame-max %d", size, fr.frameMax)
	}
	b, err := fr.read(int(size) + 1)
	if err != nil {
		return Frame{}, err
	}
	if end := b[size]; end != FrameEnd {
		return Frame{}, protoErr(ReplyFrameError, ErrFrameEnd, "got 0x%02x", end)
	}
	f.Payload = b[:size:size]
	return f, nil
}

// read reads exactly n bytes into the reader's buffer, growing it by at
// most readChunk (or its own size) ahead of the bytes received.
func (fr *FrameReader) read(n int) ([]byte, error) {
	b := fr.buf[:0]
	for len(b) < n {
		next := min(n, len(b)+max(readChunk, len(b)))
		if cap(b) < next {
			b = slices.Grow(b, next-len(b))
		}
		m, err := io.ReadFull(fr.r, b[len(b):next])
		b = b[:len(b)+m]
		if err != nil {
			fr.buf = b
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	fr.buf = b
	return b, nil
}
