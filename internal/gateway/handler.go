package gateway

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewHandler returns the gateway's HTTP handler. reg is served at /metrics;
// ready reports whether the process accepts traffic, for /readyz; ws, when
// not nil, is served at /ws. A nil logger discards logs; reg and ready must
// not be nil.
func NewHandler(logger *slog.Logger, reg *prometheus.Registry, ready func() bool, ws *WebSocket) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
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
	}
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
