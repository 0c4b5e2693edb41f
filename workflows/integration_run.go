package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// IntegrationRunResult is how the run ended and what it took in.
type IntegrationRunResult struct {
	Run activities.RunOutcome
}

// RunActor is the actor recorded in the execution log for scheduled runs.
const RunActor = "schedule"

// IntegrationRun is one run of a scheduled integration, started by the
// integration's Temporal Schedule (IntegrationScheduleID): on the schedule,
// when triggered, or for a backfill. It asks the runners to poll the
// integration's source once (activities.Integrations.RunOnce), waits for
// the result, and records it in the integration's execution log. A run that
// failed, timed out or was skipped still completes the workflow; its
// result and the log say how it ended. The schedule's overlap policy
// (skip) keeps runs of one integration from overlapping.
func IntegrationRun(ctx workflow.Context, in wire.IntegrationRunInput) (IntegrationRunResult, error) {
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	wait := in.MaxWait
	if wait <= 0 {
		wait = wire.DefaultRunWait
	}
	runCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: wait + time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    5,
		},
	})
	var a *activities.Integrations
	var out activities.RunOutcome
	err := workflow.ExecuteActivity(runCtx, a.RunOnce, activities.RunInput{
		Tenant: in.Tenant, Integration: in.Integration, RunID: runID, Deadline: workflow.Now(ctx).Add(wait),
	}).Get(ctx, &out)
	if err != nil {
		out = activities.RunOutcome{RunID: runID, Status: activities.RunFailed, Error: "ask the runners: " + err.Error()}
	}

	err = workflow.ExecuteActivity(withStoreOptions(ctx), a.RecordTransition, activities.Transition{
		ID:     "run/" + runID,
		Tenant: in.Tenant, Integration: in.Integration,
		Actor: RunActor, Action: activities.ActionRun, Reason: runSummary(out),
	}).Get(ctx, nil)
	return IntegrationRunResult{Run: out}, err
}

// runSummary is a run's line in the execution log.
func runSummary(out activities.RunOutcome) string {
	s := fmt.Sprintf("%s: took in %d message(s)", out.Status, out.Messages)
	if !out.StartedAt.IsZero() && !out.FinishedAt.IsZero() {
		s += " in " + out.FinishedAt.Sub(out.StartedAt).Round(time.Millisecond).String()
	}
	if out.Runner != "" {
		s += " on runner " + out.Runner
	}
	if out.Error != "" {
		s += "; " + out.Error
	}
	return s
}
