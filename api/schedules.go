package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// recentRuns is how many runs get-integration-schedule lists.
const recentRuns = 10

// IntegrationSchedule is the Temporal Schedule an integration with a
// schedule runs on, and its recent runs.
type IntegrationSchedule struct {
	ID            string          `json:"id" doc:"The schedule's ID in Temporal."`
	Integration   string          `json:"integration"`
	Cron          string          `json:"cron" doc:"The deployed version's schedule: five cron fields (or @hourly, @daily…), in UTC."`
	Version       int             `json:"version" doc:"The deployed version, whose schedule this is."`
	Paused        bool            `json:"paused" doc:"While paused no run starts on the schedule; trigger and backfill still run."`
	Note          string          `json:"note,omitempty" doc:"Who last paused or resumed it, and why."`
	Overlap       string          `json:"overlap" enum:"skip" doc:"A run due while another one runs is skipped: runs never overlap."`
	CatchupWindow string          `json:"catchup_window" doc:"How late a run missed while the control plane was down still starts (at most one)."`
	Running       bool            `json:"running" doc:"A run is in progress."`
	NextRuns      []time.Time     `json:"next_runs" doc:"When the next runs are due; none while paused."`
	RecentRuns    []ScheduleRun   `json:"recent_runs" doc:"The last runs, newest first, as the runners reported them."`
	RecentStarts  []ScheduleStart `json:"recent_starts" doc:"The runs the schedule last started (due, triggered or backfilled), newest first."`
}

// ScheduleRun is one run as the runner that served it reported it.
type ScheduleRun struct {
	RunID      string     `json:"run_id" doc:"The run's ID: the Temporal run ID of its IntegrationRun workflow."`
	Status     string     `json:"status" enum:"running,succeeded,failed"`
	Runner     string     `json:"runner" doc:"The runner that polled the source."`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Messages   int        `json:"messages" doc:"Messages taken in, also by a failed run."`
	Error      string     `json:"error,omitempty"`
}

// ScheduleStart is one IntegrationRun workflow the schedule started.
type ScheduleStart struct {
	ScheduledAt time.Time `json:"scheduled_at" doc:"The time it was due (for a trigger, when it was asked for)."`
	StartedAt   time.Time `json:"started_at"`
	WorkflowID  string    `json:"workflow_id"`
	RunID       string    `json:"run_id"`
}

// IntegrationScheduleOutput is an integration's schedule.
type IntegrationScheduleOutput struct {
	Body IntegrationSchedule
}

// PauseResumeInput pauses or resumes a schedule, saying why.
type PauseResumeInput struct {
	IntegrationPath
	Body *ChangeReason
}

// BackfillInput is the window to backfill.
type BackfillInput struct {
	IntegrationPath
	Body struct {
		Start time.Time `json:"start" doc:"Start of the window (RFC 3339), included."`
		End   time.Time `json:"end" doc:"End of the window (RFC 3339), included: after start, at most 31 days later, not in the future."`
	}
}

// ScheduleActionAccepted says that Temporal took a trigger or a backfill.
type ScheduleActionAccepted struct {
	ScheduleID string `json:"schedule_id"`
	Action     string `json:"action" enum:"trigger,backfill"`
	// ScheduledTimes is, for a backfill, how many times of the schedule the
	// window holds.
	ScheduledTimes int `json:"scheduled_times,omitempty" doc:"For a backfill: the schedule's times in the window. The first runs now; those that would overlap it are skipped, since one run takes in everything the source holds."`
}

// ScheduleActionOutput is an accepted trigger or backfill.
type ScheduleActionOutput struct {
	Body ScheduleActionAccepted
}

// schedules serves the schedule operations.
type schedules struct {
	st    *store.Store
	sched *control.Client // nil: every operation answers 503
	state *dataplane.State
	log   *slog.Logger
	now   func() time.Time
}

// RegisterSchedules adds the operations on the schedules of the caller's
// tenant's integrations: read one with its next and recent runs, pause,
// resume, trigger a run now and backfill a missed window, through the
// control-plane client ctl (nil: they answer 503). Recent runs come from
// the runners' reports in state, when set.
func RegisterSchedules(api huma.API, st *store.Store, ctl *control.Client, state *dataplane.State, log *slog.Logger) {
	h := &schedules{st: st, sched: ctl, state: state, log: log, now: time.Now}
	read := requireScopes(store.ScopeRead)
	write := requireScopes(store.ScopeWrite)
	tags := []string{"Schedules"}
	const about = " An integration has a schedule when its deployed version's spec sets `schedule` (a cron expression, " +
		"for a consumer that polls, such as file): each run polls the source once. 404 for an integration without one; " +
		"503 when the control plane is unavailable."
	errs := withAuthErrors(http.StatusNotFound, http.StatusServiceUnavailable)
	changeErrs := withAuthErrors(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusServiceUnavailable)

	huma.Register(api, huma.Operation{
		OperationID: "get-integration-schedule",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/schedule",
		Summary:     "Get an integration's schedule",
		Description: "Returns the schedule: its cron expression, whether it is paused, when the next runs are due, " +
			"the last runs with what each took in, and the runs it last started." + about + " Needs scope read.",
		Tags:     tags,
		Security: read,
		Errors:   errs,
	}, h.get)

	for _, op := range []struct {
		id, path, summary, doc string
		handler                func(context.Context, *PauseResumeInput) (*IntegrationScheduleOutput, error)
	}{
		{"pause-integration-schedule", "pause", "Pause an integration's schedule",
			"Stops runs from starting on the schedule until it is resumed (a run in progress finishes); " +
				"trigger and backfill still run. The integration keeps running.", h.pause},
		{"resume-integration-schedule", "resume", "Resume an integration's schedule",
			"Lets runs start on the schedule again. 409 while the integration is stopped: starting it resumes its schedule.", h.resume},
	} {
		huma.Register(api, huma.Operation{
			OperationID:  op.id,
			Method:       http.MethodPost,
			Path:         "/v1/integrations/{integrationId}/schedule/" + op.path,
			Summary:      op.summary,
			Description:  op.doc + " `reason` goes into the schedule's note. It returns the schedule." + about + " Needs scope write.",
			Tags:         tags,
			Security:     write,
			MaxBodyBytes: MaxJSONBody,
			Errors:       changeErrs,
		}, op.handler)
	}

	huma.Register(api, huma.Operation{
		OperationID: "trigger-integration-schedule",
		Method:      http.MethodPost,
		Path:        "/v1/integrations/{integrationId}/schedule/trigger",
		Summary:     "Run a scheduled integration now",
		Description: "Starts a run now, paused or not; follow it with get-integration-schedule and list-integration-logs. " +
			"409 while the integration is stopped or a run is in progress (runs never overlap)." + about + " Needs scope write.",
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusAccepted,
		Errors:        changeErrs,
	}, h.trigger)

	huma.Register(api, huma.Operation{
		OperationID: "backfill-integration-schedule",
		Method:      http.MethodPost,
		Path:        "/v1/integrations/{integrationId}/schedule/backfill",
		Summary:     "Backfill a missed window of a scheduled integration",
		Description: "Takes, now, the runs the schedule would have started from `start` to `end` (RFC 3339, both included): " +
			"the first runs, and those that would overlap it are skipped, since one run takes in everything the source holds. " +
			"422 when end is not after start, the window is over 31 days, ends in the future or holds no time of the schedule; " +
			"409 while the integration is stopped." + about + " Needs scope write.",
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        changeErrs,
	}, h.backfill)
}

// pause stops runs from starting on the schedule.
func (h *schedules) pause(ctx context.Context, in *PauseResumeInput) (*IntegrationScheduleOutput, error) {
	return h.pauseOrResume(ctx, "pause-integration-schedule", "pause", true, in)
}

// resume lets runs start on the schedule again.
func (h *schedules) resume(ctx context.Context, in *PauseResumeInput) (*IntegrationScheduleOutput, error) {
	return h.pauseOrResume(ctx, "resume-integration-schedule", "resume", false, in)
}

// pauseOrResume pauses or resumes the schedule with a note naming the key
// and its reason.
func (h *schedules) pauseOrResume(ctx context.Context, op, path string, pause bool, in *PauseResumeInput) (*IntegrationScheduleOutput, error) {
	p, _ := PrincipalFrom(ctx)
	it, cron, err := h.lookup(ctx, op, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	note := "resumed by key " + p.KeyID
	if pause {
		note = "paused by key " + p.KeyID
	} else if it.DesiredStatus != dataplane.DesiredRunning {
		return nil, huma.Error409Conflict("the integration is stopped: start it, which resumes its schedule")
	}
	if in.Body != nil && in.Body.Reason != "" {
		note += ": " + in.Body.Reason
	}
	if pause {
		err = h.sched.PauseSchedule(ctx, p.TenantID, it.ID, note)
	} else {
		err = h.sched.ResumeSchedule(ctx, p.TenantID, it.ID, note)
	}
	if err != nil {
		return nil, h.temporalError(ctx, op, p.TenantID, it, err)
	}
	h.log.InfoContext(ctx, "integration schedule "+path+"d", "tenant", p.TenantID, "integration", it.ID, "by_key_id", p.KeyID)
	return h.describe(ctx, op, p.TenantID, it, cron)
}

// get answers the schedule with its next and recent runs.
func (h *schedules) get(ctx context.Context, in *IntegrationPath) (*IntegrationScheduleOutput, error) {
	p, _ := PrincipalFrom(ctx)
	it, cron, err := h.lookup(ctx, "get-integration-schedule", p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	return h.describe(ctx, "get-integration-schedule", p.TenantID, it, cron)
}

// trigger starts a run now.
func (h *schedules) trigger(ctx context.Context, in *IntegrationPath) (*ScheduleActionOutput, error) {
	const op = "trigger-integration-schedule"
	p, _ := PrincipalFrom(ctx)
	it, _, err := h.lookup(ctx, op, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	if it.DesiredStatus != dataplane.DesiredRunning {
		return nil, huma.Error409Conflict("the integration is stopped: start it first")
	}
	desc, err := h.sched.DescribeSchedule(ctx, p.TenantID, it.ID)
	if err != nil {
		return nil, h.temporalError(ctx, op, p.TenantID, it, err)
	}
	if len(desc.Running) > 0 {
		return nil, huma.Error409Conflict(fmt.Sprintf("a run is in progress (workflow %s): runs never overlap; trigger again once it finished",
			desc.Running[0]))
	}
	if err := h.sched.TriggerSchedule(ctx, p.TenantID, it.ID); err != nil {
		return nil, h.temporalError(ctx, op, p.TenantID, it, err)
	}
	h.log.InfoContext(ctx, "integration schedule triggered", "tenant", p.TenantID, "integration", it.ID, "by_key_id", p.KeyID)
	return &ScheduleActionOutput{Body: ScheduleActionAccepted{
		ScheduleID: wire.IntegrationScheduleID(p.TenantID, it.ID), Action: "trigger",
	}}, nil
}

// backfill takes the runs of a missed window now.
func (h *schedules) backfill(ctx context.Context, in *BackfillInput) (*ScheduleActionOutput, error) {
	const op = "backfill-integration-schedule"
	p, _ := PrincipalFrom(ctx)
	start, end := in.Body.Start.UTC(), in.Body.End.UTC()
	switch {
	case !end.After(start):
		return nil, huma.Error422UnprocessableEntity("the window is empty",
			&huma.ErrorDetail{Location: "body.end", Message: "must be after start", Value: in.Body.End})
	case end.Sub(start) > wire.MaxBackfillWindow:
		return nil, huma.Error422UnprocessableEntity("the window is too long",
			&huma.ErrorDetail{Location: "body.end", Message: "must be at most 31 days after start", Value: in.Body.End})
	case end.After(h.now().Add(time.Minute)):
		return nil, huma.Error422UnprocessableEntity("the window ends in the future",
			&huma.ErrorDetail{Location: "body.end", Message: "must not be in the future: a backfill covers past runs", Value: in.Body.End})
	}
	it, cron, err := h.lookup(ctx, op, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	if it.DesiredStatus != dataplane.DesiredRunning {
		return nil, huma.Error409Conflict("the integration is stopped: start it first")
	}
	times, err := spec.ScheduleTimes(cron, start, end, int(wire.MaxBackfillWindow/time.Minute)+1)
	if err != nil {
		return nil, huma.Error500InternalServerError("internal error")
	}
	if len(times) == 0 {
		return nil, huma.Error422UnprocessableEntity(fmt.Sprintf("no time of the schedule %q falls in the window", cron),
			&huma.ErrorDetail{Location: "body", Message: "holds no scheduled time"})
	}
	if err := h.sched.BackfillSchedule(ctx, p.TenantID, it.ID, start, end); err != nil {
		return nil, h.temporalError(ctx, op, p.TenantID, it, err)
	}
	h.log.InfoContext(ctx, "integration schedule backfilled", "tenant", p.TenantID, "integration", it.ID,
		"start", start, "end", end, "by_key_id", p.KeyID)
	return &ScheduleActionOutput{Body: ScheduleActionAccepted{
		ScheduleID: wire.IntegrationScheduleID(p.TenantID, it.ID), Action: "backfill", ScheduledTimes: len(times),
	}}, nil
}

// lookup returns one of the tenant's integrations and its deployed
// schedule, or the operation's 404 (or 503 without a control plane).
func (h *schedules) lookup(ctx context.Context, op, tenant, id string) (store.Integration, string, error) {
	if !spec.ValidName(id) {
		return store.Integration{}, "", huma.Error404NotFound("not found")
	}
	it, err := h.st.GetIntegration(ctx, tenant, id)
	if err != nil {
		return it, "", storeError(ctx, h.log, op, tenant, err)
	}
	if h.sched == nil {
		return it, "", unavailable("schedules are unavailable: the control plane is not configured")
	}
	if it.DeployedVersion == 0 {
		return it, "", huma.Error404NotFound(fmt.Sprintf("integration %s has no schedule: it is not deployed yet", it.ID))
	}
	versions, err := h.st.ListVersions(ctx, tenant, id)
	if err != nil {
		return it, "", storeError(ctx, h.log, op, tenant, err)
	}
	i := slices.IndexFunc(versions, func(v store.IntegrationVersion) bool { return v.Version == it.DeployedVersion })
	if i < 0 || versions[i].Spec.Schedule == "" {
		return it, "", huma.Error404NotFound(fmt.Sprintf(
			"integration %s has no schedule: its deployed version %d sets none (deploy a version whose spec sets schedule)", it.ID, it.DeployedVersion))
	}
	return it, versions[i].Spec.Schedule, nil
}

// describe answers the integration's schedule as Temporal and the runners
// report it.
func (h *schedules) describe(ctx context.Context, op, tenant string, it store.Integration, cron string) (*IntegrationScheduleOutput, error) {
	desc, err := h.sched.DescribeSchedule(ctx, tenant, it.ID)
	if err != nil {
		return nil, h.temporalError(ctx, op, tenant, it, err)
	}
	out := IntegrationSchedule{
		ID: wire.IntegrationScheduleID(tenant, it.ID), Integration: it.ID, Cron: cron, Version: it.DeployedVersion,
		Overlap: "skip", CatchupWindow: wire.ScheduleCatchupWindow.String(),
		Running: len(desc.Running) > 0, Paused: desc.Paused, Note: desc.Note,
		NextRuns: []time.Time{}, RecentRuns: []ScheduleRun{}, RecentStarts: []ScheduleStart{},
	}
	if !out.Paused {
		out.NextRuns = append(out.NextRuns, desc.NextRuns...)
	}
	for _, a := range desc.RecentStarts {
		out.RecentStarts = append(out.RecentStarts, ScheduleStart{ScheduledAt: a.ScheduledAt, StartedAt: a.StartedAt, WorkflowID: a.WorkflowID, RunID: a.RunID})
	}
	if h.state != nil {
		runs, err := h.state.RecentRuns(ctx, dataplane.Pipeline{Tenant: tenant, Integration: it.ID}, recentRuns)
		if err != nil {
			h.log.WarnContext(ctx, "read recent runs", "tenant", tenant, "integration", it.ID, "error", err)
		}
		for _, r := range runs {
			out.RecentRuns = append(out.RecentRuns, runOut(r))
		}
	}
	return &IntegrationScheduleOutput{Body: out}, nil
}

func runOut(r dataplane.RunResult) ScheduleRun {
	run := ScheduleRun{RunID: r.RunID, Status: "running", Runner: r.Runner, StartedAt: r.StartedAt.UTC(), Messages: r.Messages, Error: r.Error}
	if r.Finished() {
		finished := r.FinishedAt.UTC()
		run.FinishedAt, run.Status = &finished, "succeeded"
		if r.Error != "" {
			run.Status = "failed"
		}
	}
	return run
}

// temporalError answers a failed schedule call: 404 when the schedule does
// not exist (the lifecycle has yet to create it, or is removing it), 503
// otherwise.
func (h *schedules) temporalError(ctx context.Context, op, tenant string, it store.Integration, err error) error {
	if errors.Is(err, control.ErrNotFound) {
		return huma.Error404NotFound(fmt.Sprintf(
			"integration %s has no schedule in the control plane: its lifecycle is creating or removing it (see its status and logs)", it.ID))
	}
	h.log.ErrorContext(ctx, "operation failed", "operation", op, "tenant", tenant, "integration", it.ID, "error", err)
	return unavailable("the control plane did not answer; retry later")
}
