package amqp

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wharfmq/wharf/internal/amqp/wire"
	"github.com/wharfmq/wharf/internal/broker"
)

// closeError is a reason to close a channel (a soft code) or the connection
// (a hard code): the reply code and text of channel.close or
// connection.close, and the method that failed.
type closeError struct {
	code     uint16
	text     string // "NOT_FOUND - no queue 'q' in vhost '/'"
	classID  uint16
	methodID uint16
	// limit names the setting of a limit this error enforces; its log
	// line goes through the server's sampler (limits.go). quiet means
	// the core has already logged the refusal.
	limit string
	quiet bool
}

func (e *closeError) Error() string { return fmt.Sprintf("%d %s", e.code, e.text) }

func (e *closeError) hard() bool { return wire.IsHardError(e.code) }

// newCloseError formats a reply text in RabbitMQ's style: the code's name,
// " - ", then what was wrong.
func newCloseError(code uint16, format string, args ...any) *closeError {
	return &closeError{code: code, text: shortString(wire.ReplyName(code) + " - " + fmt.Sprintf(format, args...))}
}

// forMethod names the failing method when the error does not yet.
func (e *closeError) forMethod(m wire.Method) *closeError {
	if e.classID == 0 && m != nil {
		e.classID, e.methodID = m.ClassID(), m.MethodID()
	}
	return e
}

// asCloseError classifies any error from handling a frame or a method:
// protocol errors keep their code, model refusals get theirs (403, 404,
// 405, 406 close the channel; a vanished vhost 530 the connection), and
// anything else is the server's fault: 541 INTERNAL_ERROR.
func asCloseError(err error) *closeError {
	var ce *closeError
	if errors.As(err, &ce) {
		return ce
	}
	var we *wire.Error
	if errors.As(err, &we) {
		ce := &closeError{code: we.Code, text: we.ReplyText(), classID: we.ClassID, methodID: we.MethodID}
		switch {
		case errors.Is(err, wire.ErrFrameTooLarge):
			ce.limit = "limits.amqp_frame_max"
		case errors.Is(err, wire.ErrContentTooLarge):
			ce.limit = "amqp_max_message_bytes"
		}
		return ce
	}
	var me *broker.ModelError
	if errors.As(err, &me) {
		switch {
		case errors.Is(err, broker.ErrNotFound):
			return newCloseError(wire.ReplyNotFound, "%s", me.Text)
		case errors.Is(err, broker.ErrAccessRefused):
			return newCloseError(wire.ReplyAccessRefused, "%s", me.Text)
		case errors.Is(err, broker.ErrResourceLocked):
			return newCloseError(wire.ReplyResourceLocked, "%s", me.Text)
		case errors.Is(err, broker.ErrPreconditionFailed):
			ce := newCloseError(wire.ReplyPreconditionFailed, "%s", me.Text)
			ce.quiet = errors.Is(err, broker.ErrLimitReached) // the core logged it
			return ce
		case errors.Is(err, broker.ErrVhostNotFound):
			return newCloseError(wire.ReplyNotAllowed, "%s", me.Text)
		case errors.Is(err, broker.ErrNotImplemented):
			return newCloseError(wire.ReplyNotImplemented, "%s", me.Text)
		}
	}
	return newCloseError(wire.ReplyInternalError, "%v", err)
}

// shortString cuts s to 255 bytes without splitting a UTF-8 sequence.
func shortString(s string) string {
	if len(s) <= 255 {
		return s
	}
	s = s[:255]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
