package control

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

// registerFakeRun registers, under IntegrationRun's name, a workflow that
// hands its input to recorded: it stands in for a run.
func registerFakeRun(r worker.Registry, recorded chan<- wire.IntegrationRunInput) {
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.IntegrationRunInput) error {
		select {
		case recorded <- in:
		default:
		}
		return nil
	}, workflow.RegisterOptions{Name: wire.IntegrationRunWorkflow})
}

func TestSchedulesOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	recorded := make(chan wire.IntegrationRunInput, 10)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) { registerFakeRun(r, recorded) })
	c := ts.GetDefaultClient()
	m := New(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tenant, integration := "acme", "orders"
	// describe is what Temporal says of the schedule, beyond DescribeSchedule.
	describe := func() *client.ScheduleDescription {
		t.Helper()
		desc, err := c.ScheduleClient().GetHandle(ctx, wire.IntegrationScheduleID(tenant, integration)).Describe(ctx)
		require.NoError(t, err)
		return desc
	}

	_, err := m.DescribeSchedule(ctx, tenant, integration)
	require.ErrorIs(t, err, ErrNotFound)
	for _, call := range []func() error{
		func() error { return m.PauseSchedule(ctx, tenant, integration, "") },
		func() error { return m.ResumeSchedule(ctx, tenant, integration, "") },
		func() error { return m.TriggerSchedule(ctx, tenant, integration) },
		func() error {
			return m.BackfillSchedule(ctx, tenant, integration, time.Now().Add(-time.Hour), time.Now())
		},
	} {
		require.ErrorIs(t, call(), ErrNotFound)
	}
	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration), "deleting what is not there is harmless")

	// Created yearly on 1 January, running.
	yearly := wire.IntegrationSchedule{Tenant: tenant, Integration: integration, Cron: "0 0 1 1 *", Note: "version 1 running"}
	require.NoError(t, m.PutSchedule(ctx, yearly))
	desc := describe()
	require.False(t, desc.Schedule.State.Paused)
	require.Equal(t, "version 1 running", desc.Schedule.State.Note)
	require.Equal(t, scheduleOverlap, desc.Schedule.Policy.Overlap)
	require.Equal(t, wire.ScheduleCatchupWindow, desc.Schedule.Policy.CatchupWindow)
	require.NotEmpty(t, desc.Info.NextActionTimes)
	for _, at := range desc.Info.NextActionTimes {
		require.Equal(t, time.January, at.UTC().Month())
		require.Equal(t, 1, at.UTC().Day())
	}
	action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.Equal(t, wire.IntegrationRunWorkflowID(tenant, integration), action.ID)
	require.Equal(t, "IntegrationRun", action.Workflow)
	require.Equal(t, wire.ControlTaskQueue, action.TaskQueue)

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
	require.NoError(t, m.ResumeSchedule(ctx, tenant, integration, "resumed by key k1"))
	require.False(t, describe().Schedule.State.Paused)
	keep := july
	keep.KeepPaused, keep.Note = true, "version 3 running"
	require.NoError(t, m.PutSchedule(ctx, keep))
	require.False(t, describe().Schedule.State.Paused, "KeepPaused keeps the state")
	require.NoError(t, m.PauseSchedule(ctx, tenant, integration, "paused by key k1"))
	require.NoError(t, m.PutSchedule(ctx, keep))
	desc = describe()
	require.True(t, desc.Schedule.State.Paused, "KeepPaused keeps a pause")
	require.Equal(t, "paused by key k1", desc.Schedule.State.Note)

	// A trigger runs now, even while paused, and the run is recorded.
	require.NoError(t, m.TriggerSchedule(ctx, tenant, integration))
	select {
	case in := <-recorded:
		require.Equal(t, wire.IntegrationRunInput{Tenant: tenant, Integration: integration}, in)
	case <-ctx.Done():
		t.Fatal("the triggered run never ran")
	}
	require.Eventually(t, func() bool {
		s, err := m.DescribeSchedule(ctx, tenant, integration)
		return err == nil && len(s.RecentStarts) == 1 && s.RecentStarts[0].WorkflowID != ""
	}, 20*time.Second, 50*time.Millisecond)

	// A backfill over a window holding a scheduled time runs it now.
	require.NoError(t, m.ResumeSchedule(ctx, tenant, integration, ""))
	require.Eventually(t, func() bool {
		s, err := m.DescribeSchedule(ctx, tenant, integration)
		return err == nil && len(s.Running) == 0
	}, 20*time.Second, 50*time.Millisecond)
	july1 := time.Date(time.Now().Year()-1, time.July, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, m.BackfillSchedule(ctx, tenant, integration, july1.Add(-time.Hour), july1.Add(time.Hour)))
	select {
	case in := <-recorded:
		require.Equal(t, tenant, in.Tenant)
	case <-ctx.Done():
		t.Fatal("the backfilled run never ran")
	}
	require.ErrorContains(t, m.BackfillSchedule(ctx, tenant, integration, july1, july1), "want an end after the start")
	require.ErrorContains(t, m.BackfillSchedule(ctx, tenant, integration, july1, july1.Add(32*24*time.Hour)), "at most")

	// A cron expression Temporal refuses is not worth retrying.
	bad := yearly
	bad.Cron = "61 * * * *"
	require.ErrorIs(t, m.PutSchedule(ctx, bad), ErrInvalid)

	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration))
	require.NoError(t, m.DeleteSchedule(ctx, tenant, integration))
	_, err = m.DescribeSchedule(ctx, tenant, integration)
	require.ErrorIs(t, err, ErrNotFound)

	// A new schedule may start paused.
	paused := yearly
	paused.Paused = true
	require.NoError(t, m.PutSchedule(ctx, paused))
	paused2, err := m.DescribeSchedule(ctx, tenant, integration)
	require.NoError(t, err)
	require.True(t, paused2.Paused)
}

// TestPlacementSweepScheduleFollowsItsInterval: the sweep's schedule is
// created with the interval given, left alone when asked again with it,
// and moved to a new one when a worker starts with another.
func TestPlacementSweepScheduleFollowsItsInterval(t *testing.T) {
	ts := testenv.TemporalServer(t)
	c := ts.GetDefaultClient()
	m := New(c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	every := func() []client.ScheduleIntervalSpec {
		t.Helper()
		desc, err := c.ScheduleClient().GetHandle(ctx, wire.PlacementSweepScheduleID).Describe(ctx)
		require.NoError(t, err)
		return desc.Schedule.Spec.Intervals
	}

	require.NoError(t, m.EnsurePlacementSweepSchedule(ctx, time.Minute))
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: time.Minute}}, every())
	require.NoError(t, m.EnsurePlacementSweepSchedule(ctx, time.Minute), "already so")
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: time.Minute}}, every())
	require.NoError(t, m.EnsurePlacementSweepSchedule(ctx, 90*time.Second))
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: 90 * time.Second}}, every())
}
