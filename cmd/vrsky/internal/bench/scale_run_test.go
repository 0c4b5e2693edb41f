package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
)

// testRunnerEnv makes this test binary run as a hot-path runner process.
const testRunnerEnv = "VRSKY_BENCH_TEST_RUNNER"

// runAsRunner is this test binary re-run as `vrsky runner --dev DIR --name
// NAME …`, the way StartNamedRunner starts it: the real runner role
// (cmd/vrsky/internal/roles) attached to the dev stack on DIR, logging its "ready"
// line and draining on SIGTERM.
func runAsRunner(args []string) int {
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	dev := fs.String("dev", "", "")
	name := fs.String("name", "", "")
	fs.String("http-addr", "", "")
	fs.String("log-level", "", "")
	if len(args) == 0 || args[0] != "runner" || fs.Parse(args[1:]) != nil || *dev == "" || *name == "" {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := devstack.RoleConfig(*dev)
	if err != nil {
		log.Error("attach", "error", err)
		return 1
	}
	deps, closeAll, err := roles.Connect(ctx, cfg, roles.Needs{NATS: true, S3: true, Tenancy: true}, log)
	if err != nil {
		log.Error("connect", "error", err)
		return 1
	}
	defer closeAll()
	runner := roles.StartRunner(deps, *name)
	log.Info("ready")
	select {
	case <-ctx.Done():
	case err := <-runner.Failed:
		log.Error("runner failed", "error", err)
		return 1
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runner.Stop(stopCtx); err != nil {
		return 1
	}
	return 0
}

// startDevStack starts a real dev stack in this process — PostgreSQL,
// NATS, Temporal, S3, the API and the control-plane worker, without a
// runner when noRunner is set — and returns its data directory, which
// AttachStack accepts.
func startDevStack(t *testing.T, noRunner bool) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := devstack.Start(ctx, devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", PostgresPort: 0, Version: "test", NoRunner: noRunner,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return dir
}

// TestRunScaleAgainstARealStack runs the scale scenario small against a
// real dev stack and two real runner processes (this test binary re-run
// as runners): two tenants with two integrations each, deployed through the
// API; the load spread over one integration of each tenant, then again
// beside a flooding tenant. Every message sent must be found once in its
// tenant's sink file, and the run must leave no tenant of its own behind.
func TestRunScaleAgainstARealStack(t *testing.T) {
	dir := startDevStack(t, true)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Binary: os.Args[0], Env: []string{testRunnerEnv + "=1"}, Scenario: ScenarioScale,
		Rate: 50, Duration: time.Second, Warmup: 500 * time.Millisecond, Workers: 8, NoBaseline: true, Progress: &progress,
		// Runners that register rewrite their pipeline count every 5 s: the
		// idle window is longer, so the registry is read up to date.
		Scale: ScaleConfig{Tenants: 2, Integrations: 4, Active: 2, Runners: 2, IdleWindow: 6 * time.Second, IdleSettle: time.Second, FloodTenantRate: 50},
	})
	require.NoError(t, err, progress.String())
	t.Log(progress.String())
	s := rep.Scale
	require.NotNil(t, s)
	require.Equal(t, ScenarioScale, rep.Scenario)

	require.Equal(t, 4, s.Deploy.Requested)
	require.Equal(t, 4, s.Deploy.Running, s.Deploy.Errors)
	require.Zero(t, s.Deploy.Failed)
	require.Positive(t, s.Deploy.Seconds)
	require.GreaterOrEqual(t, s.Deploy.Seconds, s.Deploy.SubmitSeconds)
	require.InDelta(t, 4/s.Deploy.Seconds, s.Deploy.PerSecond, 1e-9)
	require.Positive(t, s.TenantsSeconds)

	// Idle: the stack and both runners measured, with none and with all.
	require.Zero(t, s.IdleNone.Integrations)
	require.Equal(t, 4, s.IdleDeployed.Integrations)
	for _, idle := range []IdleCost{s.IdleNone, s.IdleDeployed} {
		require.Len(t, idle.Processes, 3)
		require.Equal(t, "stack", idle.Processes[0].Name)
		require.Equal(t, scaleRunnerPrefix+"1", idle.Processes[1].Name)
		require.Equal(t, scaleRunnerPrefix+"2", idle.Processes[2].Name)
		require.Positive(t, idle.RSSMB)
		require.GreaterOrEqual(t, idle.WindowS, 6.0)
		require.NotNil(t, idle.PostgresCPUPercent, "the stack's private PostgreSQL is measured")
	}
	require.NotNil(t, s.PerIntegrationRSSKB)

	// Which runner runs what: the status API names one of the bench's
	// runners for each integration; the registry, where runners register,
	// counts each runner's pipelines.
	total := 0
	for name, n := range s.StatusRunners {
		require.True(t, strings.HasPrefix(name, scaleRunnerPrefix), name)
		total += n
	}
	require.Equal(t, 4, total)
	t.Logf("runner registry: %+v; status API: %v", s.RunnerRegistry, s.StatusRunners)
	if s.RunnerRegistry.Available {
		require.Empty(t, s.RunnerRegistry.Problems)
		require.Equal(t, 4, s.RunnerRegistry.Pipelines, "the runners share the integrations: %+v", s.RunnerRegistry.Runners)
	}

	// Load: everything sent arrived once, in every phase: spread over one
	// integration of each tenant, on the first of them alone, and spread
	// again beside the flood.
	require.Len(t, s.Phases, 3)
	require.Equal(t, []string{phaseQuiet, phaseOne, phaseFlood}, []string{s.Phases[0].Name, s.Phases[1].Name, s.Phases[2].Name})
	for _, p := range s.Phases {
		require.Equal(t, int64(50), p.Sent, p.Name, "50 msgs/s for 1 s")
		require.Zero(t, p.Errors, p.Name)
		require.Equal(t, p.Sent, p.Delivered, p.Name)
		require.Zero(t, p.Lost, p.Name)
		require.Zero(t, p.Duplicates, p.Name)
		require.Zero(t, p.Unknown+p.Malformed+p.Unexpected, p.Name)
		if p.Name == phaseOne {
			require.Len(t, p.Integrations, 1)
			require.Equal(t, s.Phases[0].Integrations[0].Integration, p.Integrations[0].Integration)
			require.Equal(t, int64(50), p.Integrations[0].Delivered)
		} else {
			require.Len(t, p.Integrations, 2)
			require.NotEqual(t, p.Integrations[0].Tenant, p.Integrations[1].Tenant, "the load is spread over the tenants")
			for _, c := range p.Integrations {
				require.Equal(t, int64(25), c.Sent)
				require.Equal(t, int64(25), c.Delivered)
			}
		}
		require.Positive(t, p.P99)
		require.GreaterOrEqual(t, p.P99, p.P50)
		require.Positive(t, p.SustainedRate)
		require.Len(t, p.Processes, 3)
	}
	require.Nil(t, s.Phases[0].Flood)
	require.Nil(t, s.Phases[1].Flood)
	flood := s.Phases[2].Flood
	require.NotNil(t, flood)
	require.Equal(t, int64(50), flood.Sent)
	require.Equal(t, int64(50), flood.Delivered)
	require.Equal(t, s.Phases[0].P99, *s.QuietP99WithoutFloodMs)
	require.Equal(t, s.Phases[2].P99, *s.QuietP99WithFloodMs)
	require.Equal(t, s.Phases[0].P99, *s.SpreadP99Ms)
	require.Equal(t, s.Phases[1].P99, *s.OneIntegrationP99Ms)
	require.InDelta(t, s.Phases[0].P99/s.Phases[1].P99, *s.SpreadToOneP99, 1e-9)

	// The report's own figures are the quiet phase's.
	require.Equal(t, s.Phases[0].Delivered, rep.Delivered)
	require.Equal(t, s.Phases[0].P99, rep.P99)
	require.NotNil(t, rep.RunnerCPUSeconds)
	require.Positive(t, rep.PeakRSSMB)
	var summary bytes.Buffer
	require.NoError(t, rep.WriteSummary(&summary))
	require.Contains(t, summary.String(), "4 of 4 running")
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	require.Contains(t, string(b), `"idle_with_integrations"`)

	// The run removed its tenants (attached stack) and their files.
	key, err := os.ReadFile(filepath.Join(dir, devstack.AdminKeyFile))
	require.NoError(t, err)
	admin, err := client.New("http://"+mustEndpoints(t, dir).HTTP, string(key))
	require.NoError(t, err)
	for _, tenant := range []string{s.Phases[0].Integrations[0].Tenant, flood.Tenant} {
		got, err := admin.GetTenantWithResponse(context.Background(), tenant)
		require.NoError(t, client.Check("get tenant", got, err, http.StatusOK))
		require.Equal(t, client.TenantStatusDeleted, got.JSON200.Status, tenant)
		require.NoDirExists(t, filepath.Join(dir, "files", tenant))
	}
}

func mustEndpoints(t *testing.T, dir string) devstack.Endpoints {
	t.Helper()
	ep, err := devstack.ReadEndpoints(dir)
	require.NoError(t, err)
	return ep
}
