package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// fakePlatform stands in for KV, the runners and PostgreSQL: the runners
// report whatever is desired, or degraded with failStart when set.
type fakePlatform struct {
	desired     *activities.DesiredStateInput
	failStart   string
	removed     bool
	transitions []activities.Transition
	writes      int
	failWrites  int   // the first failWrites writes fail
	statusErr   error // every status read fails with it
	// scheduleCalls lists the schedule activities called, in order;
	// scheduleErr fails every SyncSchedule.
	scheduleCalls []string
	scheduleErr   error
}

func newLifecycleEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *fakePlatform) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	f := &fakePlatform{}
	var a *activities.Integrations
	env.OnActivity(a.WriteDesiredState, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DesiredStateInput) error {
			f.writes++
			if f.writes <= f.failWrites {
				return errors.New("nats: timeout")
			}
			if in.Version == 99 {
				return temporal.NewNonRetryableApplicationError("no version 99", activities.ErrVersionNotFound, nil)
			}
			f.desired = &in
			return nil
		})
	env.OnActivity(a.RemoveDesiredState, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PipelineInput) error { f.desired, f.removed = nil, true; return nil })
	env.OnActivity(a.AwaitRunnerStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AwaitStatusInput) (activities.RunnerStatus, error) {
			require.Equal(t, f.desired.Version, in.Version)
			if f.statusErr != nil {
				return activities.RunnerStatus{}, f.statusErr
			}
			if f.desired.Status == dataplane.DesiredRunning && f.failStart != "" {
				return activities.RunnerStatus{Version: in.Version, Status: dataplane.StatusDegraded, LastError: f.failStart}, nil
			}
			return activities.RunnerStatus{Version: in.Version, Status: in.Status}, nil
		})
	env.OnActivity(a.RecordTransition, mock.Anything, mock.Anything).Return(
		func(_ context.Context, tr activities.Transition) error {
			f.transitions = append(f.transitions, tr)
			return nil
		})
	var s *activities.Schedules
	env.OnActivity(s.SyncSchedule, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SyncScheduleInput) (activities.SyncScheduleResult, error) {
			f.scheduleCalls = append(f.scheduleCalls, fmt.Sprintf("sync v%d running=%t keep=%t", in.Version, in.Running, in.KeepPaused))
			if f.scheduleErr != nil {
				return activities.SyncScheduleResult{}, f.scheduleErr
			}
			return activities.SyncScheduleResult{Cron: "*/5 * * * *"}, nil
		})
	env.OnActivity(s.RemoveSchedule, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PipelineInput) error {
			require.False(t, f.removed, "the schedule goes before the desired state")
			f.scheduleCalls = append(f.scheduleCalls, "remove")
			return nil
		})
	return env, f
}

// outcome is what became of one update.
type outcome struct {
	rejected error
	err      error
	state    wire.IntegrationState
	done     bool
}

// change sends an update at the given point of workflow time.
func change(env *testsuite.TestWorkflowEnvironment, at time.Duration, action, id string, req wire.ChangeRequest) *outcome {
	o := &outcome{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(action, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { o.rejected = err },
			OnAccept: func() {},
			OnComplete: func(res any, err error) {
				o.done, o.err = true, err
				if s, ok := res.(wire.IntegrationState); ok {
					o.state = s
				}
			},
		}, req)
	}, at)
	return o
}

func ask(version int) wire.ChangeRequest {
	return wire.ChangeRequest{Version: version, Actor: "alice", Reason: "test"}
}

func runLifecycle(t *testing.T, env *testsuite.TestWorkflowEnvironment) wire.IntegrationLifecycleResult {
	t.Helper()
	env.ExecuteWorkflow(IntegrationLifecycle, wire.IntegrationLifecycleInput{Tenant: "acme", Integration: "orders"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res wire.IntegrationLifecycleResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func TestIntegrationLifecycleDeployStartStopUpdateDelete(t *testing.T) {
	env, f := newLifecycleEnv(t)
	deploy := change(env, 1*time.Second, wire.IntegrationDeploy, "u1", ask(1))
	stop := change(env, 2*time.Second, wire.IntegrationStop, "u2", ask(0))
	start := change(env, 3*time.Second, wire.IntegrationStart, "u3", ask(0))
	stop2 := change(env, 4*time.Second, wire.IntegrationStop, "u4", ask(0))
	update := change(env, 5*time.Second, wire.IntegrationUpdate, "u5", ask(2))
	var queried wire.IntegrationState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(wire.IntegrationStateQuery)
		require.NoError(t, err)
		require.NoError(t, v.Get(&queried))
	}, 5500*time.Millisecond)
	del := change(env, 6*time.Second, wire.IntegrationDelete, "u6", ask(0))

	res := runLifecycle(t, env)

	for _, o := range []*outcome{deploy, stop, start, stop2, update, del} {
		require.NoError(t, o.rejected)
		require.True(t, o.done)
		require.NoError(t, o.err)
	}
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "running", Status: "running"}, deploy.state)
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "stopped", Status: "stopped"}, stop.state)
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "running", Status: "running"}, start.state)
	require.Equal(t, wire.IntegrationState{Version: 2, DesiredStatus: "stopped", Status: "stopped"}, update.state,
		"update rolls out the new version and keeps the integration stopped")
	require.Equal(t, update.state, queried)
	require.Equal(t, wire.IntegrationState{Version: 2, Status: "deleted"}, del.state)
	require.Equal(t, del.state, res.State)
	require.True(t, f.removed)

	require.Len(t, f.transitions, 6)
	var actions, from, to []string
	ids := map[string]bool{}
	for _, tr := range f.transitions {
		actions, from, to = append(actions, tr.Action), append(from, tr.FromStatus), append(to, tr.Status)
		require.Equal(t, "alice", tr.Actor)
		require.Equal(t, "test", tr.Reason)
		require.Equal(t, "acme", tr.Tenant)
		require.Equal(t, "orders", tr.Integration)
		ids[tr.ID] = true
	}
	require.Len(t, ids, 6, "every transition has its own ID")
	require.Equal(t, []string{"deploy", "stop", "start", "stop", "update", "delete"}, actions)
	require.Equal(t, []string{"", "running", "stopped", "running", "stopped", "stopped"}, from)
	require.Equal(t, []string{"running", "stopped", "running", "stopped", "stopped", "deleted"}, to)
}

func TestIntegrationLifecycleRefusesInvalidChanges(t *testing.T) {
	env, f := newLifecycleEnv(t)
	cases := []struct {
		name, action string
		req          wire.ChangeRequest
		at           time.Duration
		want         string
	}{
		{"start before deploy", wire.IntegrationStart, ask(0), 1 * time.Second, "deploy a version first"},
		{"stop before deploy", wire.IntegrationStop, ask(0), 1 * time.Second, "deploy a version first"},
		{"update before deploy", wire.IntegrationUpdate, ask(2), 1 * time.Second, "deploy a version first"},
		{"deploy version zero", wire.IntegrationDeploy, ask(0), 1 * time.Second, "versions start at 1"},
		{"no actor", wire.IntegrationDeploy, wire.ChangeRequest{Version: 1}, 1 * time.Second, "actor"},
		{"deploy older version", wire.IntegrationDeploy, ask(2), 3 * time.Second, "older than the deployed version 3"},
		{"update to same version", wire.IntegrationUpdate, ask(3), 3 * time.Second, "not newer than the deployed version 3"},
		// Sent while the delete is being carried out: refused, since the
		// delete is accepted already.
		{"delete twice", wire.IntegrationDelete, ask(0), 4 * time.Second, "deleted"},
		{"start after delete", wire.IntegrationStart, ask(0), 4 * time.Second, "deleted"},
	}
	deploy := change(env, 2*time.Second, wire.IntegrationDeploy, "deploy", ask(3))
	missing := change(env, 2500*time.Millisecond, wire.IntegrationUpdate, "missing", ask(99))
	del := change(env, 4*time.Second, wire.IntegrationDelete, "delete", ask(0))
	outcomes := make([]*outcome, len(cases))
	for i, c := range cases {
		outcomes[i] = change(env, c.at, c.action, c.name, c.req)
	}

	res := runLifecycle(t, env)
	require.Equal(t, "deleted", res.State.Status)
	require.NoError(t, deploy.err)
	require.NoError(t, del.err)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outcomes[i]
			require.Error(t, o.rejected)
			require.ErrorContains(t, o.rejected, c.want)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, o.rejected, &appErr)
			require.Equal(t, wire.ErrInvalidTransition, appErr.Type())
			require.False(t, o.done)
		})
	}
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, missing.err, &appErr, "a version missing in the database fails the update")
	require.Equal(t, activities.ErrVersionNotFound, appErr.Type())
	require.Len(t, f.transitions, 2, "only deploy and delete were recorded")
}

func TestIntegrationLifecycleRecordsDegradedRunner(t *testing.T) {
	env, f := newLifecycleEnv(t)
	f.failStart = "connect to orders-db: connection refused"
	deploy := change(env, time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 2*time.Second, wire.IntegrationDelete, "u2", ask(0))
	runLifecycle(t, env)

	require.NoError(t, deploy.err)
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "running", Status: "degraded", LastError: f.failStart}, deploy.state)
	require.Equal(t, "degraded", f.transitions[0].Status)
	require.Equal(t, f.failStart, f.transitions[0].LastError)
	require.Equal(t, "degraded", f.transitions[1].FromStatus)
}

func TestIntegrationLifecycleRetriesFailedActivity(t *testing.T) {
	env, f := newLifecycleEnv(t)
	f.failWrites = 2
	deploy := change(env, time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 2*time.Minute, wire.IntegrationDelete, "u2", ask(0))
	runLifecycle(t, env)

	require.NoError(t, deploy.err)
	require.Equal(t, 3, f.writes, "two failed attempts, then success")
	require.Equal(t, "running", deploy.state.Status)
}

func TestIntegrationLifecycleReportsUnreadableStatusAsPending(t *testing.T) {
	env, f := newLifecycleEnv(t)
	f.statusErr = errors.New("kv down")
	deploy := change(env, time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 10*time.Minute, wire.IntegrationDelete, "u2", ask(0))
	runLifecycle(t, env)
	require.NoError(t, deploy.err)
	require.Equal(t, activities.StatusPending, deploy.state.Status)
	require.Contains(t, deploy.state.LastError, "kv down")
}

func TestIntegrationLifecycleContinuesAsNewWithItsState(t *testing.T) {
	env, f := newLifecycleEnv(t)
	change(env, time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 2*time.Second, wire.IntegrationStop, "u2", ask(0))
	env.ExecuteWorkflow(IntegrationLifecycle, wire.IntegrationLifecycleInput{Tenant: "acme", Integration: "orders", MaxTransitions: 2})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Equal(t, "IntegrationLifecycle", can.WorkflowType.Name)
	var next wire.IntegrationLifecycleInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "stopped", Status: "stopped"}, next.State)
	require.Equal(t, 2, next.MaxTransitions)
	require.Len(t, f.transitions, 2)
}

func TestIntegrationLifecycleQueuesChangesAndChecksThemAgain(t *testing.T) {
	env, f := newLifecycleEnv(t)
	// A deploy that fails leaves nothing deployed for the start queued
	// behind it: the start is accepted, then refused when its turn comes.
	failing := change(env, time.Second, wire.IntegrationDeploy, "u1", ask(99))
	refused := change(env, time.Second, wire.IntegrationStart, "u2", ask(0))
	// Sent together: stop is accepted because the deploy before it is
	// queued, and carried out after it.
	deploy := change(env, 2*time.Second, wire.IntegrationDeploy, "u3", ask(1))
	stop := change(env, 2*time.Second, wire.IntegrationStop, "u4", ask(0))
	change(env, 3*time.Second, wire.IntegrationDelete, "u5", ask(0))
	runLifecycle(t, env)

	require.Error(t, failing.err)
	require.NoError(t, refused.rejected)
	require.ErrorContains(t, refused.err, "deploy a version first")
	require.NoError(t, deploy.err)
	require.NoError(t, stop.rejected)
	require.NoError(t, stop.err)
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: "stopped", Status: "stopped"}, stop.state)
	require.Len(t, f.transitions, 3)
}

func TestIntegrationLifecycleKeepsTheScheduleInStep(t *testing.T) {
	env, f := newLifecycleEnv(t)
	change(env, 1*time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 2*time.Second, wire.IntegrationStop, "u2", ask(0))
	change(env, 3*time.Second, wire.IntegrationStart, "u3", ask(0))
	change(env, 4*time.Second, wire.IntegrationUpdate, "u4", ask(2))
	change(env, 5*time.Second, wire.IntegrationDelete, "u5", ask(0))
	runLifecycle(t, env)
	require.Equal(t, []string{
		"sync v1 running=true keep=false",
		"sync v1 running=false keep=false",
		"sync v1 running=true keep=false",
		"sync v2 running=true keep=true",
		"remove",
	}, f.scheduleCalls, "created on deploy, paused on stop, resumed on start, updated keeping an API pause, deleted")
}

func TestIntegrationLifecycleRecordsAScheduleFailure(t *testing.T) {
	env, f := newLifecycleEnv(t)
	f.scheduleErr = temporal.NewNonRetryableApplicationError("cron refused", wire.ErrInvalidSchedule, nil)
	deploy := change(env, time.Second, wire.IntegrationDeploy, "u1", ask(1))
	change(env, 2*time.Second, wire.IntegrationDelete, "u2", ask(0))
	runLifecycle(t, env)
	require.NoError(t, deploy.err, "the runners run the version; the change is not undone")
	require.Equal(t, "running", deploy.state.Status)
	require.Contains(t, deploy.state.LastError, "schedule: ")
	require.Contains(t, deploy.state.LastError, "cron refused")
	require.Equal(t, deploy.state.LastError, f.transitions[0].LastError, "and it is recorded")
}
