package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

const ordersJSON = `{
	"name": "orders",
	"consumer": {"connector": "http-webhook"},
	"steps": [{"connector": "json-transform", "config": {"remove": ["secret"]}}],
	"producers": {"archive": {"connector": "file", "config": {"dir": "archive"}}}
}`

const ordersYAML = `name: orders-yaml
consumer:
  connector: http-webhook
steps:
  - connector: router
    config:
      routes:
        - when: total > 100
          to: [big]
      default: [archive]
producers:
  big:
    connector: file
    config: {dir: big}
  archive:
    connector: file
`

func specNamed(name, dir string) string {
	return `{"name":"` + name + `","consumer":{"connector":"http-webhook"},` +
		`"producers":{"archive":{"connector":"file","config":{"dir":"` + dir + `"}}}}`
}

// callWith is call with extra request headers; a Content-Type among them
// replaces the JSON default.
func callWith(t *testing.T, h http.Handler, method, path, key, body string, header map[string]string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Result().Body)
	res := response{code: rec.Code, header: rec.Result().Header, raw: string(raw)}
	if len(raw) > 0 && strings.Contains(res.header.Get("Content-Type"), "json") {
		require.NoError(t, json.Unmarshal(raw, &res.body), string(raw))
	}
	return res
}

// problemLocations lists the locations of a problem's errors.
func problemLocations(res response) []string {
	var locs []string
	errs, _ := res.body["errors"].([]any)
	for _, e := range errs {
		locs = append(locs, e.(map[string]any)["location"].(string))
	}
	return locs
}

func TestCreateIntegrationFromJSONAndYAML(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	key, keyID := e.createTenant(t, "acme")
	reader, _ := e.createKey(t, key, `["read"]`)

	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, ordersJSON)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	require.Equal(t, "/v1/integrations/orders", res.header.Get("Location"))
	require.Equal(t, `"v1"`, res.header.Get("ETag"))
	require.Equal(t, "orders", res.body["id"])
	require.Equal(t, "orders", res.body["name"])
	require.EqualValues(t, 1, res.body["version"])
	require.EqualValues(t, 0, res.body["deployed_version"])
	require.Equal(t, "stopped", res.body["desired_status"])
	require.Equal(t, "stopped", res.body["status"])
	require.NotEmpty(t, res.body["created_at"])
	require.NotEmpty(t, res.body["updated_at"])
	s := res.body["spec"].(map[string]any)
	require.Equal(t, "http-webhook", s["consumer"].(map[string]any)["connector"])
	require.Equal(t, map[string]any{"dir": "archive"}, s["producers"].(map[string]any)["archive"].(map[string]any)["config"])

	yaml := callWith(t, e.h, http.MethodPost, "/v1/integrations", key, ordersYAML, map[string]string{"Content-Type": "application/yaml"})
	require.Equal(t, http.StatusCreated, yaml.code, yaml.raw)
	require.Equal(t, "orders-yaml", yaml.body["id"])
	routes := yaml.body["spec"].(map[string]any)["steps"].([]any)[0].(map[string]any)["config"].(map[string]any)["routes"]
	require.Equal(t, []any{map[string]any{"when": "total > 100", "to": []any{"big"}}}, routes)

	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations", key, ordersJSON), http.StatusConflict)
	requireProblem(t, callWith(t, e.h, http.MethodPost, "/v1/integrations", key, ordersYAML,
		map[string]string{"Content-Type": "text/yaml; charset=utf-8"}), http.StatusConflict)

	// A read-only key reads but cannot create.
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations", reader, specNamed("other", "x")), http.StatusForbidden)
	got := call(t, e.h, http.MethodGet, "/v1/integrations/orders", reader, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, `"v1"`, got.header.Get("ETag"))
	require.Equal(t, res.body, got.body)
	for _, path := range []string{"/v1/integrations/nothing", "/v1/integrations/NOT_VALID"} {
		requireProblem(t, call(t, e.h, http.MethodGet, path, reader, ""), http.StatusNotFound)
	}

	versions := call(t, e.h, http.MethodGet, "/v1/integrations/orders/versions", reader, "")
	require.Equal(t, http.StatusOK, versions.code, versions.raw)
	items := versions.body["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, keyID, items[0].(map[string]any)["created_by"], "the version records which key wrote it")
}

func TestCreateIntegrationRejectsInvalidSpecs(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	key, _ := e.createTenant(t, "acme")

	for _, tc := range []struct {
		name, contentType, body string
		code                    int
		locations               []string
	}{
		{
			name: "every problem located",
			body: `{"name":"Bad Name","consumer":{"connector":"nope"},
				"steps":[{"connector":"json-transform","config":{"remvoe":[]}},
				         {"connector":"router","config":{"routes":[{"when":"true","to":["gone"]}]}}],
				"producers":{"db":{"connector":"x"},"files":{"connector":"file","config":{"format":"xls"}}}}`,
			code: http.StatusUnprocessableEntity,
			locations: []string{
				"body.name", "body.consumer.connector", "body.steps[0].config",
				"body.steps[1].config.routes[0].to", "body.producers.db.connector", "body.producers.files.config",
			},
		},
		{name: "missing parts", body: `{"name":"x"}`, code: http.StatusUnprocessableEntity,
			locations: []string{"body.consumer.connector", "body.producers"}},
		{name: "unknown field", body: `{"name":"x","tenant":"other"}`, code: http.StatusUnprocessableEntity, locations: []string{"body"}},
		{name: "not JSON", body: `{"name":`, code: http.StatusUnprocessableEntity, locations: []string{"body"}},
		{name: "not YAML", contentType: "application/yaml", body: "name: [", code: http.StatusUnprocessableEntity, locations: []string{"body"}},
		{name: "YAML problems located", contentType: "application/x-yaml", body: "name: y\nconsumer: {connector: nope}\nproducers: {}\n",
			code: http.StatusUnprocessableEntity, locations: []string{"body.consumer.connector", "body.producers"}},
		{name: "other media type", contentType: "text/plain", body: ordersJSON, code: http.StatusUnsupportedMediaType},
		{name: "malformed media type", contentType: "application/", body: ordersJSON, code: http.StatusUnsupportedMediaType},
		{name: "too big", body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, code: http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]string{}
			if tc.contentType != "" {
				header["Content-Type"] = tc.contentType
			}
			res := callWith(t, e.h, http.MethodPost, "/v1/integrations", key, tc.body, header)
			requireProblem(t, res, tc.code)
			if tc.locations != nil {
				require.ElementsMatch(t, tc.locations, problemLocations(res), res.raw)
			}
		})
	}
	list := call(t, e.h, http.MethodGet, "/v1/integrations", key, "")
	require.Equal(t, []any{}, list.body["items"], "nothing was stored")
}

func TestListIntegrationsPagesAndFilters(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	key, _ := e.createTenant(t, "acme")
	other, _ := e.createTenant(t, "other")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", other, specNamed("i-9", "x")).code)

	var want []any
	for i := range 5 {
		id := fmt.Sprintf("i-%d", i)
		want = append(want, id)
		require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed(id, id)).code)
	}
	var seen []any
	path := "/v1/integrations?limit=2"
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 3)
		res := call(t, e.h, http.MethodGet, path, key, "")
		require.Equal(t, http.StatusOK, res.code, res.raw)
		for _, it := range res.body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"])
		}
		next, ok := res.body["next"].(string)
		if !ok {
			break
		}
		require.Contains(t, res.header.Values("Link"), fmt.Sprintf(`</v1/integrations?cursor=%s&limit=2>; rel="next"`, next))
		path = "/v1/integrations?limit=2&cursor=" + next
	}
	require.Equal(t, want, seen, "only the caller's tenant's integrations")

	_, err := e.pool.Exec(context.Background(), `UPDATE integrations SET status = 'running' WHERE tenant_id = 'acme' AND id IN ('i-1', 'i-2', 'i-4')`)
	require.NoError(t, err)
	res := call(t, e.h, http.MethodGet, "/v1/integrations?status=running&limit=2", key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Len(t, res.body["items"], 2)
	require.Contains(t, res.header.Values("Link"), `</v1/integrations?cursor=i-2&limit=2&status=running>; rel="next"`)
	for _, q := range []string{"status=sleeping", "limit=0", "limit=101"} {
		requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations?"+q, key, ""), http.StatusUnprocessableEntity)
	}
}

func TestUpdateIntegrationAddsVersions(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	key, _ := e.createTenant(t, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed("orders", "v1")).code)

	put := func(body string, header map[string]string) response {
		return callWith(t, e.h, http.MethodPut, "/v1/integrations/orders", key, body, header)
	}
	res := put(specNamed("orders", "v2"), map[string]string{"If-Match": `"v1"`})
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, `"v2"`, res.header.Get("ETag"))
	require.EqualValues(t, 2, res.body["version"])

	requireProblem(t, put(specNamed("orders", "stale"), map[string]string{"If-Match": `"v1"`}), http.StatusPreconditionFailed)
	for _, tag := range []string{`v2`, `"2"`, `"v0"`, `"vx"`, `"v2", "v3"`} {
		requireProblem(t, put(specNamed("orders", "bad-tag"), map[string]string{"If-Match": tag}), http.StatusPreconditionFailed)
	}
	res = put("name: orders\nconsumer: {connector: http-webhook}\nproducers: {archive: {connector: file, config: {dir: v3}}}\n",
		map[string]string{"Content-Type": "application/yaml", "If-Match": `W/"v2"`})
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, `"v3"`, res.header.Get("ETag"))
	res = put(specNamed("orders", "v4"), map[string]string{"If-Match": "*"})
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 4, res.body["version"])

	renamed := put(specNamed("renamed", "x"), nil)
	requireProblem(t, renamed, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"body.name"}, problemLocations(renamed))
	invalid := put(`{"name":"orders","consumer":{"connector":"http-webhook"},"producers":{"a":{"connector":"nope"}}}`, nil)
	require.Equal(t, []string{"body.producers.a.connector"}, problemLocations(invalid))
	requireProblem(t, callWith(t, e.h, http.MethodPut, "/v1/integrations/nothing", key, specNamed("nothing", "x"), nil), http.StatusNotFound)

	got := call(t, e.h, http.MethodGet, "/v1/integrations/orders", key, "")
	require.Equal(t, `"v4"`, got.header.Get("ETag"))
	versions := call(t, e.h, http.MethodGet, "/v1/integrations/orders/versions", key, "")
	require.Equal(t, http.StatusOK, versions.code, versions.raw)
	var dirs []any
	for _, v := range versions.body["items"].([]any) {
		dirs = append(dirs, v.(map[string]any)["spec"].(map[string]any)["producers"].(map[string]any)["archive"].(map[string]any)["config"].(map[string]any)["dir"])
	}
	require.Equal(t, []any{"v4", "v3", "v2", "v1"}, dirs, "newest first, the rejected ones absent")
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/nothing/versions", key, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/NOT_VALID/versions", key, ""), http.StatusNotFound)
}

func TestLifecycleChangesWithoutTemporalAre503(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Control = nil })
	key, _ := activeTenant(t, e.st, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, ordersJSON).code)
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/v1/integrations/orders/deploy"},
		{http.MethodPost, "/v1/integrations/orders/start"},
		{http.MethodPost, "/v1/integrations/orders/stop"},
		{http.MethodDelete, "/v1/integrations/orders"},
	} {
		res := call(t, e.h, r.method, r.path, key, "")
		requireProblem(t, res, http.StatusServiceUnavailable)
		require.NotEmpty(t, res.header.Get("Retry-After"))
	}
	// The status is still answered, without a runner part.
	status := call(t, e.h, http.MethodGet, "/v1/integrations/orders/status", key, "")
	require.Equal(t, http.StatusOK, status.code, status.raw)
	require.Equal(t, "stopped", status.body["status"])
	require.NotContains(t, status.body, "runner")
}

// lifecycleEnv is the API with a Temporal server running the integration
// lifecycle on the real activities, NATS KV for the desired state and a
// stand-in runner that reports whatever is desired.
type lifecycleEnv struct {
	*authEnv
	control *control.Client
	state   *dataplane.State
	js      jetstream.JetStream
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)

	st := store.New(pool)
	c := startControlPlane(t, st, js, state)
	standInRunner(t, state)

	admin := store.NewSecret("vrsky_admin_")
	logs := &syncBuffer{}
	secretKeys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	mirror, err := tenancy.OpenSecretsKV(ctx, js, secretKeys)
	require.NoError(t, err)
	srv := New(Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Auth: st, Store: st, AdminKeyHash: store.HashSecret(admin), Control: c, State: state, Accounts: dataplane.SharedAccount{JS: js},
		SecretKeys: secretKeys, SecretMirror: mirror,
	})
	return &lifecycleEnv{
		authEnv: &authEnv{h: srv.Handler(), st: st, pool: pool, adminKey: admin, logs: logs},
		control: c, state: state, js: js,
	}
}

// standInRunner reports every desired state as reached, as runners do.
func standInRunner(t *testing.T, state *dataplane.State) {
	answerPuts(t, state.Desired, func(ctx context.Context, entry jetstream.KeyValueEntry) {
		var d dataplane.Desired
		if json.Unmarshal(entry.Value(), &d) != nil {
			return
		}
		status := dataplane.StatusStopped
		if d.Status == dataplane.DesiredRunning {
			status = dataplane.StatusRunning
		}
		b, _ := json.Marshal(dataplane.Status{
			Tenant: d.Tenant, Integration: d.Integration, Version: d.Version, Status: status,
			Runner: "runner-1", UpdatedAt: time.Now(),
		})
		_, _ = state.Status.Put(ctx, entry.Key(), b)
	})
}

// answerPuts calls answer with every value put in kv until the test ends,
// as a stand-in for the runners that watch it.
func answerPuts(t *testing.T, kv jetstream.KeyValue, answer func(context.Context, jetstream.KeyValueEntry)) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(ctx)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var entry jetstream.KeyValueEntry
			select {
			case <-ctx.Done():
				return
			case entry = <-w.Updates():
			}
			if entry != nil && entry.Operation() == jetstream.KeyValuePut {
				answer(ctx, entry)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = w.Stop()
	})
}

func (e *lifecycleEnv) workflowExists(t *testing.T, tenant, integration string) bool {
	t.Helper()
	_, err := e.control.Temporal().DescribeWorkflowExecution(context.Background(), wire.IntegrationWorkflowID(tenant, integration), "")
	return err == nil
}

// awaitStatus waits until the integration's recorded status is want.
func (e *lifecycleEnv) awaitStatus(t *testing.T, key, integration, want string) response {
	t.Helper()
	var res response
	require.Eventually(t, func() bool {
		res = call(t, e.h, http.MethodGet, "/v1/integrations/"+integration+"/status", key, "")
		return res.code == http.StatusOK && res.body["status"] == want
	}, 20*time.Second, 50*time.Millisecond, "status %s", want)
	return res
}

func TestIntegrationLifecycleThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	key, keyID := e.createTenant(t, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, ordersJSON).code)

	start := call(t, e.h, http.MethodPost, "/v1/integrations/orders/start", key, "")
	requireProblem(t, start, http.StatusConflict)
	require.Contains(t, start.body["detail"], "deploy a version first")
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", key, `{"version":2}`), http.StatusUnprocessableEntity)

	deploy := call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", key, `{"reason":"first release"}`)
	require.Equal(t, http.StatusAccepted, deploy.code, deploy.raw)
	require.Equal(t, wire.IntegrationWorkflowID("acme", "orders"), deploy.body["workflow_id"])
	require.Equal(t, "deploy", deploy.body["action"])
	require.EqualValues(t, 1, deploy.body["version"])
	require.NotEmpty(t, deploy.body["update_id"])
	require.True(t, e.workflowExists(t, "acme", "orders"))

	status := e.awaitStatus(t, key, "orders", "running")
	require.EqualValues(t, 0, status.body["dead_letters"], "the status counts dead letters")
	require.EqualValues(t, 1, status.body["version"])
	require.Equal(t, "running", status.body["desired_status"])
	runner := status.body["runner"].(map[string]any)
	require.Equal(t, "runner-1", runner["runner"])
	require.Equal(t, "running", runner["status"])
	require.EqualValues(t, 1, runner["version"])

	// The same Idempotency-Key is the same change.
	stopKey := map[string]string{"Idempotency-Key": "stop-1"}
	stop := callWith(t, e.h, http.MethodPost, "/v1/integrations/orders/stop", key, `{"reason":"maintenance"}`, stopKey)
	require.Equal(t, http.StatusAccepted, stop.code, stop.raw)
	e.awaitStatus(t, key, "orders", "stopped")
	again := callWith(t, e.h, http.MethodPost, "/v1/integrations/orders/stop", key, `{"reason":"maintenance"}`, stopKey)
	require.Equal(t, http.StatusAccepted, again.code, again.raw)
	require.Equal(t, stop.body["update_id"], again.body["update_id"])

	// A new version, deployed by number.
	res := callWith(t, e.h, http.MethodPut, "/v1/integrations/orders", key, strings.Replace(ordersJSON, `"archive"}`, `"archive-2"}`, 1), nil)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	deploy = call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", key, `{"version":2}`)
	require.Equal(t, http.StatusAccepted, deploy.code, deploy.raw)
	require.EqualValues(t, 2, e.awaitStatus(t, key, "orders", "running").body["version"])
	old := call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", key, `{"version":1}`)
	requireProblem(t, old, http.StatusConflict)
	require.Contains(t, old.body["detail"], "older than the deployed version")

	logs := call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs?limit=2", key, "")
	require.Equal(t, http.StatusOK, logs.code, logs.raw)
	items := logs.body["items"].([]any)
	require.Len(t, items, 2)
	require.Equal(t, "deploy", items[0].(map[string]any)["action"], "newest first")
	require.Equal(t, "stop", items[1].(map[string]any)["action"])
	require.Equal(t, "maintenance", items[1].(map[string]any)["reason"])
	require.Equal(t, keyID, items[1].(map[string]any)["actor"], "the actor is the API key")
	next := logs.body["next"].(string)
	require.Contains(t, logs.header.Get("Link"), "/v1/integrations/orders/logs?cursor="+next)
	older := call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs?cursor="+next, key, "")
	require.Equal(t, http.StatusOK, older.code, older.raw)
	first := older.body["items"].([]any)
	require.Len(t, first, 1)
	require.Equal(t, "first release", first[0].(map[string]any)["reason"])
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs?cursor=x", key, ""), http.StatusUnprocessableEntity)

	del := call(t, e.h, http.MethodDelete, "/v1/integrations/orders", key, "")
	require.Equal(t, http.StatusAccepted, del.code, del.raw)
	require.Equal(t, "delete", del.body["action"])
	require.Eventually(t, func() bool {
		return call(t, e.h, http.MethodGet, "/v1/integrations/orders", key, "").code == http.StatusNotFound
	}, 20*time.Second, 50*time.Millisecond)
	logs = call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs", key, "")
	require.Equal(t, http.StatusOK, logs.code, "the log outlives the integration")
	require.Equal(t, "delete", logs.body["items"].([]any)[0].(map[string]any)["action"])
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", key, ""), http.StatusNotFound)
}

func TestTenantsCannotReachEachOthersIntegrations(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	keyA, _ := e.createTenant(t, "tenant-a")
	keyB, _ := e.createTenant(t, "tenant-b")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", keyA, ordersJSON).code)
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", keyA, "").code)
	e.awaitStatus(t, keyA, "orders", "running")
	before := call(t, e.h, http.MethodGet, "/v1/integrations/orders", keyA, "")
	logsBefore := call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs", keyA, "")

	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/integrations/orders", ""},
		{http.MethodPut, "/v1/integrations/orders", ordersJSON},
		{http.MethodDelete, "/v1/integrations/orders", ""},
		{http.MethodPost, "/v1/integrations/orders/deploy", ""},
		{http.MethodPost, "/v1/integrations/orders/start", ""},
		{http.MethodPost, "/v1/integrations/orders/stop", `{"reason":"mine now"}`},
		{http.MethodGet, "/v1/integrations/orders/status", ""},
		{http.MethodGet, "/v1/integrations/orders/logs", ""},
		{http.MethodGet, "/v1/integrations/orders/versions", ""},
	} {
		res := call(t, e.h, r.method, r.path, keyB, r.body)
		requireProblem(t, res, http.StatusNotFound)
		require.Equal(t, "not found", res.body["detail"], "indistinguishable from an unknown integration")
	}
	list := call(t, e.h, http.MethodGet, "/v1/integrations", keyB, "")
	require.Equal(t, []any{}, list.body["items"])

	// Nothing changed for A, and B got no workflow.
	after := call(t, e.h, http.MethodGet, "/v1/integrations/orders", keyA, "")
	require.Equal(t, before.body, after.body)
	require.Equal(t, logsBefore.body, call(t, e.h, http.MethodGet, "/v1/integrations/orders/logs", keyA, "").body)
	require.False(t, e.workflowExists(t, "tenant-b", "orders"))

	// B may have its own "orders": a separate integration with its own lifecycle.
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", keyB, ordersJSON).code)
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations/orders/start", keyB, ""), http.StatusConflict)
	e.awaitStatus(t, keyA, "orders", "running")
}

func TestOpenAPIDocumentsIntegrationOperations(t *testing.T) {
	t.Parallel()
	srv := New(Options{Gatherer: prometheus.NewRegistry(), Store: &store.Store{}})
	res := call(t, srv.Handler(), http.MethodGet, "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, res.code)
	paths := res.body["paths"].(map[string]any)
	for _, tc := range []struct{ path, method, id, scope string }{
		{"/v1/integrations", "post", "create-integration", "write"},
		{"/v1/integrations", "get", "list-integrations", "read"},
		{"/v1/integrations/{integrationId}", "get", "get-integration", "read"},
		{"/v1/integrations/{integrationId}", "put", "update-integration", "write"},
		{"/v1/integrations/{integrationId}", "delete", "delete-integration", "write"},
		{"/v1/integrations/{integrationId}/deploy", "post", "deploy-integration", "write"},
		{"/v1/integrations/{integrationId}/start", "post", "start-integration", "write"},
		{"/v1/integrations/{integrationId}/stop", "post", "stop-integration", "write"},
		{"/v1/integrations/{integrationId}/status", "get", "get-integration-status", "read"},
		{"/v1/integrations/{integrationId}/logs", "get", "list-integration-logs", "read"},
		{"/v1/integrations/{integrationId}/versions", "get", "list-integration-versions", "read"},
	} {
		o := paths[tc.path].(map[string]any)[tc.method].(map[string]any)
		require.Equal(t, tc.id, o["operationId"])
		require.Equal(t, []any{"Integrations"}, o["tags"])
		require.NotEmpty(t, o["description"])
		require.Equal(t, []any{map[string]any{"bearer": []any{tc.scope}}}, o["security"], tc.id)
		require.Contains(t, o["responses"], "401", tc.id)
		require.Contains(t, o["responses"], "403", tc.id)
	}
	for _, path := range []string{"/v1/integrations"} {
		body := paths[path].(map[string]any)["post"].(map[string]any)["requestBody"].(map[string]any)["content"].(map[string]any)
		require.Contains(t, body, "application/json")
		require.Contains(t, body, "application/yaml")
		require.Equal(t, "#/components/schemas/IntegrationSpec", body["application/yaml"].(map[string]any)["schema"].(map[string]any)["$ref"])
	}
	put := paths["/v1/integrations/{integrationId}"].(map[string]any)["put"].(map[string]any)["requestBody"].(map[string]any)["content"].(map[string]any)
	require.Contains(t, put, "application/yaml")
}
