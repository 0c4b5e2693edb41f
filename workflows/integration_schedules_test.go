package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestIntegrationSchedulesOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	recorded := make(chan activities.Transition, 10)
	ts.NewWorker(ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationRun)
		registerFakeRuns(r, recorded)
	})
	m := IntegrationSchedules{Client: ts.GetDefaultClient()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tenant, integration := "acme", "orders"
	describe := func() *client.ScheduleDescription {
		t.Helper()
		desc, err := m.Describe(ctx, tenant, integration)
		require.NoError(t, err)
		return desc
	}

	_, err := m.Describe(ctx, tenant, integration)
	require.ErrorIs(t, err, ErrNoSchedule)
	for _, call := range []func() error{
		func() error { return m.Pause(ctx, tenant, integration, "") },
		func() error { return m.Resume(ctx, tenant, integration, "") },
		func() error { return m.Trigger(ctx, tenant, integration) },
		func() error {
			return m.Backfill(ctx, tenant, integration, time.Now().Add(-time.Hour), time.Now())
		},
	} {
		require.ErrorIs(t, call(), ErrNoSchedule)
	}
	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration), "deleting what is not there is harmless")

	// Created yearly on 1 January, running.
	yearly := activities.IntegrationSchedule{Tenant: tenant, Integration: integration, Cron: "0 0 1 1 *", Note: "version 1 running"}
	require.NoError(t, m.PutSchedule(ctx, yearly))
	desc := describe()
	require.False(t, desc.Schedule.State.Paused)
	require.Equal(t, "version 1 running", desc.Schedule.State.Note)
	require.Equal(t, ScheduleOverlap, desc.Schedule.Policy.Overlap)
	require.Equal(t, ScheduleCatchupWindow, desc.Schedule.Policy.CatchupWindow)
	require.NotEmpty(t, desc.Info.NextActionTimes)
	for _, at := range desc.Info.NextActionTimes {
		require.Equal(t, time.January, at.UTC().Month())
		require.Equal(t, 1, at.UTC().Day())
	}
	action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.Equal(t, IntegrationRunWorkflowID(tenant, integration), action.ID)
	require.Equal(t, "IntegrationRun", action.Workflow)
	require.Equal(t, ControlTaskQueue, action.TaskQueue)

	// Updated to 1 July and paused (a stop).
	july := yearly
	july.Cron, july.Paused, july.Note = "0 0 1 7 *", true, "version 2 stopped"
	require.NoError(t, m.PutSchedule(ctx, july))
	desc = describe()
	require.True(t, desc.Schedule.State.Paused)
	require.Equal(t, "version 2 stopped", desc.Schedule.State.Note)
	// The next action times are those of the new spec even while paused.
	for _, at := range desc.Info.NextActionTimes {
		require.Equal(t, time.July, at.UTC().Month())
	}

	// Resumed through the API, then a new version that keeps it as it is.
	require.NoError(t, m.Resume(ctx, tenant, integration, "resumed by key k1"))
	require.False(t, describe().Schedule.State.Paused)
	keep := july
	keep.KeepPaused, keep.Note = true, "version 3 running"
	require.NoError(t, m.PutSchedule(ctx, keep))
	require.False(t, describe().Schedule.State.Paused, "KeepPaused keeps the state")
	require.NoError(t, m.Pause(ctx, tenant, integration, "paused by key k1"))
	require.NoError(t, m.PutSchedule(ctx, keep))
	desc = describe()
	require.True(t, desc.Schedule.State.Paused, "KeepPaused keeps a pause")
	require.Equal(t, "paused by key k1", desc.Schedule.State.Note)

	// A trigger runs now, even while paused, and the run is recorded.
	require.NoError(t, m.Trigger(ctx, tenant, integration))
	select {
	case tr := <-recorded:
		require.Equal(t, activities.ActionRun, tr.Action)
		require.Equal(t, tenant, tr.Tenant)
		require.Contains(t, tr.Reason, "took in 2 message(s)")
	case <-ctx.Done():
		t.Fatal("the triggered run never ran")
	}
	require.Eventually(t, func() bool { return len(describe().Info.RecentActions) == 1 }, 20*time.Second, 50*time.Millisecond)

	// A backfill over a window holding a scheduled time runs it now.
	require.NoError(t, m.Resume(ctx, tenant, integration, ""))
	require.Eventually(t, func() bool { return len(describe().Info.RunningWorkflows) == 0 }, 20*time.Second, 50*time.Millisecond)
	july1 := time.Date(time.Now().Year()-1, time.July, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, m.Backfill(ctx, tenant, integration, july1.Add(-time.Hour), july1.Add(time.Hour)))
	select {
	case tr := <-recorded:
		require.Equal(t, activities.ActionRun, tr.Action)
	case <-ctx.Done():
		t.Fatal("the backfilled run never ran")
	}
	require.ErrorContains(t, m.Backfill(ctx, tenant, integration, july1, july1), "want an end after the start")
	require.ErrorContains(t, m.Backfill(ctx, tenant, integration, july1, july1.Add(32*24*time.Hour)), "at most")

	// A cron expression Temporal refuses is not worth retrying.
	bad := yearly
	bad.Cron = "61 * * * *"
	err = m.PutSchedule(ctx, bad)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrInvalidSchedule, appErr.Type())
	require.True(t, appErr.NonRetryable())

	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration))
	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration))
	_, err = m.Describe(ctx, tenant, integration)
	require.ErrorIs(t, err, ErrNoSchedule)

	// A new schedule may start paused.
	paused := yearly
	paused.Paused = true
	require.NoError(t, m.PutSchedule(ctx, paused))
	require.True(t, describe().Schedule.State.Paused)
}
