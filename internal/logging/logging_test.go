package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewWritesJSONWithComponent(t *testing.T) {
	var buf bytes.Buffer
	log := Component(New(&buf, "info"), "nats")
	log.Debug("hidden")
	log.Info("started", "addr", "127.0.0.1:4222")

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "nats", line["component"])
	require.Equal(t, "started", line["msg"])
	require.Equal(t, "127.0.0.1:4222", line["addr"])
}

func TestParseLevel(t *testing.T) {
	for name, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "error": slog.LevelError, "bogus": slog.LevelInfo, "": slog.LevelInfo,
	} {
		t.Run(name, func(t *testing.T) { require.Equal(t, want, ParseLevel(name)) })
	}
}

func TestComponentWithNilLogger(t *testing.T) {
	require.NotNil(t, Component(nil, "x"))
	require.NotNil(t, New(nil, "info"))
}
