package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

type hookEnv struct {
	js    jetstream.JetStream
	state *hotpath.State
	srv   *httptest.Server
	hooks *Webhooks
}

func newHookEnv(t *testing.T, js jetstream.JetStream) *hookEnv {
	t.Helper()
	ctx := context.Background()
	state, err := hotpath.OpenState(ctx, js)
	require.NoError(t, err)
	cache, err := hotpath.WatchDesired(ctx, state)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	store, _ := testenv.S3(t)
	hooks := &Webhooks{Pipelines: cache, Publisher: &hotpath.Publisher{JS: js, Claims: &hotpath.ClaimCheck{Store: store}}}
	api := New(Options{Gatherer: prometheus.NewRegistry()})
	api.RegisterWebhooks(hooks)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &hookEnv{js: js, state: state, srv: srv, hooks: hooks}
}

// deploy writes desired state and creates the streams, as a runner would.
func (e *hookEnv) deploy(t *testing.T, tenant, integration, consumer string, maxBytes int64) hotpath.Pipeline {
	t.Helper()
	d := hotpath.Desired{Tenant: tenant, Integration: integration, Version: 1, Status: hotpath.DesiredRunning, WebhookMaxBytes: maxBytes,
		Spec: spec.Integration{Name: integration, Consumer: spec.Step{Connector: consumer}, Producers: map[string]spec.Step{"out": {Connector: "file"}}}}
	require.NoError(t, e.state.PutDesired(context.Background(), d))
	_, err := hotpath.EnsureStreams(context.Background(), e.js, d.Pipeline())
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := e.hooks.Pipelines.Lookup(d.Pipeline()); return ok }, 5*time.Second, 10*time.Millisecond)
	return d.Pipeline()
}

func (e *hookEnv) post(t *testing.T, path string, body io.Reader, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func (e *hookEnv) streamMsgs(t *testing.T, p hotpath.Pipeline) uint64 {
	s, err := e.js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestWebhookStoresOneMessagePerIdempotencyKey(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "orders", hotpath.WebhookConnector, 0)

	resp, out := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"id":1}`), "Idempotency-Key", "order-1", "Content-Type", "application/json",
		"X-GitHub-Event", "push", "Authorization", "Bearer secret")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "order-1", out["id"])
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"id":1}`), "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 1, e.streamMsgs(t, p), "the same key twice is one message")

	resp, out = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"id":2}`))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Len(t, out["id"], 32, "a generated ID")
	require.EqualValues(t, 2, e.streamMsgs(t, p))

	s, _ := js.Stream(context.Background(), p.Stream())
	raw, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"id":1}`, string(raw.Data))
	require.Contains(t, raw.Header.Get("Vrsky-Headers"), `"x-github-event":"push"`)
	require.NotContains(t, raw.Header.Get("Vrsky-Headers"), "secret", "credentials are never kept")
}

func TestWebhookRejectsBadRequestsAndStoresNothing(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "small", hotpath.WebhookConnector, 100)
	e.deploy(t, "acme", "polling", "file", 0)

	tests := []struct {
		name    string
		path    string
		body    io.Reader
		headers []string
		want    int
	}{
		{"unknown integration", "/v1/hooks/acme/nope", strings.NewReader("x"), nil, 404},
		{"other tenant", "/v1/hooks/evil/small", strings.NewReader("x"), nil, 404},
		{"hostile names", "/v1/hooks/acme/sm%2Eall", strings.NewReader("x"), nil, 404},
		{"wildcard in name", "/v1/hooks/acme/%3E", strings.NewReader("x"), nil, 404},
		{"not a webhook integration", "/v1/hooks/acme/polling", strings.NewReader("x"), nil, 404},
		{"over the limit", "/v1/hooks/acme/small", bytes.NewReader(make([]byte, 101)), nil, 413},
		{"over the limit, chunked", "/v1/hooks/acme/small", io.MultiReader(strings.NewReader(strings.Repeat("a", 60)), strings.NewReader(strings.Repeat("b", 60))), nil, 413},
		{"idempotency key too long", "/v1/hooks/acme/small", strings.NewReader("x"), []string{"Idempotency-Key", strings.Repeat("k", 201)}, 400},
		{"idempotency key with spaces", "/v1/hooks/acme/small", strings.NewReader("x"), []string{"Idempotency-Key", "a b"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := e.post(t, tt.path, tt.body, tt.headers...)
			require.Equal(t, tt.want, resp.StatusCode)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			require.EqualValues(t, tt.want, out["status"])
		})
	}
	require.Zero(t, e.streamMsgs(t, p), "nothing was stored")
}

func TestWebhookRateLimitsPerTenant(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.TenantRate, e.hooks.TenantBurst = 1, 2
	e.deploy(t, "flood", "in", hotpath.WebhookConnector, 0)
	e.deploy(t, "calm", "in", hotpath.WebhookConnector, 0)

	codes := []int{}
	for range 4 {
		resp, _ := e.post(t, "/v1/hooks/flood/in", strings.NewReader("x"))
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
	require.Equal(t, []int{202, 202, 429, 429}, codes)
	resp, _ := e.post(t, "/v1/hooks/calm/in", strings.NewReader("x"))
	require.Equal(t, 202, resp.StatusCode, "another tenant is not affected")
}

// TestWebhookAnswers503WhenNATSIsDown: never a 2xx for something not stored.
func TestWebhookAnswers503WhenNATSIsDown(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.Start(context.Background(), natsserver.Options{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	e := newHookEnv(t, js)
	e.deploy(t, "acme", "orders", hotpath.WebhookConnector, 0)

	// Not deployed on NATS yet (no stream): 503, not 2xx.
	d := hotpath.Desired{Tenant: "acme", Integration: "nostream", Version: 1, Status: hotpath.DesiredRunning,
		Spec: spec.Integration{Name: "nostream", Consumer: spec.Step{Connector: hotpath.WebhookConnector}, Producers: map[string]spec.Step{"o": {Connector: "x"}}}}
	require.NoError(t, e.state.PutDesired(context.Background(), d))
	require.Eventually(t, func() bool { _, ok := e.hooks.Pipelines.Lookup(d.Pipeline()); return ok }, 5*time.Second, 10*time.Millisecond)
	resp, _ := e.post(t, "/v1/hooks/acme/nostream", strings.NewReader("x"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	ns.Shutdown()
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader("x"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestWebhookIsInTheOpenAPIDocument(t *testing.T) {
	srv := New(Options{Gatherer: prometheus.NewRegistry()})
	srv.RegisterWebhooks(&Webhooks{})
	_, body := get(t, srv.Handler(), "/openapi.json")
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "post-webhook", doc.Paths["/v1/hooks/{tenantId}/{integrationId}"]["post"].OperationID)
}
