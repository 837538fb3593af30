package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"connectrpc.com/connect"

	"github.com/wharfmq/wharf/internal/auth"
)

// authInterceptor checks every call's HTTP Basic credentials against the
// user store before the handler runs.
type authInterceptor struct {
	users  *auth.Store
	logger *slog.Logger
}

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.check(req.Spec(), req.Header(), req.Peer()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.Spec(), conn.RequestHeader(), conn.Peer()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// check authenticates a call; the error says only that it failed, not
// why, as for every other face.
func (a *authInterceptor) check(spec connect.Spec, h http.Header, peer connect.Peer) error {
	if a.users == nil {
		return unauthenticated()
	}
	user, pass, ok := (&http.Request{Header: h}).BasicAuth()
	if !ok {
		a.logger.Info("grpc call without credentials refused", "procedure", spec.Procedure, "remote", peer.Addr)
		return unauthenticated()
	}
	addr, _ := net.ResolveTCPAddr("tcp", peer.Addr) // an IP literal: no lookup
	var remote net.Addr
	if addr != nil {
		remote = addr
	}
	if _, err := a.users.Authenticate(user, pass, remote); err != nil {
		a.logger.Info("grpc login refused", "procedure", spec.Procedure, "remote", peer.Addr, "err", err)
		return unauthenticated()
	}
	return nil
}

func unauthenticated() error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New("authentication failed: give the HTTP Basic credentials of a Wharf user"))
	err.Meta().Set("WWW-Authenticate", `Basic realm="wharf"`)
	return err
}
