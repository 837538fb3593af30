package grpcapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi/gen/wharf/v1/wharfv1connect"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// minRequestBytes is the least a request may be; a larger service message
// limit raises it to twice that limit.
const minRequestBytes = 4 << 20

// Options are what the gRPC face serves.
type Options struct {
	// Service is the core; nil mounts nothing.
	Service *service.Service
	// Users authenticates callers; nil refuses every call.
	Users *auth.Store
	// Logger logs refused logins and failures; nil discards.
	Logger *slog.Logger
	// UserLimits counts each user's calls in progress (a stream is one
	// until it ends) against the per-user connection limit; nil means no
	// limit.
	UserLimits *limits.Users
}

// Mount registers the gRPC services on mux, under their
// /wharf.v1.<Service>/ paths. It does nothing when o.Service is nil.
func Mount(mux *http.ServeMux, o Options) {
	if o.Service == nil {
		return
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("face", "grpc")
	drains := &drains{bySrv: map[*http.Server]chan struct{}{}}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(&authInterceptor{users: o.Users, access: o.Service.Access(), logger: logger,
			userLimits: o.UserLimits, refusals: limits.NewLogSampler(logger, 0, nil)}),
		connect.WithReadMaxBytes(maxRequestBytes(o.Service)),
	}
	path, h := wharfv1connect.NewMessagingServiceHandler(&messaging{svc: o.Service, logger: logger}, opts...)
	mux.Handle(path, drains.wrap(h))
	path, h = wharfv1connect.NewAdminServiceHandler(&admin{svc: o.Service, b: o.Service.Broker(), logger: logger}, opts...)
	mux.Handle(path, drains.wrap(h))

	// Server reflection (v1 and v1alpha, for grpcurl and similar tools)
	// and the standard health service answer without credentials: they
	// describe the API and say the listener serves, nothing more.
	services := []string{wharfv1connect.MessagingServiceName, wharfv1connect.AdminServiceName}
	reflector := grpcreflect.NewStaticReflector(services...)
	for _, handler := range []func() (string, http.Handler){
		func() (string, http.Handler) { return grpcreflect.NewHandlerV1(reflector) },
		func() (string, http.Handler) { return grpcreflect.NewHandlerV1Alpha(reflector) },
		func() (string, http.Handler) { return grpchealth.NewHandler(grpchealth.NewStaticChecker(services...)) },
	} {
		path, h := handler()
		mux.Handle(path, drains.wrap(h))
	}
}

func maxRequestBytes(svc *service.Service) int {
	return max(minRequestBytes, 2*svc.MaxMessageBytes())
}

// drains tells streams that their HTTP server is shutting down: the first
// request a server serves registers a shutdown hook that closes the
// server's channel. One entry per server, kept for the handler's life.
type drains struct {
	mu    sync.Mutex
	bySrv map[*http.Server]chan struct{}
}

type drainKey struct{}

// wrap gives the handler a ResponseWriter that can flush (connect-go
// streams need http.Flusher; wrappers such as an access log may hide it)
// and a request context carrying the server's drain channel.
func (d *drains) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			w = flushWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
		}
		if ch := d.channel(r); ch != nil {
			r = r.WithContext(context.WithValue(r.Context(), drainKey{}, (<-chan struct{})(ch)))
		}
		h.ServeHTTP(w, r)
	})
}

func (d *drains) channel(r *http.Request) chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok || srv == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, ok := d.bySrv[srv]
	if !ok {
		ch = make(chan struct{})
		d.bySrv[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}

// draining returns a channel closed when the server serving ctx's request
// starts shutting down; nil (never ready) when that is unknown.
func draining(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(drainKey{}).(<-chan struct{})
	return ch
}

// flushWriter adds Flush to a ResponseWriter that can flush only through
// http.ResponseController (one that implements Unwrap).
type flushWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w flushWriter) Flush() { _ = w.rc.Flush() }

func (w flushWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
