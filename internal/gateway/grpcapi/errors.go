package grpcapi

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// toConnect maps an error to a connect error: a connect error stays as it
// is; anything else gets the code of its service error (service.AsError)
// and that error's message.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	e := service.AsError(err)
	return connect.NewError(connectCode(e), errors.New(e.Message))
}

// connectCode is the one table from service codes to connect codes.
func connectCode(e *service.Error) connect.Code {
	switch e.Code {
	case service.CodeInvalid:
		return connect.CodeInvalidArgument
	case service.CodeNotFound:
		return connect.CodeNotFound
	case service.CodeForbidden:
		return connect.CodePermissionDenied
	case service.CodeUnauthorized:
		return connect.CodeUnauthenticated
	case service.CodeConflict:
		if errors.Is(e, broker.ErrTopicExists) {
			return connect.CodeAlreadyExists
		}
		return connect.CodeFailedPrecondition
	case service.CodeOutOfRange:
		return connect.CodeOutOfRange
	case service.CodeTooLarge, service.CodeLimitReached:
		return connect.CodeResourceExhausted
	case service.CodeUnavailable:
		return connect.CodeUnavailable
	}
	return connect.CodeInternal
}

// invalidf is an INVALID_ARGUMENT error.
func invalidf(format string, args ...any) error {
	return toConnect(service.Errorf(service.CodeInvalid, format, args...))
}
