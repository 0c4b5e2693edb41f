package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/slow":
			time.Sleep(500 * time.Millisecond)
		case !ready:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	require.NoError(t, runHealthcheck(ctx, []string{"-url", srv.URL + "/readyz"}, io.Discard))
	ready = false
	require.ErrorContains(t, runHealthcheck(ctx, []string{"-url", srv.URL + "/readyz"}, io.Discard), "503")
	require.Error(t, runHealthcheck(ctx, []string{"-url", srv.URL + "/slow", "-timeout", "50ms"}, io.Discard))

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	require.Error(t, runHealthcheck(ctx, []string{"-url", closed.URL}, io.Discard), "nothing listens")

	for _, args := range [][]string{
		{"-url", "file:///etc/passwd"},
		{"-url", "127.0.0.1:9090/healthz"},
		{"-url", "http://"},
		{"-url", "http://a", "extra"},
		{"-bogus"},
	} {
		err := runHealthcheck(ctx, args, io.Discard)
		require.True(t, errors.Is(err, errUsage), "%v: %v", args, err)
	}
}
