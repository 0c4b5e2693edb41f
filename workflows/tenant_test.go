package workflows

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/testenv"
)

const (
	tenantProvisionHistory            = "testdata/tenant_provision_history.json"
	tenantProvisionCompensatedHistory = "testdata/tenant_provision_compensated_history.json"
	tenantDecommissionHistory         = "testdata/tenant_decommission_history.json"
)

// fakeTenants stands in for activities.Tenants: it records the steps run
// and fails the ones named in fail.
type fakeTenants struct {
	mu    sync.Mutex
	steps []string
	fail  map[string]error
	// block, when set, makes PutTenantAccount hang until it is closed and
	// report nothing meanwhile (a worker process killed in the middle of
	// the step).
	block   chan struct{}
	blocked chan struct{}
}

func (f *fakeTenants) step(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = append(f.steps, name)
	return f.fail[name]
}

func (f *fakeTenants) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.steps)
}

func (f *fakeTenants) register(r worker.Registry) {
	unit := func(name string) {
		r.RegisterActivityWithOptions(func(context.Context, activities.TenantInput) error { return f.step(name) },
			activity.RegisterOptions{Name: name})
	}
	count := func(name string, n int) {
		r.RegisterActivityWithOptions(func(context.Context, activities.TenantInput) (int, error) { return n, f.step(name) },
			activity.RegisterOptions{Name: name})
	}
	r.RegisterActivityWithOptions(func(_ context.Context, in activities.FailTenantInput) error {
		return f.step("MarkTenantFailed: " + in.Reason)
	}, activity.RegisterOptions{Name: "MarkTenantFailed"})
	r.RegisterActivityWithOptions(func(_ context.Context, in wire.NewTenant) error { return f.step("CreateTenantRows") },
		activity.RegisterOptions{Name: "CreateTenantRows"})
	r.RegisterActivityWithOptions(func(ctx context.Context, in activities.TenantAccountInput) error {
		if f.block != nil {
			// A killed process reports nothing, not even a cancellation:
			// the server times the attempt out.
			close(f.blocked)
			<-f.block
			return errors.New("the process is gone")
		}
		return f.step("PutTenantAccount")
	}, activity.RegisterOptions{Name: "PutTenantAccount"})
	for _, name := range []string{"EnsureTenantStreams", "ActivateTenant", "PurgeTenantRows", "DeleteTenantAccount", "MarkTenantDeleting", "FinishTenantDeletion"} {
		unit(name)
	}
	count("RemoveTenantStreams", 3)
	count("RemoveTenantObjects", 7)
	r.RegisterActivityWithOptions(func(context.Context, activities.TenantInput) ([]string, error) {
		return []string{"orders", "invoices"}, f.step("ListTenantIntegrations")
	}, activity.RegisterOptions{Name: "ListTenantIntegrations"})
	r.RegisterActivityWithOptions(func(_ context.Context, in activities.PlacementInput) error {
		return f.step("RemoveInstance")
	}, activity.RegisterOptions{Name: "RemoveInstance"})
	r.RegisterActivityWithOptions(func(_ context.Context, in activities.RemoveIntegrationInput) error {
		return f.step("RemoveIntegration " + in.WorkflowID + " " + in.ScheduleID)
	}, activity.RegisterOptions{Name: "RemoveIntegration"})
}

func provisionInput(tenant string) wire.TenantProvisionInput {
	return wire.TenantProvisionInput{
		Tenant: wire.NewTenant{ID: tenant, Name: "Acme", KeyID: "key-1", KeyPrefix: "vrsky_000000", KeyHash: []byte{1, 2, 3},
			Scopes: []string{"read"}},
		Limits: wire.Limits(natsauth.DefaultLimits),
	}
}

func startTenantWorker(t *testing.T, f *fakeTenants) client.Client {
	t.Helper()
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(TenantProvision)
		r.RegisterWorkflow(TenantDecommission)
		f.register(r)
	})
	return ts.GetDefaultClient()
}

func provision(ctx context.Context, t *testing.T, c client.Client, tenant string) (client.WorkflowRun, error) {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.TenantProvisionWorkflowID(tenant), TaskQueue: wire.ControlTaskQueue},
		TenantProvision, provisionInput(tenant))
	require.NoError(t, err)
	var res wire.TenantProvisionResult
	err = run.Get(ctx, &res)
	if err == nil {
		require.Equal(t, tenant, res.Tenant)
	}
	return run, err
}

func TestTenantProvisionOnTemporal(t *testing.T) {
	f := &fakeTenants{}
	c := startTenantWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := provision(ctx, t, c, "acme")
	require.NoError(t, err)
	require.Equal(t, []string{"CreateTenantRows", "PutTenantAccount", "EnsureTenantStreams", "ActivateTenant"}, f.ran())
	saveHistory(t, c, run.GetID(), run.GetRunID(), tenantProvisionHistory)
}

func TestTenantProvisionReplaysRecordedHistory(t *testing.T) {
	replay(t, tenantProvisionHistory, TenantProvision)
}

// TestTenantProvisionUndoesEverythingWhenAStepFails: a step that keeps
// failing ends the run failed, with every earlier step undone.
func TestTenantProvisionUndoesEverythingWhenAStepFails(t *testing.T) {
	f := &fakeTenants{fail: map[string]error{
		"EnsureTenantStreams": temporal.NewNonRetryableApplicationError("disk full", "Test", nil),
	}}
	c := startTenantWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := provision(ctx, t, c, "acme")
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, []string{
		"CreateTenantRows", "PutTenantAccount", "EnsureTenantStreams",
		"RemoveTenantStreams", "DeleteTenantAccount", "MarkTenantFailed: disk full",
	}, f.ran(), "the tenant stays, failed with the reason")
	saveHistory(t, c, run.GetID(), run.GetRunID(), tenantProvisionCompensatedHistory)
}

func TestTenantProvisionReplaysRecordedCompensation(t *testing.T) {
	replay(t, tenantProvisionCompensatedHistory, TenantProvision)
}

// TestTenantProvisionOfATakenIDUndoesNothing: nothing was created, so
// nothing is undone — in particular not the other tenant's rows.
func TestTenantProvisionOfATakenIDUndoesNothing(t *testing.T) {
	f := &fakeTenants{fail: map[string]error{
		"CreateTenantRows": temporal.NewNonRetryableApplicationError("taken", activities.ErrTenantExists, nil),
	}}
	c := startTenantWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := provision(ctx, t, c, "acme")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, activities.ErrTenantExists, appErr.Type())
	require.Equal(t, []string{"CreateTenantRows"}, f.ran())
}

// TestTenantProvisionSurvivesAWorkerKilledMidStep: the worker running the
// NATS account step dies without a word; another worker picks the step up
// once its attempt times out, and the tenant ends provisioned, each step
// done once.
func TestTenantProvisionSurvivesAWorkerKilledMidStep(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the step's start-to-close timeout")
	}
	ts := testenv.TemporalServer(t)
	dying := &fakeTenants{block: make(chan struct{}), blocked: make(chan struct{})}
	w := ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(TenantProvision)
		dying.register(r)
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.TenantProvisionWorkflowID("acme"), TaskQueue: wire.ControlTaskQueue},
		TenantProvision, provisionInput("acme"))
	require.NoError(t, err)
	<-dying.blocked
	w.Stop() // the worker is gone; its step's attempt times out after 10 s
	t.Cleanup(func() { close(dying.block) })

	healthy := &fakeTenants{}
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(TenantProvision)
		healthy.register(r)
	})
	var res wire.TenantProvisionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, []string{"CreateTenantRows"}, dying.ran())
	require.Equal(t, []string{"PutTenantAccount", "EnsureTenantStreams", "ActivateTenant"}, healthy.ran())
}

func TestTenantDecommissionOnTemporal(t *testing.T) {
	f := &fakeTenants{}
	c := startTenantWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.TenantDecommissionWorkflowID("acme"), TaskQueue: wire.ControlTaskQueue},
		TenantDecommission, wire.TenantDecommissionInput{Tenant: "acme"})
	require.NoError(t, err)
	var res wire.TenantDecommissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, wire.TenantDecommissionResult{Integrations: 2, Streams: 3, Objects: 7}, res)
	require.Equal(t, []string{
		"MarkTenantDeleting", "ListTenantIntegrations",
		"RemoveIntegration " + wire.IntegrationWorkflowID("acme", "orders") + " " + wire.IntegrationScheduleID("acme", "orders"),
		"RemoveIntegration " + wire.IntegrationWorkflowID("acme", "invoices") + " " + wire.IntegrationScheduleID("acme", "invoices"),
		"RemoveTenantStreams", "RemoveInstance", "DeleteTenantAccount", "RemoveTenantObjects", "FinishTenantDeletion",
	}, f.ran())
	saveHistory(t, c, run.GetID(), run.GetRunID(), tenantDecommissionHistory)
}

func TestTenantDecommissionReplaysRecordedHistory(t *testing.T) {
	replay(t, tenantDecommissionHistory, TenantDecommission)
}

// TestTenantLimitsAppliesTheAccountThenTheDLQ: a change of limits reaches
// the NATS account and the DLQ's size.
func TestTenantLimitsAppliesTheAccountThenTheDLQ(t *testing.T) {
	f := &fakeTenants{}
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(TenantLimits)
		f.register(r)
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.TenantLimitsWorkflowID("acme"), TaskQueue: wire.ControlTaskQueue},
		TenantLimits, wire.TenantLimitsInput{Tenant: "acme", Limits: wire.Limits(natsauth.DefaultLimits)})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))
	require.Equal(t, []string{"PutTenantAccount", "EnsureTenantStreams"}, f.ran())
}
