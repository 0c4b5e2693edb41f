package control

import (
	"context"
	"errors"

	"go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// Replay is a DLQReplay run to start: its input, the request ID that names
// it (a repeated ID finds the first run) and how many dead letters it
// selected when it was asked for (Exact false: a lower bound).
type Replay struct {
	Input     wire.DLQReplayInput
	RequestID string
	Total     int
	Exact     bool
}

// StartReplay starts the DLQReplay run of r (ID wire.DLQReplayWorkflowID)
// and returns its workflow ID without waiting for it; a run already started
// under that request ID is not an error, and is not started again.
func (c *Client) StartReplay(ctx context.Context, r Replay) (string, error) {
	id := wire.DLQReplayWorkflowID(r.Input.Tenant, r.RequestID)
	_, err := c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             wire.ControlTaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		Memo:                  map[string]any{wire.MemoTotal: r.Total, wire.MemoTotalExact: r.Exact},
	}, wire.DLQReplayWorkflow, r.Input)
	if err = mapError("start "+id, err); errors.Is(err, ErrExists) {
		return id, nil
	}
	return id, err
}

// Replay states (ReplayProgress.State).
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
	ReplayFailed    = "failed"
)

// ReplayProgress is how far a DLQReplay run got.
type ReplayProgress struct {
	// State is ReplayRunning, ReplayCompleted or ReplayFailed.
	State string
	// Total is the count the run was started with; Exact says whether it
	// is exact or a lower bound.
	Total int
	Exact bool
	// Done is how many dead letters it replayed or discarded so far.
	Done int
}

// ReplayProgress reads the DLQReplay run of the tenant's request ID: its
// state from Temporal's description, the count selected from its memo, and
// what it did from its result or, while it runs, from the current run's
// input (what earlier runs did before continuing as new), its finished pages
// and its running page's heartbeat. ErrNotFound for an unknown run.
func (c *Client) ReplayProgress(ctx context.Context, tenant, requestID string) (ReplayProgress, error) {
	id := wire.DLQReplayWorkflowID(tenant, requestID)
	desc, err := c.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ReplayProgress{}, mapError("describe "+id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	var out ReplayProgress
	dc := converter.GetDefaultDataConverter()
	if fields := info.GetMemo().GetFields(); fields != nil {
		if pl := fields[wire.MemoTotal]; pl != nil {
			_ = dc.FromPayload(pl, &out.Total)
		}
		if pl := fields[wire.MemoTotalExact]; pl != nil {
			_ = dc.FromPayload(pl, &out.Exact)
		}
	}
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING, enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		out.State = ReplayRunning
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		out.State = ReplayCompleted
	default:
		out.State = ReplayFailed
	}
	if out.State == ReplayCompleted {
		var res wire.DLQReplayResult
		if err := c.c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			return ReplayProgress{}, mapError("result of "+id, err)
		}
		out.Done = res.Replayed + res.Discarded
		return out, nil
	}
	if out.Done, err = c.doneSoFar(ctx, id, desc.GetPendingActivities()); err != nil {
		return ReplayProgress{}, mapError("history of "+id, err)
	}
	return out, nil
}

// doneSoFar adds up what the current run of a DLQReplay did: its input's
// Done, its finished pages and the heartbeat of the page it is on.
func (c *Client) doneSoFar(ctx context.Context, id string, pending []*workflowpb.PendingActivityInfo) (int, error) {
	dc := converter.GetDefaultDataConverter()
	done := 0
	iter := c.c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return 0, err
		}
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			var in wire.DLQReplayInput
			if pls := a.GetInput().GetPayloads(); len(pls) > 0 && dc.FromPayload(pls[0], &in) == nil {
				done += in.Done
			}
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			var page wire.ReplayPageResult
			if pls := a.GetResult().GetPayloads(); len(pls) > 0 && dc.FromPayload(pls[0], &page) == nil {
				done += page.Done
			}
		}
	}
	for _, act := range pending {
		var hb wire.ReplayProgress
		if pls := act.GetHeartbeatDetails().GetPayloads(); len(pls) > 0 && dc.FromPayload(pls[0], &hb) == nil {
			done += hb.Done
		}
	}
	return done, nil
}
