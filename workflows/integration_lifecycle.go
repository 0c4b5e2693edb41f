package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// DefaultMaxTransitions bounds the history of one IntegrationLifecycle run.
const DefaultMaxTransitions = 500

// scheduleChange is the workflow.GetVersion change ID under which
// IntegrationLifecycle keeps the integration's Temporal Schedule in step
// (version 1).
const scheduleChange = "integration-schedules"

// IntegrationLifecycle is the one long-running workflow of an integration
// (ID IntegrationWorkflowID). It is driven by the updates IntegrationDeploy,
// IntegrationStart, IntegrationStop, IntegrationUpdate and IntegrationDelete,
// handled one at a time: each writes the desired state for the runners,
// waits for them to report it, brings the integration's schedule in step
// (created, updated, paused or deleted after the deployed spec's schedule
// and the desired status), and records the transition. It continues as
// new after MaxTransitions changes or when Temporal suggests it, and ends
// after a delete.
func IntegrationLifecycle(ctx workflow.Context, in wire.IntegrationLifecycleInput) (wire.IntegrationLifecycleResult, error) {
	l := &lifecycle{in: in, state: in.State, projected: in.State}
	for _, action := range []string{wire.IntegrationDeploy, wire.IntegrationStart, wire.IntegrationStop, wire.IntegrationUpdate, wire.IntegrationDelete} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, action,
			func(ctx workflow.Context, req wire.ChangeRequest) (wire.IntegrationState, error) {
				return l.handle(ctx, action, req)
			},
			workflow.UpdateHandlerOptions{Validator: func(req wire.ChangeRequest) error { return checkChange(l.projected, action, req) }},
		)
		if err != nil {
			return wire.IntegrationLifecycleResult{}, err
		}
	}
	if err := workflow.SetQueryHandler(ctx, wire.IntegrationStateQuery, func() (wire.IntegrationState, error) { return l.state, nil }); err != nil {
		return wire.IntegrationLifecycleResult{}, err
	}

	maxTransitions := in.MaxTransitions
	if maxTransitions <= 0 {
		maxTransitions = DefaultMaxTransitions
	}
	err := workflow.Await(ctx, func() bool {
		return l.state.Status == activities.StatusDeleted || l.transitions >= maxTransitions ||
			workflow.GetInfo(ctx).GetContinueAsNewSuggested()
	})
	if err != nil {
		return wire.IntegrationLifecycleResult{}, err
	}
	// Let accepted changes finish (those queued after a delete are refused).
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return wire.IntegrationLifecycleResult{}, err
	}
	if l.state.Status == activities.StatusDeleted {
		return wire.IntegrationLifecycleResult{State: l.state}, nil
	}
	next := in
	next.State = l.state
	return wire.IntegrationLifecycleResult{}, workflow.NewContinueAsNewError(ctx, IntegrationLifecycle, next)
}

// lifecycle is one run's state, shared by its update handlers.
type lifecycle struct {
	in wire.IntegrationLifecycleInput
	// state is what has been carried out; projected is state with every
	// accepted change still queued applied, which validators check against.
	state, projected wire.IntegrationState
	queued           int
	transitions      int
	// Changes are carried out in the order they were accepted: each handler
	// takes a ticket when it starts and waits until its ticket is served.
	// (A workflow.Mutex does not promise that order.)
	nextTicket, serving int
}

// handle carries out one change, after those accepted before it.
func (l *lifecycle) handle(ctx workflow.Context, action string, req wire.ChangeRequest) (wire.IntegrationState, error) {
	l.projected = applyChange(l.projected, action, req)
	l.queued++
	defer func() {
		l.queued--
		if l.queued == 0 {
			l.projected = l.state
		}
	}()
	ticket := l.nextTicket
	l.nextTicket++
	if err := workflow.Await(ctx, func() bool { return l.serving == ticket }); err != nil {
		return wire.IntegrationState{}, err
	}
	defer func() { l.serving++ }()
	// A change queued behind others is checked again: the state may no
	// longer allow it (a failed deploy, a delete).
	if err := checkChange(l.state, action, req); err != nil {
		return wire.IntegrationState{}, err
	}

	tenant, integration := l.in.Tenant, l.in.Integration
	next := applyChange(l.state, action, req)
	// Histories recorded before integrations had schedules have no
	// schedule activities.
	schedules := workflow.GetVersion(ctx, scheduleChange, workflow.DefaultVersion, 1) >= 1
	var sa *activities.Schedules
	if action == wire.IntegrationDelete {
		if schedules {
			// First, so that no run starts against a removed pipeline.
			err := workflow.ExecuteActivity(withStoreOptions(ctx), sa.RemoveSchedule,
				activities.PipelineInput{Tenant: tenant, Integration: integration}).Get(ctx, nil)
			if err != nil {
				return wire.IntegrationState{}, err
			}
		}
		var a *activities.Integrations
		err := workflow.ExecuteActivity(withStoreOptions(ctx), a.RemoveDesiredState,
			activities.PipelineInput{Tenant: tenant, Integration: integration}).Get(ctx, nil)
		if err != nil {
			return wire.IntegrationState{}, err
		}
		next.DesiredStatus, next.LastError = "", ""
	} else {
		var a *activities.Integrations
		err := workflow.ExecuteActivity(withStoreOptions(ctx), a.WriteDesiredState, activities.DesiredStateInput{
			Tenant: tenant, Integration: integration, Version: next.Version, Status: next.DesiredStatus,
		}).Get(ctx, nil)
		if err != nil {
			return wire.IntegrationState{}, err
		}
		// The runners now follow the new desired state, whatever comes next.
		l.state.Version, l.state.DesiredStatus = next.Version, next.DesiredStatus

		want := dataplane.StatusStopped
		if next.DesiredStatus == dataplane.DesiredRunning {
			want = dataplane.StatusRunning
		}
		var rs activities.RunnerStatus
		err = workflow.ExecuteActivity(withAwaitOptions(ctx), a.AwaitRunnerStatus, activities.AwaitStatusInput{
			Tenant: tenant, Integration: integration, Version: next.Version, Status: want,
		}).Get(ctx, &rs)
		if err != nil {
			rs = activities.RunnerStatus{Status: activities.StatusPending, LastError: "read runner status: " + err.Error()}
		}
		next.Status, next.LastError = rs.Status, rs.LastError

		if schedules {
			// The runners run the new desired state whatever becomes of the
			// schedule: a failure here is recorded, not undone.
			err = workflow.ExecuteActivity(withStoreOptions(ctx), sa.SyncSchedule, activities.SyncScheduleInput{
				Tenant: tenant, Integration: integration, Version: next.Version,
				Running:    next.DesiredStatus == dataplane.DesiredRunning,
				KeepPaused: action == wire.IntegrationUpdate,
				Actor:      req.Actor,
			}).Get(ctx, nil)
			if err != nil && next.LastError == "" {
				next.LastError = "schedule: " + err.Error()
			}
		}
	}

	var a *activities.Integrations
	err := workflow.ExecuteActivity(withStoreOptions(ctx), a.RecordTransition, activities.Transition{
		ID:     workflow.GetInfo(ctx).WorkflowExecution.RunID + "/" + workflow.GetCurrentUpdateInfo(ctx).ID,
		Tenant: tenant, Integration: integration,
		Actor: req.Actor, Action: action, Reason: req.Reason,
		FromStatus: l.state.Status,
		Version:    next.Version, DesiredStatus: next.DesiredStatus, Status: next.Status, LastError: next.LastError,
	}).Get(ctx, nil)
	if err != nil {
		return wire.IntegrationState{}, err
	}
	l.state = next
	l.transitions++
	return next, nil
}

// checkChange says whether action is allowed in state s.
func checkChange(s wire.IntegrationState, action string, req wire.ChangeRequest) error {
	refuse := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(action+": "+format, args...), wire.ErrInvalidTransition, nil)
	}
	if req.Actor == "" {
		return refuse("the actor (who asks for the change) is required")
	}
	if s.Status == activities.StatusDeleted {
		return refuse(wire.RefusedDeleted)
	}
	switch action {
	case wire.IntegrationDeploy:
		if req.Version < 1 {
			return refuse("version %d: versions start at 1", req.Version)
		}
		if req.Version < s.Version {
			return refuse("version %d is older than the deployed version %d", req.Version, s.Version)
		}
	case wire.IntegrationUpdate:
		if s.Version == 0 {
			return refuse("nothing is deployed yet: deploy a version first")
		}
		if req.Version <= s.Version {
			return refuse("version %d is not newer than the deployed version %d", req.Version, s.Version)
		}
	case wire.IntegrationStart, wire.IntegrationStop:
		if s.Version == 0 {
			return refuse("nothing is deployed yet: deploy a version first")
		}
	case wire.IntegrationDelete:
	default:
		return refuse("unknown change")
	}
	return nil
}

// applyChange returns s after action, before the runners report anything.
func applyChange(s wire.IntegrationState, action string, req wire.ChangeRequest) wire.IntegrationState {
	switch action {
	case wire.IntegrationDeploy:
		s.Version, s.DesiredStatus = req.Version, dataplane.DesiredRunning
	case wire.IntegrationUpdate:
		s.Version = req.Version
	case wire.IntegrationStart:
		s.DesiredStatus = dataplane.DesiredRunning
	case wire.IntegrationStop:
		s.DesiredStatus = dataplane.DesiredStopped
	case wire.IntegrationDelete:
		s.Status = activities.StatusDeleted
	}
	return s
}

// withStoreOptions is for the short, idempotent writes to KV and PostgreSQL.
func withStoreOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	})
}

// withAwaitOptions is for AwaitRunnerStatus, which waits up to 90 seconds
// (its default MaxWait) and heartbeats meanwhile.
func withAwaitOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumAttempts:    3,
		},
	})
}
