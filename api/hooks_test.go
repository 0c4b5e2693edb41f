package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

type hookEnv struct {
	js     jetstream.JetStream
	state  *dataplane.State
	srv    *httptest.Server
	hooks  *Webhooks
	claims *dataplane.ClaimCheck
}

func newHookEnv(t *testing.T, js jetstream.JetStream) *hookEnv {
	t.Helper()
	ctx := context.Background()
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	cache, err := dataplane.WatchDesired(ctx, state)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	store, _ := testenv.S3(t)
	claims := &dataplane.ClaimCheck{Store: store}
	accounts := dataplane.SharedAccount{JS: js}
	publisher := &dataplane.Publisher{Accounts: accounts, Claims: claims}
	hooks := &Webhooks{Pipelines: cache, Publisher: publisher, Idempotency: &dataplane.Idempotency{Publisher: publisher}}
	api := New(Options{Gatherer: prometheus.NewRegistry()})
	api.RegisterWebhooks(hooks)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &hookEnv{js: js, state: state, srv: srv, hooks: hooks, claims: claims}
}

// deploy writes desired state and creates the streams, as a runner would.
func (e *hookEnv) deploy(t *testing.T, tenant, integration, consumer string, maxBytes int64) dataplane.Pipeline {
	t.Helper()
	return e.deployConfig(t, tenant, integration, consumer, "", 1, maxBytes)
}

// deployConfig is deploy with the consumer's config and the desired-state
// version.
func (e *hookEnv) deployConfig(t *testing.T, tenant, integration, consumer, config string, version int, maxBytes int64) dataplane.Pipeline {
	t.Helper()
	var raw json.RawMessage
	if config != "" {
		raw = json.RawMessage(config)
	}
	d := dataplane.Desired{Tenant: tenant, Integration: integration, Version: version, Status: dataplane.DesiredRunning, WebhookMaxBytes: maxBytes,
		Spec: spec.Integration{Name: integration, Consumer: spec.Step{Connector: consumer, Config: raw}, Producers: map[string]spec.Step{"out": {Connector: "file"}}}}
	require.NoError(t, e.state.PutDesired(context.Background(), d))
	_, err := dataplane.EnsureStreams(context.Background(), e.js, d.Pipeline())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, ok := e.hooks.Pipelines.Lookup(d.Pipeline())
		return ok && got.Version == version
	}, 5*time.Second, 10*time.Millisecond)
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

func (e *hookEnv) streamMsgs(t *testing.T, p dataplane.Pipeline) uint64 {
	s, err := e.js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	waiting, err := dataplane.WaitingBySubject(context.Background(), s, p)
	require.NoError(t, err)
	var n uint64
	for _, count := range waiting {
		n += count
	}
	return n
}

func TestWebhookStoresOneMessagePerIdempotencyKey(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)

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
	p := e.deploy(t, "acme", "small", dataplane.WebhookConnector, 100)
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
	e.deploy(t, "flood", "in", dataplane.WebhookConnector, 0)
	e.deploy(t, "calm", "in", dataplane.WebhookConnector, 0)

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
	e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)

	// Not deployed on NATS yet (no stream): 503, not 2xx.
	d := dataplane.Desired{Tenant: "acme", Integration: "nostream", Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: "nostream", Consumer: spec.Step{Connector: dataplane.WebhookConnector}, Producers: map[string]spec.Step{"o": {Connector: "x"}}}}
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

// tenantSecrets serves fixed tenant secrets and counts the look-ups.
type tenantSecrets struct {
	values  map[string]string
	lookups atomic.Int64
}

// Complete gives env the resolver of its tenant's secrets.
func (s *tenantSecrets) Complete(_ context.Context, env *sdk.Env) error {
	tenant := env.Tenant
	env.Secrets = func(_ context.Context, name string) (string, error) {
		s.lookups.Add(1)
		v, ok := s.values[tenant+"/"+name]
		if !ok {
			return "", fmt.Errorf("tenant %s has no secret %s", tenant, name)
		}
		return v, nil
	}
	return nil
}

func hmacHex(key, data string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookVerifiesSignatures(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	stdKey := []byte("standard-webhooks-signing-key-32")
	secrets := &tenantSecrets{values: map[string]string{
		"acme/github": "gh-secret",
		"acme/slack":  "slack-secret",
		"acme/std":    "whsec_" + base64.StdEncoding.EncodeToString(stdKey),
	}}
	e.hooks.Tenancy = secrets
	gh := e.deployConfig(t, "acme", "gh", dataplane.WebhookConnector, `{"signature":{"scheme":"github","secret":{"secret":"github"}}}`, 1, 0)
	slack := e.deployConfig(t, "acme", "slack", dataplane.WebhookConnector, `{"signature":{"scheme":"slack","secret":{"secret":"slack"}}}`, 1, 0)
	std := e.deployConfig(t, "acme", "std", dataplane.WebhookConnector, `{"signature":{"scheme":"standard","secret":{"secret":"std"}}}`, 1, 0)

	body := `{"action":"opened"}`
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	stdMAC := hmac.New(sha256.New, stdKey)
	stdMAC.Write([]byte("msg_1." + now + "." + body))
	stdSig := "v1," + base64.StdEncoding.EncodeToString(stdMAC.Sum(nil))

	tests := []struct {
		name    string
		p       dataplane.Pipeline
		headers []string
		want    int
	}{
		{"github signed", gh, []string{"X-Hub-Signature-256", "sha256=" + hmacHex("gh-secret", body)}, 202},
		{"github bad signature", gh, []string{"X-Hub-Signature-256", "sha256=" + hmacHex("wrong", body)}, 401},
		{"github missing signature", gh, nil, 401},
		{"slack signed", slack, []string{"X-Slack-Request-Timestamp", now, "X-Slack-Signature", "v0=" + hmacHex("slack-secret", "v0:"+now+":"+body)}, 202},
		{"slack stale timestamp", slack, []string{"X-Slack-Request-Timestamp", stale, "X-Slack-Signature", "v0=" + hmacHex("slack-secret", "v0:"+stale+":"+body)}, 401},
		{"standard webhooks valid", std, []string{"webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", stdSig}, 202},
		{"standard webhooks other id", std, []string{"webhook-id", "msg_2", "webhook-timestamp", now, "webhook-signature", stdSig}, 401},
	}
	stored := map[dataplane.Pipeline]uint64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := e.post(t, "/v1/hooks/"+tt.p.Tenant+"/"+tt.p.Integration, strings.NewReader(body), tt.headers...)
			require.Equal(t, tt.want, resp.StatusCode)
			if tt.want == 202 {
				stored[tt.p]++
			} else {
				require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				require.Equal(t, "invalid or missing signature", out["detail"])
			}
			require.Equal(t, stored[tt.p], e.streamMsgs(t, tt.p), "only verified requests are stored")
		})
	}
	require.EqualValues(t, 3, secrets.lookups.Load(), "each secret is resolved once per version, not per request")

	// A new version with another secret takes effect, resolved once more.
	secrets.values["acme/github2"] = "rotated"
	e.deployConfig(t, "acme", "gh", dataplane.WebhookConnector, `{"signature":{"scheme":"github","secret":{"secret":"github2"}}}`, 2, 0)
	resp, _ := e.post(t, "/v1/hooks/acme/gh", strings.NewReader(body), "X-Hub-Signature-256", "sha256="+hmacHex("gh-secret", body))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the old secret no longer verifies")
	resp, _ = e.post(t, "/v1/hooks/acme/gh", strings.NewReader(body), "X-Hub-Signature-256", "sha256="+hmacHex("rotated", body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 4, secrets.lookups.Load())
}

func TestWebhookConfigLimitsAndMisconfiguration(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	small := e.deployConfig(t, "acme", "small", dataplane.WebhookConnector, `{"maxBytes":10}`, 1, 1000)
	broken := e.deployConfig(t, "acme", "broken", dataplane.WebhookConnector, `{"signature":{"scheme":"github","secret":{"secret":"hunter2-ref"}}}`, 1, 0)

	resp, _ := e.post(t, "/v1/hooks/acme/small", strings.NewReader(strings.Repeat("x", 11)))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "the config's maxBytes overrides the integration's")
	resp, _ = e.post(t, "/v1/hooks/acme/small", strings.NewReader(strings.Repeat("x", 10)))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 1, e.streamMsgs(t, small))

	// No tenant secrets here: the config cannot be built.
	resp, out := e.post(t, "/v1/hooks/acme/broken", strings.NewReader("x"), "X-Hub-Signature-256", "sha256=00")
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	detail, _ := out["detail"].(string)
	require.NotEmpty(t, detail)
	require.NotContains(t, detail, "hunter2-ref", "the problem never shows the config")
	require.NotContains(t, detail, "secret")
	require.Zero(t, e.streamMsgs(t, broken))
}

// TestWebhookStoresAnNDJSONBatchAsOneMessagePerLine: every non-empty line is
// a message with its own ID, stored before the 202; the same batch again
// stores nothing twice; empty and oversize batches store nothing.
func TestWebhookStoresAnNDJSONBatchAsOneMessagePerLine(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)
	batch := "{\"n\":0}\n\n  {\"n\":1}  \r\n{\"n\":2}"

	resp, out := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(batch),
		"Idempotency-Key", "batch-1", "Content-Type", "application/x-ndjson; charset=utf-8")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "batch-1", out["id"])
	require.EqualValues(t, 3, out["count"])
	require.EqualValues(t, 3, e.streamMsgs(t, p))
	resp, _ = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(batch), "Idempotency-Key", "batch-1", "Content-Type", "application/x-ndjson")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 3, e.streamMsgs(t, p), "the same batch again stores nothing twice")

	s, err := js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	for seq, want := range map[uint64]string{1: `{"n":0}`, 2: `{"n":1}`, 3: `{"n":2}`} {
		raw, err := s.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		require.Equal(t, want, string(raw.Data))
		require.Equal(t, "batch-1-"+strconv.Itoa(int(seq-1)), raw.Header.Get("Vrsky-Msg-Id"))
		require.Equal(t, "application/json", raw.Header.Get("Vrsky-Content-Type"))
	}

	for name, body := range map[string]string{
		"no record":  "\n \n",
		"too many":   strings.Repeat("{}\n", MaxBatchRecords+1),
		"empty body": "",
	} {
		resp, _ := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(body), "Content-Type", "application/x-ndjson")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}
	require.EqualValues(t, 3, e.streamMsgs(t, p), "refused batches store nothing")
}
