package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type authEnv struct {
	// noControl: tenants are created in the store, not through the API.
	noControl bool
	h         http.Handler
	st        *store.Store
	pool      *pgxpool.Pool
	adminKey  string
	logs      *syncBuffer
	// js is the JetStream the control plane puts tenants' streams in.
	js jetstream.JetStream
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	return newAuthEnvWith(t, nil)
}

// newAuthEnvWith is newAuthEnv with set changing the API's options.
// testAccounts, set as Options.Accounts, is replaced by the test's own
// shared account.
type testAccounts struct{ dataplane.Accounts }

func newAuthEnvWith(t *testing.T, set func(*Options)) *authEnv {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	admin := store.NewSecret("vrsky_admin_")
	logs := &syncBuffer{}
	_, js := testenv.JetStream(t)
	opts := Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Auth: st, Store: st, AdminKeyHash: store.HashSecret(admin), Control: startControlPlane(t, st, js, nil),
	}
	if set != nil {
		set(&opts)
	}
	if _, ok := opts.Accounts.(testAccounts); ok {
		opts.Accounts = dataplane.SharedAccount{JS: js}
	}
	srv := New(opts)
	return &authEnv{h: srv.Handler(), st: st, pool: pool, adminKey: admin, logs: logs, js: js}
}

type response struct {
	code   int
	header http.Header
	raw    string
	body   map[string]any
}

func call(t *testing.T, h http.Handler, method, path, key, body string) response {
	t.Helper()
	return callWith(t, h, method, path, key, body, nil)
}

// createTenant creates a tenant with the admin key and returns its first
// key's secret and ID.
func (e *authEnv) createTenant(t *testing.T, id string) (secret, keyID string) {
	t.Helper()
	if e.noControl {
		return activeTenant(t, e.st, id)
	}
	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"`+id+`","name":"Tenant `+id+`"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	e.waitForStore(t, id, store.TenantActive)
	key := res.body["api_key"].(map[string]any)
	return key["secret"].(string), key["id"].(string)
}

// waitForStore waits until the tenant is in status, watching the store
// (so that tests of rate limits keep their budget).
func (e *authEnv) waitForStore(t *testing.T, id, status string) {
	t.Helper()
	require.Eventually(t, func() bool {
		tn, err := e.st.GetTenant(context.Background(), id)
		return err == nil && tn.Status == status
	}, 20*time.Second, 20*time.Millisecond, "tenant %s never %s", id, status)
}

// waitForStatus waits until the tenant is in status and returns its GET.
func (e *authEnv) waitForStatus(t *testing.T, id, status string) response {
	t.Helper()
	e.waitForStore(t, id, status)
	got := call(t, e.h, http.MethodGet, "/v1/tenants/"+id, e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, status, got.body["status"], got.raw)
	return got
}

// createKey creates a key with the given scopes for the tenant of key.
func (e *authEnv) createKey(t *testing.T, key, scopes string) (secret, keyID string) {
	t.Helper()
	res := call(t, e.h, http.MethodPost, "/v1/api-keys", key, `{"scopes":`+scopes+`}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	return res.body["secret"].(string), res.body["id"].(string)
}

func requireProblem(t *testing.T, res response, code int) {
	t.Helper()
	require.Equal(t, code, res.code, res.raw)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	require.EqualValues(t, code, res.body["status"])
}

func require401(t *testing.T, res response) {
	t.Helper()
	requireProblem(t, res, http.StatusUnauthorized)
	require.Equal(t, `Bearer realm="vrsky"`, res.header.Get("WWW-Authenticate"))
	require.Equal(t, "missing, invalid or revoked API key", res.body["detail"], "never says which")
}

func TestMissingGarbageAndRevokedKeysGet401(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	secret, keyID := e.createTenant(t, "acme")
	other, _ := e.createKey(t, secret, `["read","write","dlq"]`)

	for name, header := range map[string]string{
		"missing":        "",
		"basic":          "Basic dXNlcjpwYXNz",
		"empty bearer":   "Bearer ",
		"two tokens":     "Bearer " + secret + " " + secret,
		"garbage":        "Bearer garbage",
		"unknown":        "Bearer " + store.NewSecret(store.KeyPrefix),
		"unknown admin":  "Bearer " + store.NewSecret("vrsky_admin_"),
		"secret changed": "Bearer " + secret[:len(secret)-1] + "x",
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/api-keys", "/v1/tenants"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if header != "" {
					req.Header.Set("Authorization", header)
				}
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				var body map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				require401(t, response{code: rec.Code, header: rec.Result().Header, body: body, raw: rec.Body.String()})
			}
		})
	}

	// Revocation is effective for the very next request.
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", secret, "").code)
	require.Equal(t, http.StatusNoContent, call(t, e.h, http.MethodDelete, "/v1/api-keys/"+keyID, other, "").code)
	require401(t, call(t, e.h, http.MethodGet, "/v1/api-keys", secret, ""))
	require401(t, call(t, e.h, http.MethodPost, "/v1/api-keys", secret, `{"scopes":["read"]}`))

	// Keys never reach the logs.
	logs := e.logs.String()
	require.NotContains(t, logs, secret)
	require.NotContains(t, logs, other)
	require.NotContains(t, logs, e.adminKey)
}

func TestScopesAreEnforced(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	first, _ := e.createTenant(t, "acme")
	reader, _ := e.createKey(t, first, `["read"]`)
	dlq, _ := e.createKey(t, first, `["dlq","read"]`)

	for _, key := range []string{reader, dlq} {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/api-keys", ""},
			{http.MethodPost, "/v1/api-keys", `{"scopes":["read"]}`},
			{http.MethodDelete, "/v1/api-keys/key-whatever", ""},
		} {
			res := call(t, e.h, r.method, r.path, key, r.body)
			requireProblem(t, res, http.StatusForbidden)
			require.Contains(t, res.header.Get("WWW-Authenticate"), `error="insufficient_scope"`)
		}
	}

	// A key grants only scopes it holds; admin grants any.
	res := call(t, e.h, http.MethodPost, "/v1/api-keys", first, `{"scopes":["read","admin"]}`)
	requireProblem(t, res, http.StatusForbidden)
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE 'admin' = ANY(scopes)`).Scan(&n))
	require.Zero(t, n)

	var tenantAdmin string
	require.NoError(t, func() error {
		_, s, err := e.st.CreateAPIKey(context.Background(), "acme", []store.Scope{store.ScopeAdmin})
		tenantAdmin = s
		return err
	}())
	res = call(t, e.h, http.MethodPost, "/v1/api-keys", tenantAdmin, `{"scopes":["admin","read","read"]}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	require.Equal(t, []any{"read", "admin"}, res.body["scopes"])
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))

	for _, body := range []string{`{"scopes":null}`, `{"scopes":[]}`, `{"scopes":["root"]}`, `{}`, `{"scopes":"read"}`, `not json`} {
		res := call(t, e.h, http.MethodPost, "/v1/api-keys", tenantAdmin, body)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, res.code, body+" "+res.raw)
	}
}

func TestTenantKeysCannotManageTenantsAndAdminHasNoTenant(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	first, _ := e.createTenant(t, "acme")
	tenantAdmin, _ := e.createKey(t, first, `["read","write","dlq"]`)

	for _, key := range []string{first, tenantAdmin} {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/tenants", `{"id":"evil","name":"Evil"}`},
			{http.MethodGet, "/v1/tenants", ""},
			{http.MethodGet, "/v1/tenants/acme", ""},
			{http.MethodDelete, "/v1/tenants/acme", ""},
		} {
			requireProblem(t, call(t, e.h, r.method, r.path, key, r.body), http.StatusForbidden)
		}
	}
	_, err := e.st.GetTenant(context.Background(), "evil")
	require.ErrorIs(t, err, store.ErrNotFound)
	tn, err := e.st.GetTenant(context.Background(), "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantActive, tn.Status)

	// The platform admin key belongs to no tenant.
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/api-keys", e.adminKey, ""), http.StatusForbidden)
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/api-keys", e.adminKey, `{"scopes":["read"]}`), http.StatusForbidden)
}

// TestTwoTenantIsolation: tenant A's key with tenant B's IDs gets 404 and
// changes nothing; a tenant in the body is never honoured.
func TestTwoTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	keyA, idA := e.createTenant(t, "tenant-a")
	keyB, idB := e.createTenant(t, "tenant-b")

	res := call(t, e.h, http.MethodDelete, "/v1/api-keys/"+idB, keyA, "")
	requireProblem(t, res, http.StatusNotFound)
	unknown := call(t, e.h, http.MethodDelete, "/v1/api-keys/key-0123456789abcdef01234567", keyA, "")
	requireProblem(t, unknown, http.StatusNotFound)
	require.Equal(t, unknown.body["detail"], res.body["detail"], "another tenant's key looks like no key at all")
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", keyB, "").code, "B's key still works")

	listA := call(t, e.h, http.MethodGet, "/v1/api-keys", keyA, "")
	require.Equal(t, http.StatusOK, listA.code)
	items := listA.body["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, idA, items[0].(map[string]any)["id"])
	require.NotContains(t, listA.raw, "tenant-b")

	// Mass assignment: a tenant in the body is rejected, never honoured.
	for _, body := range []string{
		`{"scopes":["read"],"tenant_id":"tenant-b"}`,
		`{"scopes":["read"],"tenantId":"tenant-b"}`,
		`{"scopes":["read"],"tenant":"tenant-b","admin":true}`,
	} {
		res := call(t, e.h, http.MethodPost, "/v1/api-keys", keyA, body)
		requireProblem(t, res, http.StatusUnprocessableEntity)
	}
	keysB, err := e.st.ListAPIKeys(context.Background(), "tenant-b")
	require.NoError(t, err)
	require.Len(t, keysB, 1)
	require.Equal(t, idB, keysB[0].ID)
	require.Nil(t, keysB[0].RevokedAt)

	// Keys A creates are A's.
	newKey, _ := e.createKey(t, keyA, `["read"]`)
	p, err := e.st.Authenticate(context.Background(), newKey)
	require.NoError(t, err)
	require.Equal(t, "tenant-a", p.TenantID)
}

func TestAuthenticatorFailureIs503AndLogsNoKey(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	srv := New(Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Auth: failingAuth{}, Store: &store.Store{},
	})
	key := store.NewSecret(store.KeyPrefix)
	res := call(t, srv.Handler(), http.MethodGet, "/v1/api-keys", key, "")
	requireProblem(t, res, http.StatusServiceUnavailable)
	require.Equal(t, "2", res.header.Get("Retry-After"))
	require.Contains(t, logs.String(), "database is down")
	require.NotContains(t, logs.String(), key)
}

type failingAuth struct{}

func (failingAuth) Authenticate(context.Context, string) (store.Principal, error) {
	return store.Principal{}, errors.New("database is down")
}

func TestNoAuthenticatorMeansNoKeyWorks(t *testing.T) {
	t.Parallel()
	srv := New(Options{Gatherer: prometheus.NewRegistry(), Store: &store.Store{}})
	require401(t, call(t, srv.Handler(), http.MethodGet, "/v1/tenants", store.NewSecret("vrsky_admin_"), ""))
	require401(t, call(t, srv.Handler(), http.MethodGet, "/v1/api-keys", store.NewSecret(store.KeyPrefix), ""))
	_, ok := PrincipalFrom(context.Background())
	require.False(t, ok)
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"Basic abc", "", false},
		{"", "", false},
	} {
		got, ok := bearerToken(tc.header)
		require.Equal(t, tc.ok, ok, tc.header)
		require.Equal(t, tc.want, got, tc.header)
	}
}
