package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/testenv"
)

// logBuffer is a log destination safe for the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the JSON log lines written so far.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), string(l))
		out = append(out, m)
	}
	return out
}

// instrumentedAPI is an API on a registry of its own, with a test
// operation that logs and fails with a problem, and one that waits.
func instrumentedAPI(t *testing.T, logs io.Writer) (*Server, *prometheus.Registry, chan struct{}) {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := New(Options{Gatherer: reg, Registerer: reg, Logger: logging.New(logs, "info")})
	huma.Register(srv.API(), huma.Operation{OperationID: "get-thing", Method: http.MethodGet, Path: "/v1/things/{id}"},
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{}, error) {
			srv.log.InfoContext(ctx, "looking for a thing", "id", in.ID)
			return nil, huma.Error404NotFound("no such thing")
		})
	release := make(chan struct{})
	huma.Register(srv.API(), huma.Operation{OperationID: "put-thing", Method: http.MethodPut, Path: "/v1/things/{id}"},
		func(ctx context.Context, in *struct {
			ID   string `path:"id"`
			Body struct {
				Name string `json:"name"`
			}
		}) (*struct{}, error) {
			<-release
			return nil, nil
		})
	return srv, reg, release
}

func serve(h http.Handler, method, path, body string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRequestIDIsKeptOnlyWhenSafe(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	srv, _, _ := instrumentedAPI(t, &logs)
	tests := []struct {
		name, incoming string
		kept           bool
	}{
		{"none", "", false},
		{"safe token", "req-42_a.B", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"very long", strings.Repeat("x", 10000), false},
		{"newline forging a log line", "abc\n{\"level\":\"ERROR\",\"msg\":\"forged\"}", false},
		{"carriage return", "abc\rdef", false},
		{"NUL", "abc\x00def", false},
		{"escape sequence", "\x1b[31mred", false},
		{"space", "abc def", false},
		{"JSON breaking quote", `abc","admin":"true`, false},
		{"non-ASCII", "ünïcode", false},
		{"slash", "../../etc/passwd", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.incoming != "" {
				h["X-Request-Id"] = []string{tt.incoming}
			}
			rec := serve(srv.Handler(), http.MethodGet, "/v1/things/7", "", h)
			require.Equal(t, http.StatusNotFound, rec.Code)
			id := rec.Header().Get(RequestIDHeader)
			if tt.kept {
				require.Equal(t, tt.incoming, id)
			} else {
				require.Regexp(t, `^[0-9a-f]{32}$`, id, "an unsafe or missing ID is replaced by a generated one")
				require.False(t, seen[id], "generated IDs differ")
				seen[id] = true
			}
			require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			var problem map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &problem))
			require.Equal(t, id, problem["request_id"], "the problem detail carries the request ID")
			require.Equal(t, "no such thing", problem["detail"])

			var logged bool
			for _, l := range logs.lines(t) {
				if l["msg"] == "looking for a thing" && l["request_id"] == id {
					logged = true
					require.Equal(t, "api", l["component"])
				}
			}
			require.True(t, logged, "the handler's log line carries the request ID")
		})
	}
}

func TestProblemSchemaDocumentsRequestID(t *testing.T) {
	t.Parallel()
	srv, _, _ := instrumentedAPI(t, io.Discard)
	b, err := json.Marshal(srv.API().OpenAPI())
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Contains(t, doc.Components.Schemas["ErrorModel"].Properties, "request_id")
	require.Contains(t, doc.Components.Schemas["ErrorModel"].Properties, "detail")
}

func TestHTTPMetricsUseRoutePatterns(t *testing.T) {
	t.Parallel()
	srv, reg, release := instrumentedAPI(t, io.Discard)
	h := srv.Handler()

	for _, id := range []string{"1", "2", "3"} {
		serve(h, http.MethodGet, "/v1/things/"+id, "", nil)
	}
	for _, path := range []string{"/nope", "/wp-admin/../x", "/v1/things/1/2/3", "/%00"} {
		serve(h, http.MethodGet, path, "", nil)
	}
	serve(h, "BREW", "/v1/things/1", "", nil)

	require.Equal(t, 3.0, testutil.ToFloat64(srv.metrics.requests.WithLabelValues("/v1/things/{id}", "GET", "404")))
	// The mux answers 404, or redirects to a cleaned path: one label.
	require.GreaterOrEqual(t, testutil.ToFloat64(srv.metrics.requests.WithLabelValues("unmatched", "GET", "404")), 2.0, "scanners' paths share one label")
	require.Equal(t, 1.0, testutil.ToFloat64(srv.metrics.requests.WithLabelValues("unmatched", "other", "405")), "unknown methods fold into other")
	require.LessOrEqual(t, testutil.CollectAndCount(srv.metrics.requests), 4, "no raw path became a label")
	require.Positive(t, testutil.ToFloat64(srv.metrics.responseBody.WithLabelValues("/v1/things/{id}")))

	// A request in flight is counted until it is answered, with its body.
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		done <- serve(h, http.MethodPut, "/v1/things/9", `{"name":"nine"}`, http.Header{"Content-Type": {"application/json"}})
	}()
	require.Eventually(t, func() bool { return testutil.ToFloat64(srv.metrics.inFlight) == 1 }, 5*time.Second, 5*time.Millisecond)
	close(release)
	rec := <-done
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Zero(t, testutil.ToFloat64(srv.metrics.inFlight))
	require.Equal(t, float64(len(`{"name":"nine"}`)), testutil.ToFloat64(srv.metrics.requestBody.WithLabelValues("/v1/things/{id}")))

	// Everything is on the registry /metrics serves, under its contract name.
	n, err := testutil.GatherAndCount(reg, "vrsky_http_requests_total", "vrsky_http_request_duration_seconds",
		"vrsky_http_request_body_bytes_total", "vrsky_http_response_body_bytes_total", "vrsky_http_requests_in_flight")
	require.NoError(t, err)
	require.Positive(t, n)
	_, err = testutil.GatherAndCount(reg)
	require.NoError(t, err)
}

func TestHTTPMetricsShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := New(Options{Gatherer: reg, Registerer: reg})
	b := New(Options{Gatherer: reg, Registerer: reg}) // an admin listener on the same registry
	serve(a.Handler(), http.MethodGet, "/healthz", "", nil)
	serve(b.Handler(), http.MethodGet, "/healthz", "", nil)
	require.Equal(t, 2.0, testutil.ToFloat64(a.metrics.requests.WithLabelValues("/healthz", "GET", "200")))

	// Without a Registerer there are no HTTP metrics, but request IDs.
	plain := New(Options{Gatherer: prometheus.NewRegistry()})
	rec := serve(plain.Handler(), http.MethodGet, "/healthz", "", nil)
	require.Nil(t, plain.metrics)
	require.NotEmpty(t, rec.Header().Get(RequestIDHeader))
}

func TestRouteAndMethodLabels(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                    "unmatched",
		"GET /v1/things/{id}": "/v1/things/{id}",
		"POST /v1/hooks/{tenantId}/{integrationId}": "/v1/hooks/{tenantId}/{integrationId}",
		"example.com/x": "/x",
		"/ui/":          "/ui/",
		"GET":           "unmatched",
	} {
		require.Equal(t, want, routeLabel(pattern), pattern)
	}
	require.Equal(t, "PATCH", methodLabel("PATCH"))
	require.Equal(t, "other", methodLabel("get"))
	require.Equal(t, "other", methodLabel(strings.Repeat("X", 100)))
}

// instrumentedHooks is the webhook ingress on an API with HTTP metrics
// and a JSON logger.
func instrumentedHooks(t *testing.T, js jetstream.JetStream, logs io.Writer) (*hookEnv, *Server) {
	t.Helper()
	ctx := context.Background()
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	cache, err := dataplane.WatchDesired(ctx, state)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	accounts := dataplane.SharedAccount{JS: js}
	publisher := &dataplane.Publisher{Accounts: accounts}
	hooks := &Webhooks{Pipelines: cache, Publisher: publisher,
		Idempotency: &dataplane.Idempotency{Publisher: publisher}, Logger: logging.New(logs, "info")}
	reg := prometheus.NewRegistry()
	srv := New(Options{Gatherer: reg, Registerer: reg})
	srv.RegisterWebhooks(hooks)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &hookEnv{js: js, state: state, srv: ts, hooks: hooks}, srv
}

func TestWebhookOutcomesPerTenant(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.Start(context.Background(), natsserver.Options{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var logs logBuffer
	e, srv := instrumentedHooks(t, js, &logs)
	e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 100)
	e.deployConfig(t, "acme", "broken", dataplane.WebhookConnector, `{"signature":{"scheme":"github","secret":{"secret":"ref"}}}`, 1, 0)
	outcome := func(o string) float64 { return testutil.ToFloat64(srv.metrics.webhooks.WithLabelValues("acme", o)) }

	resp, _ := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"a":1}`), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"a":1}`), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader("{}\n{}\n{}\n"), "Content-Type", "application/x-ndjson")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, 4.0, outcome(OutcomeAccepted), "one per message, one per NDJSON record")
	require.Equal(t, 1.0, outcome(OutcomeDuplicate))

	resp, problem := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(strings.Repeat("x", 101)))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, resp.Header.Get(RequestIDHeader), problem["request_id"], "plain problem details carry the request ID")
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader("x"), "Idempotency-Key", "bad key")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = e.post(t, "/v1/hooks/acme/broken", strings.NewReader("x"), "X-Request-ID", "trace-broken-1")
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Equal(t, 3.0, outcome(OutcomeRefused))
	var logged bool
	for _, l := range logs.lines(t) {
		logged = logged || (l["msg"] == "webhook config cannot be built" && l["request_id"] == "trace-broken-1" && l["error"] != nil)
	}
	require.True(t, logged, "the ingress's log line carries the request ID: %v", logs.lines(t))

	// Unknown tenants and integrations are not counted per tenant: their
	// names are the sender's.
	for _, path := range []string{"/v1/hooks/nobody/orders", "/v1/hooks/acme/nothing", "/v1/hooks/" + strings.Repeat("a", 300) + "/x"} {
		resp, _ = e.post(t, path, strings.NewReader("x"))
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	}
	require.Equal(t, 3, testutil.CollectAndCount(srv.metrics.webhooks), "acme's accepted, duplicate and refused only")
	require.Equal(t, 3.0, testutil.ToFloat64(srv.metrics.requests.WithLabelValues("/v1/hooks/{tenantId}/{integrationId}", "POST", "404")))

	ns.Shutdown()
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader("x"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, 1.0, outcome(OutcomeUnavailable))
}

func TestWebhookOutcomeQuotaFull(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e, srv := instrumentedHooks(t, js, io.Discard)
	e.hooks.Publisher = quotaFull{}
	e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)
	resp, _ := e.post(t, "/v1/hooks/acme/orders", strings.NewReader("x"))
	require.Equal(t, http.StatusInsufficientStorage, resp.StatusCode)
	require.Equal(t, 1.0, testutil.ToFloat64(srv.metrics.webhooks.WithLabelValues("acme", OutcomeQuotaFull)))
}

// quotaFull is a message store whose tenant account is over its limits,
// as dataplane.Publisher reports it (the account limits themselves are
// tested in internal/natsauth).
type quotaFull struct{}

func (quotaFull) Publish(context.Context, dataplane.Pipeline, []sdk.Message) error {
	return fmt.Errorf("publish: %w", dataplane.ErrQuotaFull)
}
