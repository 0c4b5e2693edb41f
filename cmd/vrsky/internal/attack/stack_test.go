package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
)

// stack is a dev stack shared by the innocent tenant and the attacker.
type stack struct {
	dir   string
	ep    devstack.Endpoints
	admin *client.API
}

func startStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	logs := io.Discard
	if path := os.Getenv("VRSKY_ATTACK_LOG"); path != "" { // the stack's log, for debugging the suite
		f, err := os.Create(path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		logs = f
	}
	cfg := devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", PostgresPort: 0, Version: "test",
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := devstack.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	key, err := os.ReadFile(filepath.Join(dir, "admin-key"))
	require.NoError(t, err)
	ep := s.Endpoints()
	admin, err := client.New("http://"+ep.HTTP, string(key))
	require.NoError(t, err)
	return &stack{dir: dir, ep: ep, admin: admin}
}

// tenant creates tenant and returns a client holding its first (admin) key.
func (s *stack) tenant(ctx context.Context, t *testing.T, tenant string) *client.API {
	t.Helper()
	c, _, err := tenantkey.Ensure(ctx, s.admin, tenant, filepath.Join(s.dir, "keys", tenant+".key"))
	require.NoError(t, err)
	return c
}

// writeKey returns a client holding a new key of c's tenant with every
// scope but admin: it reads and writes integrations, secrets and the DLQ,
// and cannot manage keys.
func writeKey(ctx context.Context, t *testing.T, c *client.API) *client.API {
	t.Helper()
	r, err := c.CreateApiKeyWithResponse(ctx, client.CreateApiKeyJSONRequestBody{Scopes: []client.CreateAPIKeyInputBodyScopes{"read", "write", "dlq"}})
	require.NoError(t, client.Check("create API key", r, err, http.StatusCreated))
	return c.WithKey(r.JSON201.Secret)
}

// allowEgress lets tenant's connectors reach hosts (host:port), as a
// platform admin does for an on-premise target.
func (s *stack) allowEgress(ctx context.Context, t *testing.T, tenant string, hosts ...string) {
	t.Helper()
	r, err := s.admin.UpdateTenantWithResponse(ctx, tenant, client.TenantPatch{Egress: &client.EgressPolicy{AllowHosts: &hosts}})
	require.NoError(t, client.Check("update tenant "+tenant, r, err, http.StatusOK))
}

// putSecret stores a tenant secret through the API.
func putSecret(ctx context.Context, t *testing.T, c *client.API, name, value string) {
	t.Helper()
	r, err := c.PutSecretWithResponse(ctx, name, client.PutSecretJSONRequestBody{Value: value})
	require.NoError(t, client.Check("store secret "+name, r, err, http.StatusOK, http.StatusCreated))
}

// receiver is an HTTP server standing for a tenant's own endpoint: it
// records what reaches it.
type receiver struct {
	addr string
	mu   sync.Mutex
	got  map[string][]time.Time // path → arrival times
	hits atomic.Int64
	// onBody sees each request's path and body.
	onBody func(path string, body []byte)
}

func startReceiver(t *testing.T, onBody func(path string, body []byte)) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &receiver{addr: ln.Addr().String(), got: map[string][]time.Time{}, onBody: onBody}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.hits.Add(1)
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], time.Now())
		r.mu.Unlock()
		if r.onBody != nil {
			r.onBody(req.URL.Path, body)
		}
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *receiver) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[path])
}

// tarpit accepts TCP connections and never answers.
func tarpit(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// post sends a webhook and returns the status and the answer.
func (s *stack) post(ctx context.Context, tenant, integration string, body []byte, headers ...string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.ep.HTTP+"/v1/hooks/"+tenant+"/"+integration, strings.NewReader(string(body)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}

// apply stores spec as a new integration and returns the API's answer.
func apply(ctx context.Context, c *client.API, spec string) (int, string) {
	r, err := c.CreateIntegrationWithBodyWithResponse(ctx, nil, "application/yaml", strings.NewReader(spec))
	if err != nil {
		return 0, err.Error()
	}
	return r.StatusCode(), string(r.Body)
}

// deadLetters lists the caller's tenant's dead letters of integration.
func deadLetters(ctx context.Context, c *client.API, integration string) ([]map[string]any, error) {
	var page struct {
		Items []map[string]any `json:"items"`
	}
	r, err := c.ListDeadLettersWithResponse(ctx, &client.ListDeadLettersParams{Integration: &integration})
	if err := client.Check("list dlq", r, err, http.StatusOK); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		return nil, fmt.Errorf("list dlq: %w", err)
	}
	return page.Items, nil
}

// awaitDeadLetter waits for integration's first dead letter.
func awaitDeadLetter(ctx context.Context, t *testing.T, c *client.API, integration string) map[string]any {
	t.Helper()
	for {
		items, err := deadLetters(ctx, c, integration)
		require.NoError(t, err)
		if len(items) > 0 {
			return items[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no dead letter for %s: %v", integration, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// percentile returns the p-th percentile (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// stepCtx bounds one step of an attack, so that a step that hangs fails
// alone instead of using up the whole suite's time.
func stepCtx(ctx context.Context, t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fileLines returns the lines the file producer wrote under tenant's dir.
func fileLines(dataDir, tenant, dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dataDir, "files", tenant, dir, "*"))
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}
