package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/activities"
)

// Policies of integrations' schedules.
const (
	// ScheduleOverlap skips a run that would start while the integration's
	// previous run is still going: runs of one integration never overlap
	// (a poll takes in everything its source holds anyway).
	ScheduleOverlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP
	// ScheduleCatchupWindow is how late a run missed while Temporal was
	// unavailable may still start when it is back; with ScheduleOverlap,
	// at most one late run starts.
	ScheduleCatchupWindow = 24 * time.Hour
	// MaxBackfillWindow bounds the window of one backfill.
	MaxBackfillWindow = 31 * 24 * time.Hour
	// runExecutionTimeout bounds one IntegrationRun workflow.
	runExecutionTimeout = activities.DefaultRunWait + 10*time.Minute
)

// ErrInvalidSchedule is the application error type of a schedule Temporal
// refuses (retrying cannot fix it).
const ErrInvalidSchedule = "InvalidSchedule"

// ErrNoSchedule is returned when an integration has no Temporal Schedule.
var ErrNoSchedule = errors.New("the integration has no schedule")

// IntegrationSchedules manages integrations' Temporal Schedules
// (IntegrationScheduleID), each starting IntegrationRun on the integration's
// cron expression. It is the activities' ScheduleManager, and what the API
// pauses, resumes, triggers and backfills with.
type IntegrationSchedules struct {
	Client client.Client
}

var _ activities.ScheduleManager = IntegrationSchedules{}

func (m IntegrationSchedules) handle(ctx context.Context, tenant, integration string) client.ScheduleHandle {
	return m.Client.ScheduleClient().GetHandle(ctx, IntegrationScheduleID(tenant, integration))
}

// PutSchedule creates the integration's schedule, or updates an existing one
// to s's cron expression and the current action and policies; its pause
// state becomes s.Paused unless s.KeepPaused.
func (m IntegrationSchedules) PutSchedule(ctx context.Context, s activities.IntegrationSchedule) error {
	id := IntegrationScheduleID(s.Tenant, s.Integration)
	spec := client.ScheduleSpec{CronExpressions: []string{s.Cron}}
	action := &client.ScheduleWorkflowAction{
		ID:                       IntegrationRunWorkflowID(s.Tenant, s.Integration),
		Workflow:                 IntegrationRun,
		Args:                     []any{IntegrationRunInput{Tenant: s.Tenant, Integration: s.Integration}},
		TaskQueue:                ControlTaskQueue,
		WorkflowExecutionTimeout: runExecutionTimeout,
	}
	err := m.handle(ctx, s.Tenant, s.Integration).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := in.Description.Schedule
			sched.Spec, sched.Action = &spec, action
			sched.Policy = &client.SchedulePolicies{Overlap: ScheduleOverlap, CatchupWindow: ScheduleCatchupWindow}
			if sched.State == nil {
				sched.State = &client.ScheduleState{}
			}
			if !s.KeepPaused {
				sched.State.Paused, sched.State.Note = s.Paused, s.Note
			}
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		},
	})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		_, err = m.Client.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: id, Spec: spec, Action: action,
			Overlap: ScheduleOverlap, CatchupWindow: ScheduleCatchupWindow,
			Paused: s.Paused, Note: s.Note,
		})
	}
	return scheduleError("put schedule "+id, err)
}

// DeleteSchedule deletes the integration's schedule; a missing one is not
// an error.
func (m IntegrationSchedules) DeleteSchedule(ctx context.Context, tenant, integration string) error {
	err := m.handle(ctx, tenant, integration).Delete(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return scheduleError("delete schedule "+IntegrationScheduleID(tenant, integration), err)
}

// Describe returns the integration's schedule, or ErrNoSchedule.
func (m IntegrationSchedules) Describe(ctx context.Context, tenant, integration string) (*client.ScheduleDescription, error) {
	desc, err := m.handle(ctx, tenant, integration).Describe(ctx)
	if err != nil {
		return nil, scheduleError("describe schedule "+IntegrationScheduleID(tenant, integration), err)
	}
	return desc, nil
}

// Pause stops the integration's schedule from starting runs, with a note
// saying why; triggers and backfills still run.
func (m IntegrationSchedules) Pause(ctx context.Context, tenant, integration, note string) error {
	err := m.handle(ctx, tenant, integration).Pause(ctx, client.SchedulePauseOptions{Note: note})
	return scheduleError("pause schedule "+IntegrationScheduleID(tenant, integration), err)
}

// Resume lets the integration's schedule start runs again.
func (m IntegrationSchedules) Resume(ctx context.Context, tenant, integration, note string) error {
	err := m.handle(ctx, tenant, integration).Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	return scheduleError("resume schedule "+IntegrationScheduleID(tenant, integration), err)
}

// Trigger starts a run now, unless one is running (ScheduleOverlap).
func (m IntegrationSchedules) Trigger(ctx context.Context, tenant, integration string) error {
	err := m.handle(ctx, tenant, integration).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: ScheduleOverlap})
	return scheduleError("trigger schedule "+IntegrationScheduleID(tenant, integration), err)
}

// Backfill takes the runs the schedule would have started between start and
// end, now, under ScheduleOverlap: the first starts and those that would
// overlap it are skipped, which for a poll that takes in everything its
// source holds is the whole window.
func (m IntegrationSchedules) Backfill(ctx context.Context, tenant, integration string, start, end time.Time) error {
	if !end.After(start) || end.Sub(start) > MaxBackfillWindow {
		return fmt.Errorf("backfill window %s to %s: want an end after the start, at most %s later", start, end, MaxBackfillWindow)
	}
	err := m.handle(ctx, tenant, integration).Backfill(ctx, client.ScheduleBackfillOptions{
		Backfill: []client.ScheduleBackfill{{Start: start, End: end, Overlap: ScheduleOverlap}},
	})
	return scheduleError("backfill schedule "+IntegrationScheduleID(tenant, integration), err)
}

// scheduleError wraps a schedule call's error: a missing schedule is
// ErrNoSchedule, one Temporal refuses is a non-retryable ErrInvalidSchedule.
func scheduleError(what string, err error) error {
	var notFound *serviceerror.NotFound
	var invalid *serviceerror.InvalidArgument
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return fmt.Errorf("%s: %w", what, ErrNoSchedule)
	case errors.As(err, &invalid):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), ErrInvalidSchedule, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
