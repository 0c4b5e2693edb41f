package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// Outcomes of a scheduled run (RunOutcome.Status).
const (
	// RunSucceeded: the runner polled the source and took in what it held.
	RunSucceeded = "succeeded"
	// RunFailed: the runner reported an error; what it took in before it
	// stays taken in, and the next run resumes.
	RunFailed = "failed"
	// RunTimedOut: no runner finished the run before the deadline.
	RunTimedOut = "timed-out"
	// RunSkipped: nothing was asked of the runners, because the integration
	// is not running or its deployed version has no schedule.
	RunSkipped = "skipped"
)

// DefaultRunWait is how long RunOnce waits for a run when its input sets no
// deadline.
const DefaultRunWait = wire.DefaultRunWait

// RunInput asks for one run of a scheduled integration.
type RunInput struct {
	Tenant      string
	Integration string
	// RunID identifies the run: retrying the activity with the same ID
	// waits for the same run, it never asks for a second one.
	RunID string
	// Deadline is when to stop waiting; zero means DefaultRunWait from
	// the activity's start. Keep it before the activity's StartToClose
	// timeout.
	Deadline time.Time
}

// RunOutcome is how a run ended and what it took in.
type RunOutcome struct {
	RunID  string
	Status string
	Runner string
	// StartedAt and FinishedAt are the runner's; zero when no runner
	// started the run.
	StartedAt  time.Time
	FinishedAt time.Time
	Messages   int
	Error      string
}

// RunOnce asks the runners for one run of a scheduled integration and waits
// for its result, heartbeating while it waits: the runner holding the
// integration's lease polls its source once. An integration whose desired
// state is not running, or whose deployed spec has no schedule, is
// RunSkipped without asking. A run the runner reports failed is returned
// as RunFailed, one not finished by the deadline as RunTimedOut; neither is
// an error. It returns an error only when the buckets cannot be read or
// written, or ctx ends.
func (a *Integrations) RunOnce(ctx context.Context, in RunInput) (RunOutcome, error) {
	p := dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration}
	out := RunOutcome{RunID: in.RunID}
	d, ok, err := a.State.GetDesired(ctx, p)
	if err != nil {
		return out, err
	}
	switch {
	case !ok || d.Status != dataplane.DesiredRunning:
		out.Status, out.Error = RunSkipped, "the integration is not running"
		return out, nil
	case d.Spec.Schedule == "":
		out.Status, out.Error = RunSkipped, fmt.Sprintf("version %d of the integration has no schedule", d.Version)
		return out, nil
	}
	deadline := in.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(DefaultRunWait)
	}
	if err := a.State.RequestRun(ctx, p, dataplane.RunRequest{RunID: in.RunID, Deadline: deadline}); err != nil {
		return out, err
	}
	every := a.PollEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		res, ok, err := a.State.RunResult(ctx, p)
		if err != nil {
			return out, err
		}
		if ok && res.RunID == in.RunID {
			out.Runner, out.StartedAt, out.FinishedAt, out.Messages, out.Error = res.Runner, res.StartedAt, res.FinishedAt, res.Messages, res.Error
			if res.Finished() {
				out.Status = RunSucceeded
				if res.Error != "" {
					out.Status = RunFailed
				}
				return out, nil
			}
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, out.Messages)
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("wait for run %s of %s: %w", in.RunID, p, ctx.Err())
		case <-timeout.C:
			out.Status = RunTimedOut
			if out.StartedAt.IsZero() {
				out.Error = "no runner took the run before its deadline: is a runner up?"
			} else {
				out.Error = "the runner did not finish the run before its deadline; it may still be polling"
			}
			return out, nil
		case <-tick.C:
		}
	}
}
