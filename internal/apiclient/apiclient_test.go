package apiclient

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/devstack"
)

func TestProblemIsReadable(t *testing.T) {
	require.Equal(t, `404 Not Found: no such thing; body.x: bad`,
		Problem(404, []byte(`{"title":"Not Found","detail":"no such thing","errors":[{"location":"body.x","message":"bad"}]}`)))
	require.Equal(t, "500 oops", Problem(500, []byte("oops")))
	require.Equal(t, "409 Conflict", Problem(409, []byte(`{"title":"Conflict"}`)))
}

func TestDoSendsTheKeyAndDecodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"n":7}`)
	}))
	defer srv.Close()
	var out struct{ N int }
	st, _, err := New(srv.URL+"/", " k1\n").Do(context.Background(), http.MethodGet, "/x", "", nil, &out)
	require.NoError(t, err)
	require.Equal(t, 200, st)
	require.Equal(t, 7, out.N)
	st, _, err = New(srv.URL, "other").Do(context.Background(), http.MethodGet, "/x", "", nil, &out)
	require.NoError(t, err)
	require.Equal(t, 401, st)
	_, _, err = New("http://127.0.0.1:1", "k").Do(context.Background(), http.MethodGet, "/x", "", nil, nil)
	require.ErrorContains(t, err, "is the API running?")
}

// TestTenantAndDeployAgainstTheDevStack creates a tenant with the admin key,
// keeps its key, reuses it, and deploys, updates, stops and rejects specs.
func TestTenantAndDeployAgainstTheDevStack(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := devStackAdmin(t, dir)
	keyFile := filepath.Join(dir, "keys", "acme.key")

	c, created, err := EnsureTenant(ctx, admin, "acme", keyFile)
	require.NoError(t, err)
	require.True(t, created)
	info, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	again, created, err := EnsureTenant(ctx, admin, "acme", keyFile)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, c.Key, again.Key)
	require.NoError(t, os.Remove(keyFile))
	_, _, err = EnsureTenant(ctx, admin, "acme", keyFile)
	require.ErrorIs(t, err, ErrTenantKeyLost)

	spec := []byte("name: orders\nconsumer: {connector: http-webhook}\nproducers: {out: {connector: file, config: {dir: out}}}\n")
	got, err := c.Deploy(ctx, "orders", spec, "test", false)
	require.NoError(t, err)
	require.Equal(t, Deployed{Name: "orders", Version: 1, Status: "running"}, got)
	// Deploy then stop, sent back to back: the lifecycle carries them out in
	// that order, so the new version ends stopped.
	got, err = c.Deploy(ctx, "orders", spec, "test", true)
	require.NoError(t, err)
	require.Equal(t, Deployed{Name: "orders", Version: 2, Status: "stopped"}, got)

	_, err = c.Deploy(ctx, "bad", []byte("name: bad\nconsumer: {connector: http-webhook}\nproducers: {out: {connector: teleport}}\n"), "test", false)
	require.ErrorContains(t, err, `unknown producer "teleport"`)
}

// devStackAdmin starts a dev stack in dir, stopped when the test ends, and
// returns a client of its API with its admin key.
func devStackAdmin(t *testing.T, dir string) *Client {
	t.Helper()
	stack, err := devstack.Start(context.Background(), devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	adminKey, err := os.ReadFile(filepath.Join(dir, devstack.AdminKeyFile))
	require.NoError(t, err)
	return New("http://"+stack.Endpoints().HTTP, string(adminKey))
}

func TestPutSecretAndPatchTenantSendWhatTheAPITakes(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+string(b))
		if r.URL.Path == "/v1/tenants/nope" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"title":"Not Found","detail":"not found"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := New(srv.URL, "k")
	ctx := context.Background()
	require.NoError(t, c.PutSecret(ctx, "slack-webhook-url", "http://127.0.0.1:8099/x"))
	require.NoError(t, c.PatchTenant(ctx, "demo", TenantPatch{Egress: &Egress{AllowHosts: []string{"127.0.0.1:8099"}}}))
	require.ErrorContains(t, c.PatchTenant(ctx, "nope", TenantPatch{Egress: &Egress{}}), "update tenant nope: 404 Not Found: not found")
	require.Equal(t, []string{
		`PUT /v1/secrets/slack-webhook-url {"value":"http://127.0.0.1:8099/x"}`,
		`PATCH /v1/tenants/demo {"egress":{"allowHosts":["127.0.0.1:8099"]}}`,
		`PATCH /v1/tenants/nope {"egress":{}}`,
	}, got)
}
