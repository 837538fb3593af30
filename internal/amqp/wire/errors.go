package wire

import (
	"errors"
	"fmt"
)

// Causes of the errors this package returns. Decoding errors are *Error
// values wrapping one of these, so callers may test for a cause with
// errors.Is and read the reply code with errors.As. Encoding errors wrap
// them without an *Error: a value the server failed to encode is the
// server's own fault, not the peer's.
var (
	// Frame level (FRAME_ERROR, 501).
	ErrFrameTooLarge    = errors.New("frame larger than frame-max")
	ErrFrameEnd         = errors.New("frame-end octet is not 0xCE")
	ErrUnknownFrameType = errors.New("unknown frame type")
	ErrBadHeartbeat     = errors.New("heartbeat frame on a non-zero channel or with a payload")
	ErrTruncated        = errors.New("field runs past the end of the frame")
	ErrTrailingBytes    = errors.New("bytes left after the last field")
	ErrBodyTooLong      = errors.New("body frames exceed the body size of the content header")

	// Field values (SYNTAX_ERROR, 502).
	ErrUnknownFieldType = errors.New("unknown field-table type tag")
	ErrTableTooDeep     = errors.New("field tables nested too deep")
	ErrPropertyFlags    = errors.New("property flags name properties the class does not have")
	ErrHeaderWeight     = errors.New("content header weight is not zero")

	// Method ids (NOT_IMPLEMENTED, 540).
	ErrUnknownClass  = errors.New("unknown class id")
	ErrUnknownMethod = errors.New("unknown method id")

	// Frame sequence on a channel (UNEXPECTED_FRAME, 505).
	ErrUnexpectedFrame = errors.New("unexpected frame")

	// Content size (PRECONDITION_FAILED, 406: a channel error).
	ErrContentTooLarge = errors.New("message body larger than the maximum message size")

	// Encoding only.
	ErrShortStringTooLong = errors.New("short string longer than 255 bytes")
	ErrLongStringTooLong  = errors.New("long string longer than 4 GiB")
	ErrUnsupportedType    = errors.New("no field-table type for this Go type")

	// Connection start.
	ErrBadProtocolHeader = errors.New("not an AMQP 0-9-1 protocol header")
)

// Error is a protocol violation by the peer, found while reading frames,
// methods or content. Code is the AMQP reply code the connection layer
// should close with: a hard error (IsHardError) closes the connection, a
// soft one the channel. ClassID and MethodID name the method being read
// when that is known, for the class-id and method-id fields of
// connection.close and channel.close.
type Error struct {
	Code     uint16
	ClassID  uint16
	MethodID uint16
	Err      error
}

func (e *Error) Error() string {
	if name := MethodName(e.ClassID, e.MethodID); name != "" {
		return fmt.Sprintf("amqp %s (%d) in %s: %v", ReplyName(e.Code), e.Code, name, e.Err)
	}
	return fmt.Sprintf("amqp %s (%d): %v", ReplyName(e.Code), e.Code, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReplyText is the text for the reply-text field of a close method, in
// RabbitMQ's style ("FRAME_ERROR - ..."), cut to fit a short string.
func (e *Error) ReplyText() string {
	s := ReplyName(e.Code) + " - " + e.Err.Error()
	if name := MethodName(e.ClassID, e.MethodID); name != "" {
		s += " (" + name + ")"
	}
	return truncateShortString(s)
}

// ReplyCode returns the reply code of the first *Error in err's chain, and
// false when err holds none (an I/O error, or a failure of the server's own).
func ReplyCode(err error) (uint16, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// protoErr makes an *Error with code and a cause that wraps sentinel.
func protoErr(code uint16, sentinel error, format string, args ...any) *Error {
	if format == "" {
		return &Error{Code: code, Err: sentinel}
	}
	return &Error{Code: code, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// truncateShortString cuts s to at most 255 bytes without splitting a UTF-8
// sequence.
func truncateShortString(s string) string {
	if len(s) <= 255 {
		return s
	}
	n := 255
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// ProtocolHeaderError is returned by ReadProtocolHeader when the peer's
// first eight bytes are not ProtocolHeader. The server answers with
// ProtocolHeader and closes the connection.
type ProtocolHeaderError struct {
	Got [8]byte
}

func (e *ProtocolHeaderError) Error() string {
	return fmt.Sprintf("amqp: %v: got %q", ErrBadProtocolHeader, e.Got[:])
}

func (e *ProtocolHeaderError) Unwrap() error { return ErrBadProtocolHeader }
