package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// Error codes in JSON error bodies.
const (
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
)

// status is the body of /healthz and /readyz.
type status struct {
	Status string `json:"status"`
}

// apiError is the body of every error response.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(logger *slog.Logger, w http.ResponseWriter, httpStatus int, code, message string) {
	writeJSON(logger, w, httpStatus, apiError{Code: code, Message: message})
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(logger *slog.Logger, w http.ResponseWriter, httpStatus int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		logger.Error("encoding response", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	if _, err := w.Write(body); err != nil {
		logger.Debug("writing response", "err", err)
	}
}
