package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestIntegrationRunRecordsWhatTheRunTookIn(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Integrations
	var asked activities.RunInput
	started := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	env.OnActivity(a.RunOnce, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RunInput) (activities.RunOutcome, error) {
			asked = in
			return activities.RunOutcome{RunID: in.RunID, Status: activities.RunSucceeded, Runner: "r1",
				StartedAt: started, FinishedAt: started.Add(1500 * time.Millisecond), Messages: 3}, nil
		})
	var recorded activities.Transition
	env.OnActivity(a.RecordTransition, mock.Anything, mock.Anything).Return(
		func(_ context.Context, tr activities.Transition) error { recorded = tr; return nil })

	begin := env.Now()
	env.ExecuteWorkflow(IntegrationRun, wire.IntegrationRunInput{Tenant: "acme", Integration: "orders"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res IntegrationRunResult
	require.NoError(t, env.GetWorkflowResult(&res))

	require.Equal(t, "acme", asked.Tenant)
	require.Equal(t, "orders", asked.Integration)
	require.NotEmpty(t, asked.RunID, "the run is named after the workflow run, so a retried activity asks for the same one")
	require.True(t, begin.Add(activities.DefaultRunWait).Equal(asked.Deadline), "deadline %s", asked.Deadline)
	require.Equal(t, activities.RunSucceeded, res.Run.Status)
	require.Equal(t, 3, res.Run.Messages)
	require.Equal(t, activities.Transition{
		ID: "run/" + asked.RunID, Tenant: "acme", Integration: "orders", Actor: RunActor, Action: activities.ActionRun,
		Reason: "succeeded: took in 3 message(s) in 1.5s on runner r1",
	}, recorded)
}

func TestIntegrationRunRecordsAFailureToAskTheRunners(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Integrations
	attempts := 0
	env.OnActivity(a.RunOnce, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RunInput) (activities.RunOutcome, error) {
			attempts++
			return activities.RunOutcome{}, errors.New("nats: no responders")
		})
	var recorded activities.Transition
	env.OnActivity(a.RecordTransition, mock.Anything, mock.Anything).Return(
		func(_ context.Context, tr activities.Transition) error { recorded = tr; return nil })

	env.ExecuteWorkflow(IntegrationRun, wire.IntegrationRunInput{Tenant: "acme", Integration: "orders", MaxWait: time.Minute})
	require.NoError(t, env.GetWorkflowError(), "a failed run is recorded, not a failed workflow")
	var res IntegrationRunResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 5, attempts, "the activity's retries")
	require.Equal(t, activities.RunFailed, res.Run.Status)
	require.Contains(t, recorded.Reason, "failed: took in 0 message(s); ask the runners: ")
	require.Contains(t, recorded.Reason, "no responders")
}

func TestIntegrationRunFailsWhenTheLogCannotBeWritten(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Integrations
	env.OnActivity(a.RunOnce, mock.Anything, mock.Anything).Return(
		activities.RunOutcome{Status: activities.RunSkipped, Error: "the integration is not running"}, nil)
	env.OnActivity(a.RecordTransition, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("tenant gone", "Gone", nil))
	env.ExecuteWorkflow(IntegrationRun, wire.IntegrationRunInput{Tenant: "acme", Integration: "orders"})
	require.ErrorContains(t, env.GetWorkflowError(), "tenant gone")
}

// registerFakeRuns registers activities under the names RunOnce and
// RecordTransition that stand in for a runner taking in two messages.
func registerFakeRuns(r worker.Registry, recorded chan<- activities.Transition) {
	r.RegisterActivityWithOptions(func(_ context.Context, in activities.RunInput) (activities.RunOutcome, error) {
		at := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
		return activities.RunOutcome{RunID: in.RunID, Status: activities.RunSucceeded, Runner: "r1",
			StartedAt: at, FinishedAt: at.Add(time.Second), Messages: 2}, nil
	}, activity.RegisterOptions{Name: "RunOnce"})
	r.RegisterActivityWithOptions(func(_ context.Context, tr activities.Transition) error {
		select {
		case recorded <- tr:
		default:
		}
		return nil
	}, activity.RegisterOptions{Name: "RecordTransition"})
}

func TestIntegrationRunOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationRun)
		registerFakeRuns(r, make(chan activities.Transition, 1))
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.IntegrationRunWorkflowID("acme", "orders"), TaskQueue: wire.ControlTaskQueue},
		IntegrationRun, wire.IntegrationRunInput{Tenant: "acme", Integration: "orders"})
	require.NoError(t, err)
	var res IntegrationRunResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, 2, res.Run.Messages)
	require.Equal(t, run.GetRunID(), res.Run.RunID)
	saveHistory(t, c, run.GetID(), run.GetRunID(), integrationRunHistory)
}

func TestIntegrationRunReplaysRecordedHistory(t *testing.T) {
	replay(t, integrationRunHistory, IntegrationRun)
}
