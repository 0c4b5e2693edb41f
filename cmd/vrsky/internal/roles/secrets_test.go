package roles

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/httpout"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/secretbox"
	specpkg "github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestFromEnvReadsTenancySettings(t *testing.T) {
	t.Setenv("VRSKY_TENANT_ENV_ALLOW", "SHOP_*, PARTNER_KEY")
	t.Setenv("VRSKY_SECRETS_KEY", "7:"+secretbox.GenerateKey())
	cfg, err := FromEnv()
	require.NoError(t, err)
	require.Equal(t, []string{"SHOP_*", "PARTNER_KEY"}, cfg.TenantEnvAllow)
	require.Equal(t, "7", cfg.SecretKeys.CurrentID())

	t.Setenv("VRSKY_SECRETS_KEY", "short")
	_, err = FromEnv()
	require.ErrorContains(t, err, "VRSKY_SECRETS_KEY")
	t.Setenv("VRSKY_SECRETS_KEY", "")
	t.Setenv("VRSKY_TENANT_ENV_ALLOW", "[")
	_, err = FromEnv()
	require.ErrorContains(t, err, "VRSKY_TENANT_ENV_ALLOW")
}

// A role without the key ring starts while no tenant has a secret, and
// refuses to once one has.
func TestWireTenancyRefusesSecretsWithoutAKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	d := Deps{JS: js}
	require.NoError(t, WireTenancy(ctx, &d, nil, nil))
	require.NotNil(t, d.Tenancy)
	require.False(t, d.TenantEnvAllowed("VRSKY_DATABASE_URL"))

	keys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	withKey := Deps{JS: js}
	require.NoError(t, WireTenancy(ctx, &withKey, []string{"SHOP_*"}, keys))
	sealed, err := keys.Seal("acme", "token", []byte("v"))
	require.NoError(t, err)
	require.NoError(t, withKey.Secrets.Put(ctx, "acme", "token", sealed))
	require.True(t, withKey.TenantEnvAllowed("SHOP_URL"))

	require.ErrorIs(t, WireTenancy(ctx, &Deps{JS: js}, nil, nil), ErrSecretsWithoutKey)
}

// receiver is an HTTP target that records the Authorization header of each
// request and refuses (400) the ones whose body asks for it.
type receiver struct {
	mu    sync.Mutex
	auths []string
	srv   *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		r.mu.Unlock()
		if strings.Contains(string(body), "refuse") {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

type apiClient struct {
	t    *testing.T
	base string
}

func (c apiClient) do(method, path, key, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// A tenant secret works end to end: written with PUT /v1/secrets, referred
// to as {"secret": "token"} in an HTTP producer's secretHeaders, resolved
// by the runner for that tenant, and sent to the target; the spec, its
// versions and the DLQ never hold the value.
func TestTenantSecretReachesTheTargetAndNothingElse(t *testing.T) {
	ctx := context.Background()
	_, s3 := testenv.S3(t)
	temporal := testenv.TemporalServer(t)
	keysFile := filepath.Join(t.TempDir(), "nats-keys.json")
	natsKeys, err := natsauth.LoadOrCreateKeys(keysFile)
	require.NoError(t, err)
	secretKeys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	cfg := Config{
		DatabaseURL: testenv.PostgresMigrated(t), NATSURL: testenv.NATSTrusting(t, natsKeys), NATSKeysFile: keysFile,
		TemporalAddr: temporal.GetFrontendHostPort(), TemporalNamespace: temporal.GetDefaultNamespace(),
		S3: s3, FileRoot: t.TempDir(), SecretKeys: secretKeys,
	}
	admin := "vrsky_admin_" + strings.Repeat("ab", 32)
	cfg.AdminKeyHash = store.HashSecret(admin)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps, closeAll, err := Connect(ctx, cfg, Needs{DB: true, NATS: true, Temporal: true, S3: true, Tenancy: true}, log)
	require.NoError(t, err)
	defer closeAll()
	// The receiver is on loopback: this tenant's egress policy allows
	// private addresses, as an admin would set it.
	deps.Tenancy = &tenancy.Platform{Secrets: deps.Secrets.Resolver,
		Egress: func(context.Context, string) (sdk.EgressPolicy, error) {
			return sdk.EgressPolicy{AllowPrivate: true}, nil
		}}

	w, err := StartWorker(ctx, deps)
	require.NoError(t, err)
	runner := StartRunner(deps, "test")
	srv, ingress, err := NewAPI(ctx, deps, "test", 0)
	require.NoError(t, err)
	addr, httpRole, err := Serve(ctx, "127.0.0.1:0", srv.Handler())
	require.NoError(t, err)
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for _, r := range []*Role{httpRole, ingress, runner, w} {
			_ = r.Stop(stopCtx)
		}
	}()
	c := apiClient{t: t, base: "http://" + addr}

	code, raw := c.do(http.MethodPost, "/v1/tenants", admin, `{"id":"shop","name":"Shop"}`)
	require.Equal(t, http.StatusAccepted, code, raw)
	require.Eventually(t, func() bool { // provisioning runs on the worker
		code, raw := c.do(http.MethodGet, "/v1/tenants/shop", admin, "")
		return code == http.StatusOK && strings.Contains(raw, `"status":"active"`)
	}, 30*time.Second, 50*time.Millisecond)
	var created struct {
		APIKey struct {
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &created))
	key := created.APIKey.Secret

	const token = "Bearer e2e-9f8e7d6c5b4a"
	code, raw = c.do(http.MethodPut, "/v1/secrets/token", key, `{"value":"`+token+`"}`)
	require.Equal(t, http.StatusCreated, code, raw)

	target := newReceiver(t)
	producer := map[string]any{
		"url":           target.srv.URL + "/orders",
		"secretHeaders": map[string]any{"Authorization": map[string]string{"secret": "token"}},
	}
	// Until producers follow the tenant's egress policy alone, their config
	// still has to allow loopback itself.
	if f, ok := reflect.TypeFor[httpout.Config]().FieldByName("AllowPrivate"); ok && f.Type.Kind() == reflect.Bool {
		producer["allowPrivate"] = true
	}
	spec, err := json.Marshal(map[string]any{
		"name": "orders", "consumer": map[string]any{"connector": "http-webhook"},
		"producers": map[string]any{"erp": map[string]any{"connector": "http", "config": producer}},
	})
	require.NoError(t, err)
	code, raw = c.do(http.MethodPost, "/v1/integrations", key, string(spec))
	require.Equal(t, http.StatusCreated, code, raw)
	code, raw = c.do(http.MethodPost, "/v1/integrations/orders/deploy", key, "")
	require.Equal(t, http.StatusAccepted, code, raw)
	require.Eventually(t, func() bool {
		_, raw := c.do(http.MethodGet, "/v1/integrations/orders/status", key, "")
		return strings.Contains(raw, `"status":"running"`)
	}, 30*time.Second, 100*time.Millisecond)

	for _, body := range []string{`{"id":1}`, `{"id":2,"refuse":true}`} {
		code, raw = c.do(http.MethodPost, "/v1/hooks/shop/orders", "", body)
		require.Equal(t, http.StatusAccepted, code, raw)
	}
	require.Eventually(t, func() bool {
		_, raw := c.do(http.MethodGet, "/v1/dlq", key, "")
		return strings.Contains(raw, `"integration":"orders"`)
	}, 30*time.Second, 100*time.Millisecond, "the refused message is dead-lettered")
	require.NotEmpty(t, target.received())
	for _, got := range target.received() {
		require.Equal(t, token, got, "the target gets the secret's value")
	}

	// Nothing the tenant or an admin can read holds the value.
	for _, path := range []string{"/v1/integrations/orders", "/v1/integrations/orders/versions", "/v1/integrations", "/v1/dlq", "/v1/secrets"} {
		code, raw := c.do(http.MethodGet, path, key, "")
		require.Equal(t, http.StatusOK, code, path)
		require.NotContains(t, raw, "e2e-9f8e7d6c5b4a", path)
	}
	// Attack: a spec with {env: VRSKY_DATABASE_URL} that skipped the API
	// (written straight into the desired state) still resolves nothing on
	// the runner: the pipeline does not start and says why.
	t.Setenv("VRSKY_DATABASE_URL", "postgres://vrsky:platform-password@db/vrsky")
	leak := map[string]any{"url": producer["url"], "secretHeaders": map[string]any{"X-Loot": map[string]string{"env": "VRSKY_DATABASE_URL"}}}
	if v, ok := producer["allowPrivate"]; ok {
		leak["allowPrivate"] = v
	}
	rawSpec, err := json.Marshal(map[string]any{
		"name": "exfil", "consumer": map[string]any{"connector": "http-webhook"},
		"producers": map[string]any{"leak": map[string]any{"connector": "http", "config": leak}},
	})
	require.NoError(t, err)
	exfil, err := specpkg.ParseJSON(rawSpec)
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, deps.JS)
	require.NoError(t, err)
	d := dataplane.Desired{Tenant: "shop", Integration: "exfil", Version: 1, Status: dataplane.DesiredRunning, Spec: exfil}
	require.NoError(t, state.PutDesired(ctx, d))
	var st dataplane.Status
	require.Eventually(t, func() bool {
		st, _, _ = state.GetStatus(ctx, d.Pipeline())
		return st.LastError != ""
	}, 30*time.Second, 50*time.Millisecond)
	require.NotEqual(t, dataplane.StatusRunning, st.Status)
	require.Contains(t, st.LastError, "env:VRSKY_DATABASE_URL")
	require.Contains(t, st.LastError, "not allowed for tenants")
	require.NotContains(t, st.LastError, "platform-password")
	before := len(target.received())
	_, _ = c.do(http.MethodPost, "/v1/hooks/shop/exfil", "", `{"id":3}`)
	time.Sleep(500 * time.Millisecond)
	require.Len(t, target.received(), before, "nothing is sent by a pipeline that cannot start")

	// Another tenant referring to "token" resolves nothing of shop's.
	env := sdk.Env{Tenant: "other"}
	require.NoError(t, deps.Tenancy.Complete(ctx, &env))
	_, err = sdk.Secret{Secret: "token"}.Resolve(ctx, env)
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)
}
