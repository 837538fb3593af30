package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// authInterceptor checks every call's HTTP Basic credentials against the
// user store before the handler runs, and holds one of the user's
// connection slots while the call runs.
type authInterceptor struct {
	users      *auth.Store
	access     service.Access
	logger     *slog.Logger
	userLimits *limits.Users
	refusals   *limits.LogSampler
}

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		user, release, err := a.check(req.Spec(), req.Header(), req.Peer())
		if err != nil {
			return nil, err
		}
		defer release()
		if err := allowUnary(a.access, user, req.Any()); err != nil {
			return nil, toConnect(err)
		}
		return next(context.WithValue(ctx, userKey{}, user), req)
	}
}

func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		user, release, err := a.check(conn.Spec(), conn.RequestHeader(), conn.Peer())
		if err != nil {
			return err
		}
		defer release()
		return next(context.WithValue(ctx, userKey{}, user), conn)
	}
}

// check authenticates a call and takes one of its user's connection
// slots, which release gives back; the error says only that the login
// failed, not why, as for every other face, or that the user holds as
// many connections as the limit allows (RESOURCE_EXHAUSTED).
func (a *authInterceptor) check(spec connect.Spec, h http.Header, peer connect.Peer) (user string, release func(), err error) {
	if a.users == nil {
		return "", nil, unauthenticated()
	}
	user, pass, ok := (&http.Request{Header: h}).BasicAuth()
	if !ok {
		a.logger.Info("grpc call without credentials refused", "procedure", spec.Procedure, "remote", peer.Addr)
		return "", nil, unauthenticated()
	}
	addr, _ := net.ResolveTCPAddr("tcp", peer.Addr) // an IP literal: no lookup
	var remote net.Addr
	if addr != nil {
		remote = addr
	}
	if _, err := a.users.Authenticate(user, pass, remote); err != nil {
		a.logger.Info("grpc login refused", "procedure", spec.Procedure, "remote", peer.Addr, "err", err)
		return "", nil, unauthenticated()
	}
	release, ok = a.userLimits.Acquire(user)
	if !ok {
		a.refusals.Warn("user connection limit", "grpc call refused: user connection limit reached",
			"procedure", spec.Procedure, "remote", peer.Addr, "user", user, "limit", a.userLimits.Max(), "setting", "limits.max_connections_per_user")
		return "", nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("connection refused for user '%s': user connection limit (%d) is reached", user, a.userLimits.Max()))
	}
	return user, release, nil
}

func unauthenticated() error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New("authentication failed: give the HTTP Basic credentials of a Wharf user"))
	err.Meta().Set("WWW-Authenticate", `Basic realm="wharf"`)
	return err
}
