// Package logging builds the structured JSON logger every VRSky role uses.
//
// Every line carries a "component" attribute; hot-path lines add tenant,
// integration, stage and message ID; API and webhook-ingress lines add the
// request's "request_id" (WithRequestID). An error is always logged under
// the key "error" (a test holds every slog call in the repository to it). The package never writes secrets: callers
// pass redacting types for anything sensitive.
package logging

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// New returns a JSON logger writing to w at the given level ("debug", "info",
// "warn", "error"; anything else means info). Lines logged with a context
// carry the context's request ID (WithRequestID).
func New(w io.Writer, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: ParseLevel(level)})})
}

// ParseLevel maps a level name to a slog.Level, defaulting to info.
func ParseLevel(name string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Component returns logger with the component attribute set, or the default
// logger's child when logger is nil.
func Component(logger *slog.Logger, name string) *slog.Logger {
	if logger == nil {
		logger = slog.Default()
	}
	return logger.With(slog.String("component", name))
}
