package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// scheduleOverlap skips a run that would start while the integration's
// previous run is still going: runs of one integration never overlap (a
// poll takes in everything its source holds anyway).
const scheduleOverlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP

// EnsureBlobJanitorSchedule creates the schedule that runs BlobJanitor every
// wire.BlobJanitorInterval; it is a no-op when the schedule exists.
func (c *Client) EnsureBlobJanitorSchedule(ctx context.Context) error {
	_, err := c.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   wire.BlobJanitorScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: wire.BlobJanitorInterval}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        wire.BlobJanitorScheduleID,
			Workflow:  wire.BlobJanitorWorkflow,
			Args:      []any{wire.BlobJanitorInput{}},
			TaskQueue: wire.ControlTaskQueue,
		},
	})
	if err = mapError("create schedule "+wire.BlobJanitorScheduleID, err); errors.Is(err, ErrExists) {
		return nil
	}
	return err
}

// EnsurePlacementSweepSchedule creates the schedule that runs
// PlacementSweep every interval, or gives an existing one that interval
// (a worker started with another VRSKY_PLACEMENT_SWEEP_EVERY).
func (c *Client) EnsurePlacementSweepSchedule(ctx context.Context, every time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	_, err := c.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      wire.PlacementSweepScheduleID,
		Spec:    spec,
		Overlap: scheduleOverlap,
		Action: &client.ScheduleWorkflowAction{
			ID:        wire.PlacementSweepScheduleID,
			Workflow:  wire.PlacementSweepWorkflow,
			TaskQueue: wire.ControlTaskQueue,
		},
	})
	if err = mapError("create schedule "+wire.PlacementSweepScheduleID, err); !errors.Is(err, ErrExists) {
		return err
	}
	err = c.c.ScheduleClient().GetHandle(ctx, wire.PlacementSweepScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := in.Description.Schedule
			if sched.Spec != nil && len(sched.Spec.Intervals) == 1 && sched.Spec.Intervals[0] == (client.ScheduleIntervalSpec{Every: every}) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			sched.Spec = &spec
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		},
	})
	return mapError("update schedule "+wire.PlacementSweepScheduleID, err)
}

func (c *Client) schedule(ctx context.Context, tenant, integration string) client.ScheduleHandle {
	return c.c.ScheduleClient().GetHandle(ctx, wire.IntegrationScheduleID(tenant, integration))
}

// PutSchedule creates the integration's schedule, or updates an existing one
// to s's cron expression and the current action and policies; its pause
// state becomes s.Paused unless s.KeepPaused. A cron expression Temporal
// refuses is ErrInvalid.
func (c *Client) PutSchedule(ctx context.Context, s wire.IntegrationSchedule) error {
	id := wire.IntegrationScheduleID(s.Tenant, s.Integration)
	spec := client.ScheduleSpec{CronExpressions: []string{s.Cron}}
	action := &client.ScheduleWorkflowAction{
		ID:                       wire.IntegrationRunWorkflowID(s.Tenant, s.Integration),
		Workflow:                 wire.IntegrationRunWorkflow,
		Args:                     []any{wire.IntegrationRunInput{Tenant: s.Tenant, Integration: s.Integration}},
		TaskQueue:                wire.ControlTaskQueue,
		WorkflowExecutionTimeout: wire.RunExecutionTimeout,
	}
	err := c.schedule(ctx, s.Tenant, s.Integration).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := in.Description.Schedule
			sched.Spec, sched.Action = &spec, action
			sched.Policy = &client.SchedulePolicies{Overlap: scheduleOverlap, CatchupWindow: wire.ScheduleCatchupWindow}
			if sched.State == nil {
				sched.State = &client.ScheduleState{}
			}
			if !s.KeepPaused {
				sched.State.Paused, sched.State.Note = s.Paused, s.Note
			}
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		},
	})
	if err = mapError("put schedule "+id, err); errors.Is(err, ErrNotFound) {
		_, err = c.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: id, Spec: spec, Action: action,
			Overlap: scheduleOverlap, CatchupWindow: wire.ScheduleCatchupWindow,
			Paused: s.Paused, Note: s.Note,
		})
		err = mapError("create schedule "+id, err)
	}
	return err
}

// DeleteSchedule deletes the integration's schedule; a missing one is not
// an error.
func (c *Client) DeleteSchedule(ctx context.Context, tenant, integration string) error {
	err := mapError("delete schedule "+wire.IntegrationScheduleID(tenant, integration), c.schedule(ctx, tenant, integration).Delete(ctx))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Schedule is an integration's Temporal Schedule as Temporal describes it.
type Schedule struct {
	Paused bool
	Note   string
	// Running names the runs in progress (their workflow IDs).
	Running []string
	// NextRuns are when the next runs are due.
	NextRuns []time.Time
	// RecentStarts are the runs it last started, newest first.
	RecentStarts []ScheduleStart
}

// ScheduleStart is one run a schedule started.
type ScheduleStart struct {
	ScheduledAt time.Time
	StartedAt   time.Time
	WorkflowID  string
	RunID       string
}

// DescribeSchedule returns the integration's schedule (ErrNotFound when it
// has none).
func (c *Client) DescribeSchedule(ctx context.Context, tenant, integration string) (Schedule, error) {
	desc, err := c.schedule(ctx, tenant, integration).Describe(ctx)
	if err != nil {
		return Schedule{}, mapError("describe schedule "+wire.IntegrationScheduleID(tenant, integration), err)
	}
	var out Schedule
	if desc.Schedule.State != nil {
		out.Paused, out.Note = desc.Schedule.State.Paused, desc.Schedule.State.Note
	}
	for _, w := range desc.Info.RunningWorkflows {
		out.Running = append(out.Running, w.WorkflowID)
	}
	for _, t := range desc.Info.NextActionTimes {
		out.NextRuns = append(out.NextRuns, t.UTC())
	}
	for _, a := range slices.Backward(desc.Info.RecentActions) {
		start := ScheduleStart{ScheduledAt: a.ScheduleTime.UTC(), StartedAt: a.ActualTime.UTC()}
		if a.StartWorkflowResult != nil {
			start.WorkflowID, start.RunID = a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID
		}
		out.RecentStarts = append(out.RecentStarts, start)
	}
	return out, nil
}

// PauseSchedule stops the integration's schedule from starting runs, with a
// note saying why; triggers and backfills still run.
func (c *Client) PauseSchedule(ctx context.Context, tenant, integration, note string) error {
	err := c.schedule(ctx, tenant, integration).Pause(ctx, client.SchedulePauseOptions{Note: note})
	return mapError("pause schedule "+wire.IntegrationScheduleID(tenant, integration), err)
}

// ResumeSchedule lets the integration's schedule start runs again.
func (c *Client) ResumeSchedule(ctx context.Context, tenant, integration, note string) error {
	err := c.schedule(ctx, tenant, integration).Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	return mapError("resume schedule "+wire.IntegrationScheduleID(tenant, integration), err)
}

// TriggerSchedule starts a run now, unless one is running (runs never
// overlap).
func (c *Client) TriggerSchedule(ctx context.Context, tenant, integration string) error {
	err := c.schedule(ctx, tenant, integration).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: scheduleOverlap})
	return mapError("trigger schedule "+wire.IntegrationScheduleID(tenant, integration), err)
}

// BackfillSchedule takes the runs the schedule would have started between
// start and end, now: the first starts and those that would overlap it are
// skipped, which for a poll that takes in everything its source holds is
// the whole window. A window that is empty or longer than
// wire.MaxBackfillWindow is ErrInvalid.
func (c *Client) BackfillSchedule(ctx context.Context, tenant, integration string, start, end time.Time) error {
	if !end.After(start) || end.Sub(start) > wire.MaxBackfillWindow {
		return fmt.Errorf("backfill window %s to %s: %w: want an end after the start, at most %s later", start, end, ErrInvalid, wire.MaxBackfillWindow)
	}
	err := c.schedule(ctx, tenant, integration).Backfill(ctx, client.ScheduleBackfillOptions{
		Backfill: []client.ScheduleBackfill{{Start: start, End: end, Overlap: scheduleOverlap}},
	})
	return mapError("backfill schedule "+wire.IntegrationScheduleID(tenant, integration), err)
}
