package roles

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	RegisterBuildInfo(reg, "v1.2.3", "worker")
	want := `
# HELP vrsky_build_info Always 1; its labels are the running binary's version, Go version and role.
# TYPE vrsky_build_info gauge
vrsky_build_info{goversion="` + runtime.Version() + `",role="worker",version="v1.2.3"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "vrsky_build_info"))
}

func TestIntegrationLatencyFromEnv(t *testing.T) {
	for value, want := range map[string]bool{"": false, "true": true, "1": true, "false": false} {
		t.Setenv(IntegrationLatencyVar, value)
		got, err := IntegrationLatencyFromEnv()
		require.NoError(t, err)
		require.Equal(t, want, got, value)
	}
	t.Setenv(IntegrationLatencyVar, "yes please")
	_, err := IntegrationLatencyFromEnv()
	require.ErrorContains(t, err, IntegrationLatencyVar)
}

// tenantLimitsStandIn is registered under a tenant workflow's name: the
// interceptor knows workflows by name.
func tenantLimitsStandIn(ctx workflow.Context, fail bool) error {
	if err := workflow.Sleep(ctx, 10*time.Millisecond); err != nil {
		return err
	}
	if fail {
		return errors.New("limits refused")
	}
	return nil
}

func otherWorkflow(ctx workflow.Context) error { return nil }

// TestTemporalAndProvisioningMetrics runs workflows on a real Temporal
// server with a client and a worker wired as the roles wire them: the
// SDK's temporal_* metrics and the provisioning metrics land on the
// role's registry.
func TestTemporalAndProvisioningMetrics(t *testing.T) {
	ts := testenv.TemporalServer(t)
	reg := prometheus.NewRegistry()
	handler, closer := TemporalMetrics(reg, nil)
	t.Cleanup(func() { _ = closer.Close() })
	c := ts.NewClientWithOptions(client.Options{MetricsHandler: handler})
	provisioning := newProvisioningMetrics(reg)
	w := worker.New(c, "metrics-test", worker.Options{Interceptors: []interceptor.WorkerInterceptor{provisioning}})
	w.RegisterWorkflowWithOptions(tenantLimitsStandIn, workflow.RegisterOptions{Name: "TenantLimits"})
	w.RegisterWorkflow(otherWorkflow)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(name string, args ...any) error {
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "metrics-test", ID: testenv.RandomID(8)}, name, args...)
		require.NoError(t, err)
		return r.Get(ctx, nil)
	}
	require.NoError(t, run("TenantLimits", false))
	require.NoError(t, run("TenantLimits", false))
	require.Error(t, run("TenantLimits", true))
	require.NoError(t, run("otherWorkflow"))

	require.Equal(t, 1.0, testutil.ToFloat64(provisioning.failures.WithLabelValues("update_tenant")))
	require.Zero(t, testutil.ToFloat64(provisioning.failures.WithLabelValues("create_tenant")))
	n, err := testutil.GatherAndCount(reg, "vrsky_provisioning_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n, "update_tenant succeeded and failed; other workflows are not tenant operations")
	require.Equal(t, 2, testutil.CollectAndCount(provisioning.duration))

	// The SDK reports through tally every second.
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "temporal_workflow_completed_total", "temporal_workflow_failed_total")
		return err == nil && n >= 2
	}, 10*time.Second, 100*time.Millisecond, "the SDK's metrics are on the registry")
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		require.True(t, strings.HasPrefix(f.GetName(), "temporal_") || strings.HasPrefix(f.GetName(), "vrsky_"), f.GetName())
	}
}
