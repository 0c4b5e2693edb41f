package temporaldev

import (
	"context"
	"log/slog"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// minLevel is the lowest level of Temporal's own logs that reaches our logger.
// Temporal logs every shard, membership and namespace-cache event at INFO,
// which would drown the rest of `vrsky dev`.
const minLevel = slog.LevelWarn

// quietLevel is above every level Temporal logs at: once Stop begins, the
// services report each connection torn down and each query cancelled as a
// warning or an error, which says nothing about VRSky's health.
const quietLevel = slog.LevelError + 4

// serverLogger adapts a *slog.Logger to the Temporal server's log.Logger,
// dropping everything below level (minLevel unless set) before any tag is
// converted.
type serverLogger struct {
	log   *slog.Logger
	level *slog.LevelVar // nil means minLevel
}

var _ log.Logger = serverLogger{}

func (l serverLogger) Debug(msg string, tags ...tag.Tag) { l.emit(slog.LevelDebug, msg, tags) }
func (l serverLogger) Info(msg string, tags ...tag.Tag)  { l.emit(slog.LevelInfo, msg, tags) }
func (l serverLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(slog.LevelWarn, msg, tags) }
func (l serverLogger) Error(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal are logged as errors: an embedded development
// server must never take the whole process down through its logger.
func (l serverLogger) DPanic(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }
func (l serverLogger) Panic(msg string, tags ...tag.Tag)  { l.emit(slog.LevelError, msg, tags) }
func (l serverLogger) Fatal(msg string, tags ...tag.Tag)  { l.emit(slog.LevelError, msg, tags) }

func (l serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	threshold := minLevel
	if l.level != nil {
		threshold = l.level.Level()
	}
	if level < threshold || !l.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}

// minLevelHandler passes on only records at or above min; it quiets the SDK
// client used for the readiness probe the same way serverLogger quiets the
// server.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
