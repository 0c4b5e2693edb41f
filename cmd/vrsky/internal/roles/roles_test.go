package roles

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestKeyLimitMetricIsExposedOnce: the gauge reads the api's count, and a
// second api on the same registry does not fail.
func TestKeyLimitMetricIsExposedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerKeyLimitMetric(reg, &dataplane.Idempotency{})
	registerKeyLimitMetric(reg, &dataplane.Idempotency{})
	registerKeyLimitMetric(nil, &dataplane.Idempotency{})
	n, err := testutil.GatherAndCount(reg, "vrsky_webhook_tenants_at_key_limit")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vrsky_webhook_tenants_at_key_limit Tenants at or past their limit of remembered delivery keys at this api process's last count: their new keys are remembered for 2 minutes, not a day (docs/adr/0035).
# TYPE vrsky_webhook_tenants_at_key_limit gauge
vrsky_webhook_tenants_at_key_limit 0
`), "vrsky_webhook_tenants_at_key_limit"))
}

// TestTenantKeysLimit: 0 is the default limit of remembered keys per
// tenant, a negative value none, anything else itself.
func TestTenantKeysLimit(t *testing.T) {
	require.EqualValues(t, dataplane.DefaultTenantKeys, tenantKeys(0))
	require.EqualValues(t, 0, tenantKeys(-1))
	require.EqualValues(t, 5000, tenantKeys(5000))
}

func TestFromEnv(t *testing.T) {
	t.Setenv("VRSKY_NATS_URL", "nats://x:4222")
	t.Setenv("VRSKY_S3_SECURE", "true")
	t.Setenv("VRSKY_S3_BUCKET", "")
	cfg, err := FromEnv()
	require.NoError(t, err)
	require.Equal(t, "nats://x:4222", cfg.NATSURL)
	require.True(t, cfg.S3.Secure)
	require.Equal(t, "vrsky", cfg.S3.Bucket)
	require.Equal(t, "default", cfg.TemporalNamespace)

	t.Setenv("VRSKY_ADMIN_KEY_SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	cfg, err = FromEnv()
	require.NoError(t, err)
	require.Len(t, cfg.AdminKeyHash, 32)
	t.Setenv("VRSKY_ADMIN_KEY_SHA256", "not-hex")
	_, err = FromEnv()
	require.ErrorContains(t, err, "VRSKY_ADMIN_KEY_SHA256")
	t.Setenv("VRSKY_ADMIN_KEY_SHA256", "")

	t.Setenv("VRSKY_S3_SECURE", "maybe")
	_, err = FromEnv()
	require.ErrorContains(t, err, "VRSKY_S3_SECURE")
}

func TestConnectNamesWhatIsMissing(t *testing.T) {
	_, closeAll, err := Connect(context.Background(), Config{}, Needs{DB: true, NATS: true, Temporal: true, S3: true}, nil)
	require.ErrorContains(t, err, "VRSKY_DATABASE_URL, VRSKY_NATS_URL, VRSKY_TEMPORAL_ADDR, VRSKY_S3_ENDPOINT")
	closeAll()
}

// TestAllRolesOnRealInfrastructure connects every role's dependencies,
// starts the three roles and checks readiness and a clean stop.
func TestAllRolesOnRealInfrastructure(t *testing.T) {
	ctx := context.Background()
	_, s3 := testenv.S3(t)
	temporal := testenv.TemporalServer(t)
	keysFile := filepath.Join(t.TempDir(), "nats-keys.json")
	keys, err := natsauth.LoadOrCreateKeys(keysFile)
	require.NoError(t, err)
	cfg := Config{
		DatabaseURL: testenv.PostgresMigrated(t), NATSURL: testenv.NATSTrusting(t, keys), NATSKeysFile: keysFile,
		TemporalAddr: temporal.GetFrontendHostPort(), TemporalNamespace: temporal.GetDefaultNamespace(),
		S3: s3, FileRoot: t.TempDir(),
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps, closeAll, err := Connect(ctx, cfg, Needs{DB: true, NATS: true, Temporal: true, S3: true}, log)
	require.NoError(t, err)
	defer closeAll()
	require.Len(t, deps.Checks(), 4)
	require.NotNil(t, deps.NATSAdmin, "operator mode: tenant accounts are managed")

	// A keys file the server does not trust, or none at all, is refused.
	bad := cfg
	bad.NATSKeysFile = filepath.Join(t.TempDir(), "missing.json")
	_, closeBad, err := Connect(ctx, bad, Needs{NATS: true}, log)
	require.ErrorContains(t, err, "VRSKY_NATS_KEYS_FILE")
	closeBad()
	bad.NATSKeysFile = ""
	_, closeBad, err = Connect(ctx, bad, Needs{NATS: true}, log)
	require.Error(t, err, "anonymous connections are refused in operator mode")
	closeBad()

	w, err := StartWorker(ctx, deps)
	require.NoError(t, err)
	runner := StartRunner(deps, "test")
	srv, ingress, err := NewAPI(ctx, deps, "test", 0)
	require.NoError(t, err)
	addr, httpRole, err := Serve(ctx, "127.0.0.1:0", srv.Handler())
	require.NoError(t, err)

	resp, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, _, err = Serve(ctx, addr, srv.Handler())
	require.ErrorContains(t, err, "listen for HTTP")

	health := HealthHandler(Deps{Registry: deps.Registry})
	require.NotNil(t, health)

	// Production's api role: /metrics only on the admin listener.
	public := deps
	public.AdminElsewhere = true
	pubSrv, pubIngress, err := NewAPI(ctx, public, "test", 0)
	require.NoError(t, err)
	defer pubIngress.Stop(ctx)
	resp, err = http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "vrsky dev: one port")
	rec := httptest.NewRecorder()
	pubSrv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, rec.Code, "not on the public listener")
	rec = httptest.NewRecorder()
	HealthHandler(deps).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, "on the admin listener")

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, r := range []*Role{httpRole, ingress, runner, w} {
		require.NoError(t, r.Stop(stopCtx))
	}
	_, open := <-runner.Failed
	require.False(t, open, "a stopped runner closes its failure channel")
}

func TestQuietLoggerDropsInfo(t *testing.T) {
	var buf syncBuffer
	log := QuietLogger(slog.New(slog.NewJSONHandler(&buf, nil)), "x")
	log.Info("chatter")
	log.Warn("matters")
	require.NotContains(t, buf.String(), "chatter")
	require.Contains(t, buf.String(), "matters")
	require.NotNil(t, QuietLogger(nil, "y"))
}

type syncBuffer struct{ b []byte }

func (s *syncBuffer) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *syncBuffer) String() string              { return string(s.b) }

// TestEveryListenerBoundsSlowClients: no listener lets a client hold a
// connection without sending (headers, body) or between requests.
func TestEveryListenerBoundsSlowClients(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler())
	require.Equal(t, ReadHeaderTimeout, srv.ReadHeaderTimeout)
	require.Equal(t, ReadTimeout, srv.ReadTimeout)
	require.Equal(t, IdleTimeout, srv.IdleTimeout)
	require.Equal(t, MaxHeaderBytes, srv.MaxHeaderBytes)
	for _, d := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout} {
		require.Positive(t, d)
		require.LessOrEqual(t, d, 2*time.Minute)
	}
	require.GreaterOrEqual(t, srv.ReadTimeout, api.DefaultBodyTimeout, "the ingress's own body deadline fits in it")
}
