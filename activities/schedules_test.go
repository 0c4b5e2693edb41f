package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestSyncScheduleFollowsTheDeployedSpec(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newIntegrationFixture(t)
	f.addVersion(t, 2, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"*/5 * * * *"}`)
	f.addVersion(t, 3, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"0 6 * * *"}`)
	ctl := control.New(testenv.Temporal(t))
	a := &Schedules{Store: f.st, Control: ctl}
	apply := func(version int, running, keep bool) SyncScheduleResult {
		t.Helper()
		res, err := a.SyncSchedule(ctx, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: version, Running: running, KeepPaused: keep, Actor: "alice"})
		require.NoError(t, err)
		return res
	}
	describe := func() (control.Schedule, error) { return ctl.DescribeSchedule(ctx, f.tenant, f.id) }

	require.Equal(t, SyncScheduleResult{}, apply(1, true, false), "version 1 has no schedule")
	_, err := describe()
	require.ErrorIs(t, err, control.ErrNotFound)

	require.Equal(t, "*/5 * * * *", apply(2, true, false).Cron)
	s, err := describe()
	require.NoError(t, err)
	require.False(t, s.Paused)
	require.Equal(t, "version 2 running by alice", s.Note)
	require.NotEmpty(t, s.NextRuns)
	for _, at := range s.NextRuns {
		require.Zero(t, at.Minute()%5, "every five minutes: %s", at)
	}

	apply(2, false, true)
	s, err = describe()
	require.NoError(t, err)
	require.True(t, s.Paused, "a stopped integration's schedule is paused, whatever KeepPaused says")
	require.Equal(t, "version 2 stopped by alice", s.Note)

	apply(3, true, true)
	s, err = describe()
	require.NoError(t, err)
	require.True(t, s.Paused, "a new version keeps the pause when asked to")
	for _, at := range s.NextRuns {
		require.Equal(t, []int{6, 0}, []int{at.Hour(), at.Minute()}, "and brings its cron expression: %s", at)
	}
	apply(3, true, false)
	s, err = describe()
	require.NoError(t, err)
	require.False(t, s.Paused, "a start resumes it")

	apply(1, true, false)
	_, err = describe()
	require.ErrorIs(t, err, control.ErrNotFound, "a version without a schedule deletes it")
	require.NoError(t, a.RemoveSchedule(ctx, PipelineInput{Tenant: f.tenant, Integration: f.id}), "removing it again is harmless")
}

func TestSyncScheduleErrors(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	f.addVersion(t, 2, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"0 * * * *"}`)
	ts := testenv.TemporalServer(t)
	a := &Schedules{Store: f.st, Control: control.New(ts.GetDefaultClient())}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := a.SyncSchedule(ctx, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: 9, Running: true})
	requireNonRetryable(t, err, ErrVersionNotFound)

	// A cron expression Temporal refuses is not worth retrying.
	requireNonRetryable(t, scheduleError(a.Control.PutSchedule(ctx, wire.IntegrationSchedule{
		Tenant: f.tenant, Integration: f.id, Cron: "61 * * * *"})), wire.ErrInvalidSchedule)

	// A control plane that is down is worth retrying.
	ts.Stop()
	down, cancelDown := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelDown()
	_, err = a.SyncSchedule(down, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: 2, Running: true})
	require.ErrorIs(t, err, control.ErrUnavailable)
	var appErr *temporal.ApplicationError
	require.NotErrorAs(t, err, &appErr)
}
