package api

import (
	"encoding/json"
	"net/http"
	"time"
)

// writeProblem writes an RFC 9457 problem-details error for handlers that
// are plain net/http rather than Huma operations.
func writeProblem(w http.ResponseWriter, status int, detail string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
}
