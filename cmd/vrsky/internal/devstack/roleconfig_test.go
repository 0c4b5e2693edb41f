package devstack

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/temporaldev"
)

// TestRunnerAttachesToAStackWithoutOne: a stack started with NoRunner
// accepts a deployment through its API but runs nothing; a runner role
// configured by RoleConfig, as `vrsky runner --dev DIR` is, attaches and
// runs the integration from webhook to file. The same configuration
// connects every other role to every part of the stack.
func TestRunnerAttachesToAStackWithoutOne(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.NoRunner = true
	s := startStack(t, cfg)
	ep := s.Endpoints()
	require.False(t, ep.Runner, "endpoints.json tells there is no runner")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := adminClient(t, ep, dir)
	c, _, err := tenantkey.Ensure(ctx, admin, "solo", filepath.Join(dir, "keys", "solo.key"))
	require.NoError(t, err)

	// Without a runner the deployment is stored and its desired state
	// written, but nobody runs it.
	deployCtx, cancelDeploy := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.Deploy(deployCtx, "orders", []byte(tenantSpec), "test", false)
	cancelDeploy()
	require.ErrorContains(t, err, "is a runner running?")
	r, err := c.GetIntegrationStatusWithResponse(ctx, "orders")
	require.NoError(t, client.Check("get status", r, err, http.StatusOK))
	st := r.JSON200
	require.Nil(t, st.Runner, "no runner reported anything")
	require.NotEqual(t, "running", st.Status)

	rc, err := RoleConfig(dir)
	require.NoError(t, err)
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps, closeAll, err := roles.Connect(ctx, rc, roles.Needs{NATS: true, S3: true}, quiet)
	require.NoError(t, err)
	t.Cleanup(closeAll)
	runner := roles.StartRunner(deps, "attached")
	t.Cleanup(func() { _ = runner.Stop(context.Background()) })

	require.Eventually(t, func() bool {
		r, err = c.GetIntegrationStatusWithResponse(ctx, "orders")
		if err != nil || r.JSON200 == nil {
			return false
		}
		st = r.JSON200
		return st.Runner != nil && st.Runner.Status == "running" && st.Status == "running"
	}, 30*time.Second, 100*time.Millisecond, "status: %+v", st)
	require.Equal(t, "attached", st.Runner.Runner)

	const n = 20
	for range n {
		resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/solo/orders", "application/json", strings.NewReader(`{"via":"attached"}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	require.Eventually(t, func() bool { return len(outLines(dir, "solo")) == n }, 20*time.Second, 50*time.Millisecond)

	// The API and worker roles need all of it.
	all, closeAll2, err := roles.Connect(ctx, rc, roles.Needs{DB: true, NATS: true, Temporal: true, S3: true}, quiet)
	require.NoError(t, err)
	defer closeAll2()
	for _, check := range all.Checks() {
		require.NoError(t, check.Probe(ctx), check.Name)
	}
	require.Len(t, all.Checks(), 4)
	_, err = all.Temporal.ScheduleClient().GetHandle(ctx, wire.BlobJanitorScheduleID).Describe(ctx)
	require.NoError(t, err, "the stack's Temporal namespace, where the janitor is scheduled")
}

func TestRoleConfigMapsTheDataDirectory(t *testing.T) {
	dir := t.TempDir()
	ep := Endpoints{HTTP: "127.0.0.1:1", NATS: "nats://127.0.0.1:2", Temporal: "127.0.0.1:3", S3: "http://127.0.0.1:4", Postgres: "postgres://x@127.0.0.1:5/vrsky"}
	_, err := RoleConfig(dir)
	require.ErrorContains(t, err, "is vrsky dev running?")

	require.NoError(t, writeEndpoints(dir, ep))
	_, err = RoleConfig(dir)
	require.ErrorContains(t, err, "NATS keys of the dev stack")
	require.NoError(t, os.WriteFile(filepath.Join(dir, NATSKeysFile), []byte("{}"), 0o600))

	cfg, err := RoleConfig(dir)
	require.NoError(t, err)
	require.Nil(t, cfg.AdminKeyHash, "no admin key file: no admin key")
	key, err := adminKey(dir)
	require.NoError(t, err)

	cfg, err = RoleConfig(dir)
	require.NoError(t, err)
	require.Equal(t, ep.Postgres, cfg.DatabaseURL)
	require.Equal(t, ep.NATS, cfg.NATSURL)
	require.Equal(t, ep.Temporal, cfg.TemporalAddr)
	require.Equal(t, temporaldev.DefaultNamespace, cfg.TemporalNamespace)
	require.Equal(t, "127.0.0.1:4", cfg.S3.Endpoint)
	require.False(t, cfg.S3.Secure)
	require.Equal(t, Bucket, cfg.S3.Bucket)
	require.Equal(t, s3AccessKey, cfg.S3.AccessKey)
	require.Equal(t, s3SecretKey, cfg.S3.SecretKey)
	require.Equal(t, filepath.Join(dir, "files"), cfg.FileRoot)
	require.Equal(t, filepath.Join(dir, NATSKeysFile), cfg.NATSKeysFile)
	require.Equal(t, store.HashSecret(key), cfg.AdminKeyHash)
	require.Empty(t, cfg.TenantEnvAllow, "tenants read no environment variable of an attached role")
	require.Nil(t, cfg.SecretKeys, "no key ring file: no key")

	// The stack's key ring is the attached roles' too.
	ring, err := secretbox.LoadOrCreateFile(filepath.Join(dir, SecretsKeyFile))
	require.NoError(t, err)
	cfg, err = RoleConfig(dir)
	require.NoError(t, err)
	sealed, err := ring.Seal("acme", "token", []byte("v"))
	require.NoError(t, err)
	plain, err := cfg.SecretKeys.Open("acme", "token", sealed)
	require.NoError(t, err)
	require.Equal(t, "v", string(plain))
	require.NoError(t, os.WriteFile(filepath.Join(dir, SecretsKeyFile), []byte("junk\n"), 0o600))
	_, err = RoleConfig(dir)
	require.ErrorContains(t, err, SecretsKeyFile)
	require.NoError(t, os.Remove(filepath.Join(dir, SecretsKeyFile)))

	require.NoError(t, os.WriteFile(filepath.Join(dir, AdminKeyFile), []byte("nope\n"), 0o600))
	_, err = RoleConfig(dir)
	require.ErrorContains(t, err, "malformed")

	ep.S3 = "127.0.0.1:4"
	require.NoError(t, writeEndpoints(dir, ep))
	_, err = RoleConfig(dir)
	require.ErrorContains(t, err, "not an http://host:port URL")
}
