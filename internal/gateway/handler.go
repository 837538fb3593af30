package gateway

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/broker"
	"github.com/wharfmq/wharf/internal/gateway/console"
	"github.com/wharfmq/wharf/internal/gateway/grpcapi"
	"github.com/wharfmq/wharf/internal/gateway/service"
	"github.com/wharfmq/wharf/internal/limits"
)

// Options are what the gateway's HTTP handler serves.
type Options struct {
	// Logger logs requests (at debug level) and errors; nil discards.
	Logger *slog.Logger
	// Registry is served at /metrics; nil serves an empty registry.
	Registry *prometheus.Registry
	// Ready reports whether the process accepts traffic, for /readyz;
	// nil means always.
	Ready func() bool
	// WebSocket, when not nil, is served at /ws.
	WebSocket *WebSocket
	// Service is the core as the REST and gRPC faces use it; Users
	// authenticates their callers. Nil disables those faces.
	Service *service.Service
	Users   *auth.Store
	// UserLimits counts each user's REST and gRPC calls in progress
	// against the per-user connection limit (shared with /ws and AMQP);
	// nil means no limit.
	UserLimits *limits.Users
	// Bridges, when not nil, are listed by the REST face.
	Bridges *broker.Bridges
}

// NewHandler returns the gateway's HTTP handler.
func NewHandler(o Options) http.Handler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg, ready, ws := o.Registry, o.Ready, o.WebSocket
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if ready == nil {
		ready = func() bool { return true }
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", getOnly(logger, healthz(logger)))
	mux.Handle("/readyz", getOnly(logger, readyz(logger, ready)))
	mux.Handle("/metrics", getOnly(logger, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})))
	if ws != nil {
		mux.Handle("/ws", getOnly(logger, ws))
		mux.Handle(console.Path, getOnly(logger, console.Handler(notFound(logger))))
	}
	mountREST(mux, o, logger)
	grpcapi.Mount(mux, grpcapi.Options{Service: o.Service, Users: o.Users, UserLimits: o.UserLimits, Logger: logger})
	mux.Handle("/", notFound(logger))
	return accessLog(logger, mux)
}

func healthz(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(logger, w, http.StatusOK, status{Status: "ok"})
	})
}

func readyz(logger *slog.Logger, ready func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			writeJSON(logger, w, http.StatusServiceUnavailable, status{Status: "not_ready"})
			return
		}
		writeJSON(logger, w, http.StatusOK, status{Status: "ready"})
	})
}

func notFound(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(logger, w, http.StatusNotFound, codeNotFound, "no route for "+r.URL.Path)
	})
}

// getOnly answers methods other than GET and HEAD with 405.
func getOnly(logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(logger, w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
				r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		h.ServeHTTP(w, r)
	})
}
