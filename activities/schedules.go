package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
)

// Schedules holds the activities that keep each integration's Temporal
// Schedule in step with its deployed spec.
type Schedules struct {
	Store   *store.Store
	Control *control.Client
}

// SyncScheduleInput names the deployed version and its desired status.
type SyncScheduleInput struct {
	Tenant      string
	Integration string
	Version     int
	// Running is true when the desired status is running; a stopped
	// integration's schedule is paused.
	Running bool
	// KeepPaused leaves an existing schedule paused or not as it is (a
	// new version rolled out keeps a pause asked for through the API).
	KeepPaused bool
	// Actor asked for the change; it goes into the schedule's note.
	Actor string
}

// SyncScheduleResult says what the integration's schedule now is.
type SyncScheduleResult struct {
	// Cron is the schedule's cron expression; empty when the deployed
	// version has no schedule (and any schedule was deleted).
	Cron string
}

// SyncSchedule makes the integration's Temporal Schedule match the spec of
// the deployed version: created or updated with the spec's cron expression,
// paused when the integration is stopped (and, unless KeepPaused, resumed
// when it runs), or deleted when the spec has no schedule. Doing it again
// is harmless.
func (a *Schedules) SyncSchedule(ctx context.Context, in SyncScheduleInput) (SyncScheduleResult, error) {
	p := dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration}
	s, err := readSpec(ctx, a.Store, p, in.Version)
	if err != nil {
		return SyncScheduleResult{}, err
	}
	if s.Schedule == "" {
		return SyncScheduleResult{}, a.Control.DeleteSchedule(ctx, in.Tenant, in.Integration)
	}
	note := fmt.Sprintf("version %d running", in.Version)
	if !in.Running {
		note = fmt.Sprintf("version %d stopped", in.Version)
	}
	if in.Actor != "" {
		note += " by " + in.Actor
	}
	err = scheduleError(a.Control.PutSchedule(ctx, wire.IntegrationSchedule{
		Tenant: in.Tenant, Integration: in.Integration, Cron: s.Schedule,
		Paused: !in.Running, KeepPaused: in.KeepPaused && in.Running, Note: note,
	}))
	if err != nil {
		return SyncScheduleResult{}, err
	}
	return SyncScheduleResult{Cron: s.Schedule}, nil
}

// RemoveSchedule deletes the integration's Temporal Schedule, if it has
// one. Removing it again is harmless.
func (a *Schedules) RemoveSchedule(ctx context.Context, in PipelineInput) error {
	return a.Control.DeleteSchedule(ctx, in.Tenant, in.Integration)
}

// scheduleError makes a schedule Temporal refuses (a cron expression it
// cannot parse) a non-retryable wire.ErrInvalidSchedule: retrying cannot
// fix it.
func scheduleError(err error) error {
	if errors.Is(err, control.ErrInvalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), wire.ErrInvalidSchedule, err)
	}
	return err
}
