package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// DLQReplay paging defaults.
const (
	// DLQReplayPageSize is how many dead letters one activity handles.
	DLQReplayPageSize = 100
	// DefaultDLQReplayPagesPerRun bounds the history of one DLQReplay run
	// before it continues as new.
	DefaultDLQReplayPagesPerRun = 200
)

// DLQReplay replays (or discards) a tenant's selected dead letters, each
// once, page by page (ID DLQReplayWorkflowID). Only dead letters that were
// in the DLQ when it started are considered, so a replayed message that fails
// again waits for the next replay. Each page's activity heartbeats its
// position: a worker crash resumes where it stopped.
func DLQReplay(ctx workflow.Context, in wire.DLQReplayInput) (wire.DLQReplayResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{activities.ErrInvalidFilter},
		},
	})
	pagesPerRun := in.PagesPerRun
	if pagesPerRun <= 0 {
		pagesPerRun = DefaultDLQReplayPagesPerRun
	}
	var dlq *activities.DLQ
	for range pagesPerRun {
		limit := DLQReplayPageSize
		if in.MaxMessages > 0 {
			limit = min(limit, in.MaxMessages-in.Done)
		}
		if limit <= 0 {
			break
		}
		var page wire.ReplayPageResult
		err := workflow.ExecuteActivity(ctx, dlq.ReplayPage, activities.ReplayPageInput{
			Tenant: in.Tenant, Filter: dataplane.DLQFilter(in.Filter), Seqs: in.Seqs, AfterSeq: in.AfterSeq, UpToSeq: in.UpToSeq,
			Limit: limit, Discard: in.Discard,
		}).Get(ctx, &page)
		if err != nil {
			return replayResult(in), err
		}
		in.Done += page.Done
		in.AfterSeq, in.UpToSeq = page.LastSeq, page.UpToSeq
		if !page.More {
			return replayResult(in), nil
		}
	}
	if in.MaxMessages > 0 && in.Done >= in.MaxMessages {
		return replayResult(in), nil
	}
	return wire.DLQReplayResult{}, workflow.NewContinueAsNewError(ctx, DLQReplay, in)
}

func replayResult(in wire.DLQReplayInput) wire.DLQReplayResult {
	if in.Discard {
		return wire.DLQReplayResult{Discarded: in.Done}
	}
	return wire.DLQReplayResult{Replayed: in.Done}
}
