package api

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/logging"
)

// ErrorModel is every error the API answers: Huma's RFC 9457 problem
// detail with the request's ID, which is also on the request's log lines.
// It keeps Huma's name so the OpenAPI document's error schema keeps its
// name too.
type ErrorModel struct {
	huma.ErrorModel
	RequestID string `json:"request_id,omitempty" doc:"The request's ID (its X-Request-ID response header), on every log line of the request." example:"4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c"`
}

var problemsOnce sync.Once

// useProblems makes Huma build every error as an *ErrorModel, once per process
// (huma.NewError is Huma's hook for the error type).
func useProblems() {
	problemsOnce.Do(func() {
		base := huma.NewError
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			err := base(status, msg, errs...)
			if m, ok := err.(*huma.ErrorModel); ok {
				return &ErrorModel{ErrorModel: *m}
			}
			return err
		}
	})
}

// problemRequestID is a Huma transformer: it puts the request's ID into a
// problem detail, on a copy, so that no error value is shared between
// requests.
func problemRequestID(ctx huma.Context, _ string, v any) (any, error) {
	p, ok := v.(*ErrorModel)
	if !ok || p == nil {
		return v, nil
	}
	id := logging.RequestID(ctx.Context())
	if id == "" {
		return v, nil
	}
	cp := *p
	cp.RequestID = id
	return &cp, nil
}

// writeProblem writes an RFC 9457 problem-details error for handlers that
// are plain net/http rather than Huma operations, with the request ID that
// instrument set on the response.
func writeProblem(w http.ResponseWriter, status int, detail string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	body := map[string]any{
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	}
	if id := w.Header().Get(RequestIDHeader); id != "" {
		body["request_id"] = id
	}
	_ = json.NewEncoder(w).Encode(body)
}
