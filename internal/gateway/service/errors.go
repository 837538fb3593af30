package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/wharfmq/wharf/internal/broker"
)

// Codes of an *Error. They are part of the gateway's documented protocols:
// do not rename them.
const (
	CodeInvalid      = "invalid_argument"
	CodeNotFound     = "not_found"
	CodeOutOfRange   = "out_of_range"
	CodeForbidden    = "forbidden"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
	CodeUnauthorized = "unauthorized"
	// CodeLimitReached is a refusal by a configured limit: the queues of
	// a vhost, the topics, a user's connections.
	CodeLimitReached = "limit_reached"
)

// Error is what every operation fails with: a stable code and a message
// that says what was wrong.
type Error struct {
	Code    string
	Message string
	Err     error // the cause, if any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError maps any error to an *Error: an *Error is returned as it is, the
// core's errors get their code, anything else is internal.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, broker.ErrLimitReached) {
		return &Error{Code: CodeLimitReached, Message: err.Error(), Err: err}
	}
	var me *broker.ModelError
	if errors.As(err, &me) {
		return &Error{Code: modelCode(me), Message: me.Error(), Err: err}
	}
	code := CodeInternal
	switch {
	case errors.Is(err, broker.ErrUnknownTopic), errors.Is(err, broker.ErrUnknownPartition), errors.Is(err, broker.ErrNotFound):
		code = CodeNotFound
	case errors.Is(err, broker.ErrOffsetOutOfRange):
		code = CodeOutOfRange
	case errors.Is(err, broker.ErrTopicExists):
		code = CodeConflict
	case errors.Is(err, broker.ErrInvalidTopic), errors.Is(err, broker.ErrInvalidPartitions),
		errors.Is(err, broker.ErrInvalidConfig), errors.Is(err, broker.ErrInvalidRecord):
		code = CodeInvalid
	case errors.Is(err, broker.ErrBatchTooLarge):
		code = CodeTooLarge
	case errors.Is(err, broker.ErrClosed), errors.Is(err, broker.ErrLogClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = CodeUnavailable
	case errors.Is(err, broker.ErrDiskAlarm), errors.Is(err, broker.ErrMemoryAlarm):
		// A resource alarm: publishing resumes when it clears.
		code = CodeUnavailable
	case errors.Is(err, broker.ErrStorage):
		// A disk that failed a write or an fsync: nothing was
		// acknowledged, and a retry succeeds once the disk does.
		code = CodeUnavailable
	}
	return &Error{Code: code, Message: err.Error(), Err: err}
}

// modelCode maps the AMQP model's error kinds.
func modelCode(me *broker.ModelError) string {
	switch {
	case errors.Is(me, broker.ErrNotFound), errors.Is(me, broker.ErrVhostNotFound):
		return CodeNotFound
	case errors.Is(me, broker.ErrAccessRefused):
		return CodeForbidden
	case errors.Is(me, broker.ErrResourceLocked):
		return CodeConflict
	case errors.Is(me, broker.ErrPreconditionFailed):
		return CodeConflict
	}
	return CodeInvalid
}
