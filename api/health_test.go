package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, body
}

func TestReadyzReportsEachDependency(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name       string
		checks     []Check
		wantCode   int
		wantStatus string
		wantDown   []string
	}{
		{"all up", []Check{{"postgres", up}, {"nats", up}}, 200, "ready", nil},
		{"one down", []Check{{"postgres", up}, {"nats", down}}, 503, "not_ready", []string{"nats"}},
		{"one hangs", []Check{{"s3", hang}, {"temporal", up}}, 503, "not_ready", []string{"s3"}},
		{"no checks", nil, 200, "ready", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := New(Options{Checks: tt.checks, Gatherer: prometheus.NewRegistry()})
			code, body := get(t, srv.Handler(), "/readyz")
			require.Equal(t, tt.wantCode, code, string(body))
			var got struct {
				Status       string                     `json:"status"`
				Dependencies map[string]DependencyState `json:"dependencies"`
			}
			require.NoError(t, json.Unmarshal(body, &got))
			require.Equal(t, tt.wantStatus, got.Status)
			require.Len(t, got.Dependencies, len(tt.checks))
			for _, name := range tt.wantDown {
				require.Equal(t, "down", got.Dependencies[name].Status)
				require.NotEmpty(t, got.Dependencies[name].Error)
			}
		})
	}
}

func TestHealthzMetricsAndOpenAPI(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vrsky_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	srv := New(Options{Version: "1.2.3", Gatherer: reg})
	require.NotNil(t, srv.API())

	code, body := get(t, srv.Handler(), "/healthz")
	require.Equal(t, 200, code)
	var health struct{ Status string }
	require.NoError(t, json.Unmarshal(body, &health))
	require.Equal(t, "ok", health.Status)

	code, body = get(t, srv.Handler(), "/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, string(body), "vrsky_test_total 1")

	code, body = get(t, srv.Handler(), "/openapi.json")
	require.Equal(t, 200, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Equal(t, "1.2.3", doc["info"].(map[string]any)["version"])
	paths := doc["paths"].(map[string]any)
	require.Contains(t, paths, "/healthz")
	require.Contains(t, paths, "/readyz")

	code, _ = get(t, srv.Handler(), "/docs")
	require.Equal(t, 200, code)

	code, _ = get(t, srv.Handler(), "/nope")
	require.Equal(t, 404, code)
}

// TestPublicListenerKeepsAdminDetailsOff: on a public listener /metrics and
// pprof are absent and /readyz says only ready or not; /healthz stays for
// probes.
func TestPublicListenerKeepsAdminDetailsOff(t *testing.T) {
	down := func(context.Context) error { return errors.New("dial tcp 10.0.3.7:5432: connection refused") }
	srv := New(Options{Checks: []Check{{"postgres", down}}, Gatherer: prometheus.NewRegistry(), Public: true, Profiling: true})
	code, body := get(t, srv.Handler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	delete(got, "$schema")
	require.Equal(t, map[string]any{"status": "not_ready"}, got, "no dependency named")
	require.NotContains(t, string(body), "10.0.3.7")
	code, _ = get(t, srv.Handler(), "/healthz")
	require.Equal(t, http.StatusOK, code)
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		code, _ = get(t, srv.Handler(), path)
		require.Equal(t, http.StatusNotFound, code, path)
	}

	admin := New(Options{Checks: []Check{{"postgres", down}}, Gatherer: prometheus.NewRegistry()})
	code, body = get(t, admin.Handler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, string(body), "10.0.3.7", "the admin listener has the details")
	code, _ = get(t, admin.Handler(), "/metrics")
	require.Equal(t, http.StatusOK, code)
}
