package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContextLoggersWriteTheRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := WithContextAttrs(slog.New(slog.NewJSONHandler(&buf, nil)))
	require.Same(t, log, WithContextAttrs(log), "wrapped once")
	require.NotNil(t, WithContextAttrs(nil), "the default logger")

	ctx := WithRequestID(context.Background(), "req-1")
	require.Equal(t, "req-1", RequestID(ctx))
	require.Empty(t, RequestID(context.Background()))

	log.With("component", "api").WithGroup("g").InfoContext(ctx, "hello", "k", "v")
	log.InfoContext(context.Background(), "no id")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	require.Equal(t, "api", first["component"])
	require.Equal(t, "req-1", first["g"].(map[string]any)["request_id"], "attributes and groups keep the request ID")
	require.NotContains(t, second, "request_id", "a context without an ID adds nothing")
}
