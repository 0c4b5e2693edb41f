package control

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMapError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", ""), ErrExists},
		{serviceerror.NewAlreadyExists("schedule"), ErrExists},
		{temporal.ErrScheduleAlreadyRunning, ErrExists},
		{serviceerror.NewNotFound("gone"), ErrNotFound},
		{fmt.Errorf("wrapped: %w", serviceerror.NewNotFound("gone")), ErrNotFound},
		{serviceerror.NewInvalidArgument("bad cron"), ErrInvalid},
		{temporal.NewNonRetryableApplicationError("start: deploy first", wire.ErrInvalidTransition, nil), ErrRefused},
		{temporal.NewApplicationError("other", "Other"), ErrUnavailable},
		{serviceerror.NewUnavailable("down"), ErrUnavailable},
		{context.DeadlineExceeded, ErrUnavailable},
		{errors.New("connection refused"), ErrUnavailable},
	} {
		err := mapError("do it", tc.err)
		require.ErrorIs(t, err, tc.want, "%v", tc.err)
		for _, other := range []error{ErrExists, ErrNotFound, ErrInvalid, ErrRefused, ErrUnavailable} {
			if other != tc.want {
				require.NotErrorIs(t, err, other, "%v", tc.err)
			}
		}
	}
	require.NoError(t, mapError("do it", nil))
	var refused *RefusedError
	require.ErrorAs(t, mapError("", temporal.NewNonRetryableApplicationError("start: deploy first", wire.ErrInvalidTransition, nil)), &refused)
	require.Equal(t, "start: deploy first", refused.Reason)
	require.Equal(t, "refused: start: deploy first", refused.Error())
}

// fakeControlPlane runs, under the real workflows' names, workflows that
// record what they were started with and end as told.
type fakeControlPlane struct {
	started chan string
	// release ends the waiting DLQReplay runs.
	release chan struct{}
}

func startFake(t *testing.T) (*Client, *fakeControlPlane) {
	t.Helper()
	ts := testenv.TemporalServer(t)
	f := &fakeControlPlane{started: make(chan string, 20), release: make(chan struct{})}
	record := func(what string) {
		select {
		case f.started <- what:
		default:
		}
	}
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.TenantProvisionInput) (wire.TenantProvisionResult, error) {
			record("provision " + in.Tenant.ID)
			// Provisioning takes a while: a second create meets it running.
			return wire.TenantProvisionResult{Tenant: in.Tenant.ID}, workflow.Sleep(ctx, time.Hour)
		}, workflow.RegisterOptions{Name: wire.TenantProvisionWorkflow})
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.TenantDecommissionInput) (wire.TenantDecommissionResult, error) {
			record("decommission " + in.Tenant)
			return wire.TenantDecommissionResult{}, nil
		}, workflow.RegisterOptions{Name: wire.TenantDecommissionWorkflow})
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.TenantLimitsInput) error {
			record(fmt.Sprintf("limits %s %d", in.Tenant, in.Limits.DiskBytes))
			return nil
		}, workflow.RegisterOptions{Name: wire.TenantLimitsWorkflow})
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.DLQReplayInput) (wire.DLQReplayResult, error) {
			// One page done, then one in progress that heartbeats, until
			// released; Done carries what earlier runs did.
			page := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: time.Minute})
			var res wire.ReplayPageResult
			if err := workflow.ExecuteActivity(page, "FakePage", false).Get(ctx, &res); err != nil {
				return wire.DLQReplayResult{}, err
			}
			if err := workflow.ExecuteActivity(page, "FakePage", true).Get(ctx, &res); err != nil {
				return wire.DLQReplayResult{}, err
			}
			if in.Discard {
				return wire.DLQReplayResult{}, temporal.NewNonRetryableApplicationError("the DLQ is gone", "Gone", nil)
			}
			return wire.DLQReplayResult{Replayed: in.Done + 2 + 3}, nil
		}, workflow.RegisterOptions{Name: wire.DLQReplayWorkflow})
		r.RegisterActivityWithOptions(func(ctx context.Context, wait bool) (wire.ReplayPageResult, error) {
			if !wait {
				return wire.ReplayPageResult{Done: 2}, nil
			}
			activity.RecordHeartbeat(ctx, wire.ReplayProgress{LastSeq: 9, Done: 3})
			select {
			case <-f.release:
			case <-ctx.Done():
				return wire.ReplayPageResult{}, ctx.Err()
			}
			return wire.ReplayPageResult{Done: 3}, nil
		}, activity.RegisterOptions{Name: "FakePage"})
	})
	return New(ts.GetDefaultClient()), f
}

func (f *fakeControlPlane) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-f.started:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no workflow started")
		return ""
	}
}

func TestTenantLifecycles(t *testing.T) {
	c, f := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	in := wire.TenantProvisionInput{Tenant: wire.NewTenant{ID: "acme", Name: "Acme", KeyID: "key-1", Scopes: []string{"read"}}}
	require.NoError(t, c.ProvisionTenant(ctx, in, false))
	require.Equal(t, "provision acme", f.next(t))
	require.ErrorIs(t, c.ProvisionTenant(ctx, in, false), ErrExists, "a run in progress holds the ID")
	require.NoError(t, c.ProvisionTenant(ctx, in, true), "after a failed provisioning the ID is created again")
	require.Equal(t, "provision acme", f.next(t))

	require.NoError(t, c.DecommissionTenant(ctx, "acme"))
	require.Equal(t, "decommission acme", f.next(t))
	require.NoError(t, c.ChangeTenantLimits(ctx, "acme", wire.Limits{DiskBytes: 1 << 20}))
	require.Equal(t, "limits acme 1048576", f.next(t))

	// Nothing to terminate is not an error; a schedule is deleted with it.
	require.NoError(t, c.TerminateIntegration(ctx, "acme", "orders"))
	require.NoError(t, c.PutSchedule(ctx, wire.IntegrationSchedule{Tenant: "acme", Integration: "orders", Cron: "0 0 1 1 *"}))
	require.NoError(t, c.TerminateIntegration(ctx, "acme", "orders"))
	_, err := c.DescribeSchedule(ctx, "acme", "orders")
	require.ErrorIs(t, err, ErrNotFound)

	down, cancelDown := context.WithCancel(ctx)
	cancelDown()
	require.ErrorIs(t, c.ProvisionTenant(down, wire.TenantProvisionInput{Tenant: wire.NewTenant{ID: "beta"}}, false), ErrUnavailable)
}

func TestReplayProgress(t *testing.T) {
	c, f := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := c.ReplayProgress(ctx, "acme", "replay-none")
	require.ErrorIs(t, err, ErrNotFound)

	r := Replay{Input: wire.DLQReplayInput{Tenant: "acme", Done: 10}, RequestID: "replay-r1", Total: 20, Exact: true}
	id, err := c.StartReplay(ctx, r)
	require.NoError(t, err)
	require.Equal(t, wire.DLQReplayWorkflowID("acme", "replay-r1"), id)
	again, err := c.StartReplay(ctx, r)
	require.NoError(t, err, "a repeated request finds the first run")
	require.Equal(t, id, again)

	// Running: the earlier runs' 10, the finished page's 2 and the
	// heartbeat's 3.
	require.Eventually(t, func() bool {
		p, err := c.ReplayProgress(ctx, "acme", "replay-r1")
		return err == nil && p == ReplayProgress{State: ReplayRunning, Total: 20, Exact: true, Done: 15}
	}, 30*time.Second, 50*time.Millisecond)
	_, err = c.ReplayProgress(ctx, "other", "replay-r1")
	require.ErrorIs(t, err, ErrNotFound, "another tenant's replay is not found")

	close(f.release)
	require.Eventually(t, func() bool {
		p, err := c.ReplayProgress(ctx, "acme", "replay-r1")
		return err == nil && p == ReplayProgress{State: ReplayCompleted, Total: 20, Exact: true, Done: 15}
	}, 30*time.Second, 50*time.Millisecond)

	// A failed run says failed, with what it did.
	_, err = c.StartReplay(ctx, Replay{Input: wire.DLQReplayInput{Tenant: "acme", Discard: true}, RequestID: "discard-d1", Total: 7})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := c.ReplayProgress(ctx, "acme", "discard-d1")
		return err == nil && p.State == ReplayFailed && p.Total == 7 && p.Done == 5
	}, 30*time.Second, 50*time.Millisecond)
}
