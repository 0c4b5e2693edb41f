package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
)

// newConsoleEnv is the API on a private PostgreSQL and NATS server, with
// tenants created straight in the store, optionally a Temporal server
// running DLQReplay, and set changing the options.
func newConsoleEnv(t *testing.T, withTemporal bool, set func(*Options)) *dlqEnv {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testenv.JetStream(t)
	st := store.New(pool)
	var c *control.Client
	if withTemporal {
		c = startControlPlane(t, st, js, nil)
	}
	admin := store.NewSecret("vrsky_admin_")
	logs := &syncBuffer{}
	opts := Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Auth: st, Store: st, AdminKeyHash: store.HashSecret(admin), Control: c, Accounts: dataplane.SharedAccount{JS: js},
	}
	if set != nil {
		set(&opts)
	}
	srv := New(opts)
	return &dlqEnv{
		authEnv: &authEnv{noControl: true, h: srv.Handler(), st: st, pool: pool, adminKey: admin, logs: logs, js: js},
		js:      js, control: c,
	}
}

func TestOverviewForThePlatformAdmin(t *testing.T) {
	t.Parallel()
	var pool *pgxpool.Pool
	e := newConsoleEnv(t, false, func(o *Options) {
		o.Checks = []Check{
			{Name: "postgres", Probe: func(ctx context.Context) error { return pool.Ping(ctx) }},
			{Name: "temporal", Probe: func(context.Context) error { return errors.New("connection refused") }},
			{Name: "nats", Probe: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		}
	})
	pool = e.pool
	ctx := context.Background()
	key, _ := e.createTenant(t, "acme")
	_, err := e.pool.Exec(ctx, `INSERT INTO tenants (id, name, status) VALUES ('beta', 'Beta', 'provisioning'), ('gamma', 'Gamma', 'failed')`)
	require.NoError(t, err)
	for _, name := range []string{"a", "b", "c"} {
		res := call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed(name, "out"))
		require.Equal(t, http.StatusCreated, res.code, res.raw)
	}
	_, err = e.pool.Exec(ctx, `UPDATE integrations SET status = 'running' WHERE id = 'a'; UPDATE integrations SET status = 'degraded' WHERE id = 'b'`)
	require.NoError(t, err)
	now := time.Now()
	_, err = e.st.WriteSamples(ctx, []store.Sample{
		{TenantID: "acme", IntegrationID: "a", At: now.Add(-20 * time.Second), In: 100, Errors: 5, DLQ: 1},
		{TenantID: "acme", IntegrationID: "a", At: now.Add(-10 * time.Second), In: 300, Errors: 15, DLQ: 4},
	})
	require.NoError(t, err)

	res := call(t, e.h, http.MethodGet, "/v1/overview", e.adminKey, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, map[string]any{"total": 3.0, "active": 1.0, "provisioning": 1.0, "failed": 1.0}, res.body["tenants"])
	require.Equal(t, map[string]any{"total": 3.0, "running": 1.0, "degraded": 1.0, "stopped": 1.0}, res.body["integrations"])
	require.InDelta(t, 20, res.body["messages_per_second"], 1e-9)
	require.InDelta(t, 1, res.body["errors_per_second"], 1e-9)
	require.EqualValues(t, 4, res.body["dlq_messages"])
	require.Equal(t, map[string]any{"postgres": "up", "temporal": "down", "nats": "down", "s3": "not_configured"}, res.body["components"])

	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/overview", key, ""), http.StatusForbidden)
	require401(t, call(t, e.h, http.MethodGet, "/v1/overview", "", ""))
}

func TestConnectorCatalog(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, false, nil)
	key, _ := e.createTenant(t, "acme")
	reader, _ := e.createKey(t, key, `["read"]`)

	for _, k := range []string{reader, e.adminKey} {
		res := call(t, e.h, http.MethodGet, "/v1/connectors", k, "")
		require.Equal(t, http.StatusOK, res.code, res.raw)
		items := res.body["items"].([]any)
		require.NotEmpty(t, items)
		order := map[string]int{"consumer": 0, "converter": 1, "filter": 2, "producer": 3}
		seen := map[string]bool{}
		for i, raw := range items {
			it := raw.(map[string]any)
			seen[it["kind"].(string)+":"+it["name"].(string)] = true
			require.NotEmpty(t, it["description"], it["name"])
			require.NotNil(t, it["example"], it["name"])
			schema := it["schema"].(map[string]any)
			require.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])
			require.Equal(t, it["name"], schema["title"])
			if i > 0 {
				prev := items[i-1].(map[string]any)
				pk, k := order[prev["kind"].(string)], order[it["kind"].(string)]
				require.True(t, pk < k || pk == k && prev["name"].(string) < it["name"].(string), "sorted by kind then name")
			}
		}
		for _, want := range []string{"consumer:http-webhook", "consumer:file", "converter:json-transform", "filter:router", "producer:file", "producer:postgres"} {
			require.True(t, seen[want], want)
		}
	}

	res := call(t, e.h, http.MethodGet, "/v1/connectors/router", reader, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, "filter", res.body["kind"])
	require.Contains(t, res.body["schema"].(map[string]any)["properties"], "routes")
	require.Equal(t, "consumer", call(t, e.h, http.MethodGet, "/v1/connectors/file", reader, "").body["kind"])
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/connectors/nope", reader, ""), http.StatusNotFound)
	require401(t, call(t, e.h, http.MethodGet, "/v1/connectors", "", ""))

	// Every new operation is in the OpenAPI document, with security and errors.
	code, doc := get(t, e.h, "/openapi.json")
	require.Equal(t, http.StatusOK, code)
	for _, path := range []string{"/v1/connectors", "/v1/connectors/{name}", "/v1/integrations/test",
		"/v1/integrations/{integrationId}/metrics", "/v1/integrations/{integrationId}/inspect", "/v1/overview",
		"/v1/dlq/replays/{replayId}"} {
		require.Contains(t, string(doc), `"`+path+`"`)
	}
}
