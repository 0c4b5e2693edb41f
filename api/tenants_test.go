package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestAdminCreatesTenantAndGetsAWorkingKey(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)

	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"acme","name":"Acme Corp"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	require.Equal(t, "/v1/tenants/acme", res.header.Get("Location"))
	require.Equal(t, "no-store", res.header.Get("Cache-Control"), "the secret is never cached")
	tn := res.body["tenant"].(map[string]any)
	require.Equal(t, "acme", tn["id"])
	require.Equal(t, "Acme Corp", tn["name"])
	require.Equal(t, "provisioning", tn["status"], "the answer never waits for provisioning")
	active := e.waitForStatus(t, "acme", "active")
	require.Equal(t, float64(1<<30), active.body["limits"].(map[string]any)["disk_bytes"], "the default quota")
	key := res.body["api_key"].(map[string]any)
	secret := key["secret"].(string)
	require.Regexp(t, `^vrsky_[0-9a-f]{64}$`, secret)
	require.Equal(t, secret[:12], key["prefix"])
	require.Equal(t, []any{"read", "write", "dlq"}, key["scopes"])
	require.Equal(t, "acme", key["tenant_id"])

	// The key works, and listings never show a secret or a hash.
	list := call(t, e.h, http.MethodGet, "/v1/api-keys", secret, "")
	require.Equal(t, http.StatusOK, list.code, list.raw)
	require.NotContains(t, list.raw, secret)
	require.NotContains(t, list.raw, secret[12:])
	require.NotContains(t, list.raw, `"secret"`)
	require.NotContains(t, list.raw, `"hash"`)
	items := list.body["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, key["id"], items[0].(map[string]any)["id"])
	require.NotEmpty(t, items[0].(map[string]any)["last_used_at"], "last use is recorded")

	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"acme","name":"Again"}`), http.StatusConflict)
	for _, body := range []string{
		`{"id":"Acme","name":"x"}`, `{"id":"a.b","name":"x"}`, `{"id":"acme2"}`, `{"id":"acme2","name":""}`,
		`{"id":"acme2","name":"x","status":"deleted"}`,
		`{"id":"acme2","name":"x","limits":{"disk_bytes":0,"memory_bytes":0,"streams":1,"consumers":1}}`,
		`{"id":"acme2","name":"x","limits":{"disk_bytes":1048576,"memory_bytes":-1,"streams":1,"consumers":1}}`,
		`{"id":"acme2","name":"x","limits":{"disk_bytes":1048576,"memory_bytes":0,"streams":1,"consumers":1,"dlq_bytes":2097152}}`,
	} {
		requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, body), http.StatusUnprocessableEntity)
	}
	big := `{"id":"acme3","name":"` + strings.Repeat("x", MaxJSONBody) + `"}`
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, big), http.StatusRequestEntityTooLarge)
	_, err := e.st.GetTenant(context.Background(), "acme3")
	require.ErrorIs(t, err, store.ErrNotFound)

	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, "Acme Corp", got.body["name"])
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/tenants/nobody", e.adminKey, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/tenants/NOT_VALID", e.adminKey, ""), http.StatusNotFound)

	// Deleting the tenant revokes its keys at once; the clean-up follows.
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodDelete, "/v1/tenants/acme", e.adminKey, "").code)
	require401(t, call(t, e.h, http.MethodGet, "/v1/api-keys", secret, ""))
	require.Eventually(t, func() bool {
		got = call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
		return got.body["status"] == "deleted"
	}, 15*time.Second, 50*time.Millisecond, "the tenant is never marked deleted")
	require.NotEmpty(t, got.body["deleted_at"])
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodDelete, "/v1/tenants/acme", e.adminKey, "").code, "idempotent")
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/tenants/nobody", e.adminKey, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/tenants/NOT_VALID", e.adminKey, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"acme","name":"Reuse"}`), http.StatusConflict)
}

func TestListTenantsPages(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	empty := call(t, e.h, http.MethodGet, "/v1/tenants", e.adminKey, "")
	require.Equal(t, http.StatusOK, empty.code, empty.raw)
	require.Equal(t, []any{}, empty.body["items"])
	require.NotContains(t, empty.body, "next")

	var want []any
	for i := range 5 {
		id := fmt.Sprintf("t-%02d", i)
		want = append(want, id)
		e.createTenant(t, id)
	}
	var seen []any
	path := "/v1/tenants?limit=2"
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 3)
		res := call(t, e.h, http.MethodGet, path, e.adminKey, "")
		require.Equal(t, http.StatusOK, res.code, res.raw)
		for _, it := range res.body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"])
		}
		next, ok := res.body["next"].(string)
		if !ok {
			require.NotContains(t, strings.Join(res.header.Values("Link"), ","), `rel="next"`)
			break
		}
		link := fmt.Sprintf(`</v1/tenants?cursor=%s&limit=2>; rel="next"`, next)
		require.Contains(t, res.header.Values("Link"), link)
		path = "/v1/tenants?limit=2&cursor=" + next
	}
	require.Equal(t, want, seen)

	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=" + strings.Repeat("a", 101)} {
		requireProblem(t, call(t, e.h, http.MethodGet, "/v1/tenants?"+q, e.adminKey, ""), http.StatusUnprocessableEntity)
	}
}

func TestOpenAPIDocumentsBearerAndOperations(t *testing.T) {
	t.Parallel()
	srv := New(Options{Gatherer: prometheus.NewRegistry(), Store: &store.Store{}})
	res := call(t, srv.Handler(), http.MethodGet, "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, res.code)

	schemes := res.body["components"].(map[string]any)["securitySchemes"].(map[string]any)
	bearer := schemes["bearer"].(map[string]any)
	require.Equal(t, "http", bearer["type"])
	require.Equal(t, "bearer", bearer["scheme"])

	paths := res.body["paths"].(map[string]any)
	op := func(path, method string) map[string]any {
		t.Helper()
		item, ok := paths[path].(map[string]any)
		require.True(t, ok, path)
		o, ok := item[method].(map[string]any)
		require.True(t, ok, method+" "+path)
		return o
	}
	for _, tc := range []struct{ path, method, id, scope string }{
		{"/v1/tenants", "post", "create-tenant", "platform-admin"},
		{"/v1/tenants", "get", "list-tenants", "platform-admin"},
		{"/v1/tenants/{tenantId}", "get", "get-tenant", "platform-admin"},
		{"/v1/tenants/{tenantId}", "delete", "delete-tenant", "platform-admin"},
		{"/v1/tenants/{tenantId}", "patch", "update-tenant", "platform-admin"},
		{"/v1/api-keys", "post", "create-api-key", "write"},
		{"/v1/api-keys", "get", "list-api-keys", "write"},
		{"/v1/api-keys/{keyId}", "delete", "delete-api-key", "write"},
	} {
		o := op(tc.path, tc.method)
		require.Equal(t, tc.id, o["operationId"])
		require.NotEmpty(t, o["tags"])
		require.NotEmpty(t, o["description"])
		require.Contains(t, o["security"], map[string]any{"bearer": []any{tc.scope}}, tc.id)
		require.Contains(t, o["responses"], "401", tc.id)
		require.Contains(t, o["responses"], "403", tc.id)
	}
	require.Contains(t, op("/v1/api-keys", "get")["security"], map[string]any{"bearer": []any{"admin"}})
	require.Equal(t, []any{}, op("/healthz", "get")["security"], "health stays open: no security requirement")

	// Without a store the API is health only.
	plain := New(Options{Gatherer: prometheus.NewRegistry()})
	require.Equal(t, http.StatusNotFound, call(t, plain.Handler(), http.MethodGet, "/v1/tenants", "", "").code)
}

// TestCreateTenantAnswers202WhileProvisioningRuns: with no worker running
// provisioning at all, the answer still comes at once: 202 with the tenant
// provisioning and its key, which does not work yet.
func TestCreateTenantAnswers202WhileProvisioningRuns(t *testing.T) {
	e := newAuthEnvWith(t, func(o *Options) { o.Control = control.New(testenv.TemporalServer(t).GetDefaultClient()) })

	start := time.Now()
	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"slow","name":"Slow"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	require.Less(t, time.Since(start), 5*time.Second, "the request does not wait for the run")
	require.Equal(t, "/v1/tenants/slow", res.header.Get("Location"))
	require.Equal(t, "provisioning", res.body["tenant"].(map[string]any)["status"])
	key := res.body["api_key"].(map[string]any)
	require.Equal(t, "slow", key["tenant_id"])
	require401(t, call(t, e.h, http.MethodGet, "/v1/api-keys", key["secret"].(string), ""))
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"slow","name":"Again"}`), http.StatusConflict)
}

// TestProvisioningFailureShowsFailedWithTheReason: a tenant whose quota the
// NATS server cannot hold is answered 202, then GET shows it failed with
// the server's reason; its key never works; the ID can be created again.
func TestProvisioningFailureShowsFailedWithTheReason(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	huge := `{"id":"huge","name":"Huge","limits":{"disk_bytes":1125899906842624,"memory_bytes":0,"streams":10,` +
		`"consumers":10,"dlq_bytes":1125899906842624,"integrations":1}}`
	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, huge)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	secret := res.body["api_key"].(map[string]any)["secret"].(string)

	failed := e.waitForStatus(t, "huge", "failed")
	require.Contains(t, failed.body["failure_reason"], "insufficient storage resources available")
	require.NotContains(t, failed.body, "usage")
	require401(t, call(t, e.h, http.MethodGet, "/v1/api-keys", secret, ""))

	res = call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"huge","name":"Smaller"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	active := e.waitForStatus(t, "huge", "active")
	require.NotContains(t, active.body, "failure_reason")
	require.Equal(t, "Smaller", active.body["name"])
}

// TestAdminChangesLimitsAndSeesUsage: GET shows the quotas and what the
// tenant uses of them; PATCH changes them and they reach the DLQ stream.
func TestAdminChangesLimitsAndSeesUsage(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Accounts = testAccounts{} })
	e.createTenant(t, "acme")
	js := e.js

	_, err := js.Publish(context.Background(), strings.TrimSuffix(dataplane.DLQSubjects("acme"), ">")+"x", make([]byte, 1000))
	require.NoError(t, err)
	orders := dataplane.Pipeline{Tenant: "acme", Integration: "orders"}
	_, err = dataplane.EnsureStreams(context.Background(), js, orders)
	require.NoError(t, err)
	for _, key := range []string{"a", "b"} {
		_, err = js.Publish(context.Background(), orders.KeySubject(key), []byte("digest"))
		require.NoError(t, err)
	}
	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	usage := got.body["usage"].(map[string]any)
	require.Equal(t, float64(0), usage["integrations"])
	require.Greater(t, usage["stored_bytes"], float64(1000), "the DLQ's bytes count")
	require.Less(t, usage["stored_fraction"], 0.001)
	require.Equal(t, float64(2), usage["remembered_keys"], "the records of two delivery keys")

	patch := `{"limits":{"disk_bytes":2147483648,"memory_bytes":0,"streams":50,"consumers":500,"dlq_bytes":67108864,"integrations":5}}`
	res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, patch)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	limits := res.body["limits"].(map[string]any)
	require.Equal(t, float64(5), limits["integrations"])
	require.Equal(t, float64(2<<30), limits["disk_bytes"])
	require.Eventually(t, func() bool {
		s, err := js.Stream(context.Background(), dataplane.DLQStream("acme"))
		return err == nil && s.CachedInfo().Config.MaxBytes == 64<<20
	}, 20*time.Second, 50*time.Millisecond, "the DLQ is resized")

	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/nobody", e.adminKey, patch), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey,
		`{"limits":{"disk_bytes":1048576,"memory_bytes":0,"streams":1,"consumers":1,"dlq_bytes":2097152,"integrations":1}}`),
		http.StatusUnprocessableEntity)
	tenantKey, _ := e.createTenant(t, "other")
	require.Equal(t, http.StatusForbidden, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", tenantKey, patch).code)
}
