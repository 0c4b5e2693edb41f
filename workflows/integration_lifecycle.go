package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
)

// IntegrationLifecycleInput names the integration. State carries what an
// earlier run knew across ContinueAsNew; it is zero for a new integration.
type IntegrationLifecycleInput struct {
	Tenant      string
	Integration string
	State       IntegrationState
	// MaxTransitions is how many changes one run handles before it continues
	// as new; zero means DefaultMaxTransitions.
	MaxTransitions int
}

// DefaultMaxTransitions bounds the history of one IntegrationLifecycle run.
const DefaultMaxTransitions = 500

// IntegrationState is an integration as the control plane knows it.
type IntegrationState struct {
	// Version is the deployed spec version; 0 before the first deploy.
	Version int
	// DesiredStatus is dataplane.DesiredRunning or dataplane.DesiredStopped
	// ("" before the first deploy).
	DesiredStatus string
	// Status is what the runners reported: running, stopped or degraded;
	// activities.StatusPending when they have not confirmed in time,
	// activities.StatusDeleted once deleted.
	Status    string
	LastError string
}

// ChangeRequest asks for one lifecycle change. Version is the spec version
// for deploy and update, ignored otherwise. Actor (who asks) is required;
// both Actor and Reason go into the integration's execution log.
type ChangeRequest struct {
	Version int
	Actor   string
	Reason  string
}

// IntegrationLifecycleResult is the integration's final state; the workflow
// ends only when the integration is deleted.
type IntegrationLifecycleResult struct {
	State IntegrationState
}

// scheduleChange is the workflow.GetVersion change ID under which
// IntegrationLifecycle keeps the integration's Temporal Schedule in step
// (version 1).
const scheduleChange = "integration-schedules"

// ErrInvalidTransition is the application error type of a change refused
// in the integration's current state (for example start before deploy).
const ErrInvalidTransition = "InvalidTransition"

// IntegrationLifecycle is the one long-running workflow of an integration
// (ID IntegrationWorkflowID). It is driven by the updates IntegrationDeploy,
// IntegrationStart, IntegrationStop, IntegrationUpdate and IntegrationDelete,
// handled one at a time: each writes the desired state for the runners,
// waits for them to report it, brings the integration's schedule in step
// (created, updated, paused or deleted after the deployed spec's schedule
// and the desired status), and records the transition. It continues as
// new after MaxTransitions changes or when Temporal suggests it, and ends
// after a delete.
func IntegrationLifecycle(ctx workflow.Context, in IntegrationLifecycleInput) (IntegrationLifecycleResult, error) {
	l := &lifecycle{in: in, state: in.State, projected: in.State}
	for _, action := range []string{IntegrationDeploy, IntegrationStart, IntegrationStop, IntegrationUpdate, IntegrationDelete} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, action,
			func(ctx workflow.Context, req ChangeRequest) (IntegrationState, error) {
				return l.handle(ctx, action, req)
			},
			workflow.UpdateHandlerOptions{Validator: func(req ChangeRequest) error { return checkChange(l.projected, action, req) }},
		)
		if err != nil {
			return IntegrationLifecycleResult{}, err
		}
	}
	if err := workflow.SetQueryHandler(ctx, IntegrationStateQuery, func() (IntegrationState, error) { return l.state, nil }); err != nil {
		return IntegrationLifecycleResult{}, err
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
		return IntegrationLifecycleResult{}, err
	}
	// Let accepted changes finish (those queued after a delete are refused).
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return IntegrationLifecycleResult{}, err
	}
	if l.state.Status == activities.StatusDeleted {
		return IntegrationLifecycleResult{State: l.state}, nil
	}
	next := in
	next.State = l.state
	return IntegrationLifecycleResult{}, workflow.NewContinueAsNewError(ctx, IntegrationLifecycle, next)
}

// lifecycle is one run's state, shared by its update handlers.
type lifecycle struct {
	in IntegrationLifecycleInput
	// state is what has been carried out; projected is state with every
	// accepted change still queued applied, which validators check against.
	state, projected IntegrationState
	queued           int
	transitions      int
	// Changes are carried out in the order they were accepted: each handler
	// takes a ticket when it starts and waits until its ticket is served.
	// (A workflow.Mutex does not promise that order.)
	nextTicket, serving int
}

// handle carries out one change, after those accepted before it.
func (l *lifecycle) handle(ctx workflow.Context, action string, req ChangeRequest) (IntegrationState, error) {
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
		return IntegrationState{}, err
	}
	defer func() { l.serving++ }()
	// A change queued behind others is checked again: the state may no
	// longer allow it (a failed deploy, a delete).
	if err := checkChange(l.state, action, req); err != nil {
		return IntegrationState{}, err
	}

	tenant, integration := l.in.Tenant, l.in.Integration
	next := applyChange(l.state, action, req)
	// Histories recorded before integrations had schedules have no
	// schedule activities.
	schedules := workflow.GetVersion(ctx, scheduleChange, workflow.DefaultVersion, 1) >= 1
	var sa *activities.Schedules
	if action == IntegrationDelete {
		if schedules {
			// First, so that no run starts against a removed pipeline.
			err := workflow.ExecuteActivity(withStoreOptions(ctx), sa.RemoveSchedule,
				activities.PipelineInput{Tenant: tenant, Integration: integration}).Get(ctx, nil)
			if err != nil {
				return IntegrationState{}, err
			}
		}
		var a *activities.Integrations
		err := workflow.ExecuteActivity(withStoreOptions(ctx), a.RemoveDesiredState,
			activities.PipelineInput{Tenant: tenant, Integration: integration}).Get(ctx, nil)
		if err != nil {
			return IntegrationState{}, err
		}
		next.DesiredStatus, next.LastError = "", ""
	} else {
		var a *activities.Integrations
		err := workflow.ExecuteActivity(withStoreOptions(ctx), a.WriteDesiredState, activities.DesiredStateInput{
			Tenant: tenant, Integration: integration, Version: next.Version, Status: next.DesiredStatus,
		}).Get(ctx, nil)
		if err != nil {
			return IntegrationState{}, err
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
				KeepPaused: action == IntegrationUpdate,
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
		return IntegrationState{}, err
	}
	l.state = next
	l.transitions++
	return next, nil
}

// checkChange says whether action is allowed in state s.
func checkChange(s IntegrationState, action string, req ChangeRequest) error {
	refuse := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(action+": "+format, args...), ErrInvalidTransition, nil)
	}
	if req.Actor == "" {
		return refuse("the actor (who asks for the change) is required")
	}
	if s.Status == activities.StatusDeleted {
		return refuse(refusedDeleted)
	}
	switch action {
	case IntegrationDeploy:
		if req.Version < 1 {
			return refuse("version %d: versions start at 1", req.Version)
		}
		if req.Version < s.Version {
			return refuse("version %d is older than the deployed version %d", req.Version, s.Version)
		}
	case IntegrationUpdate:
		if s.Version == 0 {
			return refuse("nothing is deployed yet: deploy a version first")
		}
		if req.Version <= s.Version {
			return refuse("version %d is not newer than the deployed version %d", req.Version, s.Version)
		}
	case IntegrationStart, IntegrationStop:
		if s.Version == 0 {
			return refuse("nothing is deployed yet: deploy a version first")
		}
	case IntegrationDelete:
	default:
		return refuse("unknown change")
	}
	return nil
}

// applyChange returns s after action, before the runners report anything.
func applyChange(s IntegrationState, action string, req ChangeRequest) IntegrationState {
	switch action {
	case IntegrationDeploy:
		s.Version, s.DesiredStatus = req.Version, dataplane.DesiredRunning
	case IntegrationUpdate:
		s.Version = req.Version
	case IntegrationStart:
		s.DesiredStatus = dataplane.DesiredRunning
	case IntegrationStop:
		s.DesiredStatus = dataplane.DesiredStopped
	case IntegrationDelete:
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

// refusedDeleted is how a deleted integration's lifecycle refuses changes.
const refusedDeleted = "the integration is deleted"

// ChangeIntegration asks an integration's lifecycle for a change, starting
// the workflow if it is not running, and returns once the change is
// accepted (or refused). handle.Get waits for the resulting IntegrationState.
// action is one of IntegrationDeploy, IntegrationStart, IntegrationStop,
// IntegrationUpdate and IntegrationDelete; updateID, when set, makes a
// repeated request (a client retry) the same change.
//
// The lifecycle run of an integration deleted a moment ago closes right
// after the deletion is recorded; a change to an integration created again
// under the same ID in between would meet that run and be refused. Such a
// change waits for the old run to close and goes to a new one.
func ChangeIntegration(ctx context.Context, c client.Client, tenant, integration, action, updateID string, req ChangeRequest) (client.WorkflowUpdateHandle, error) {
	h, err := changeIntegration(ctx, c, tenant, integration, action, updateID, req)
	if err != nil || !refusedAsDeleted(h) {
		return h, err
	}
	if err := c.GetWorkflow(ctx, h.WorkflowID(), h.RunID()).Get(ctx, nil); err != nil {
		return nil, fmt.Errorf("%s integration %s/%s: wait for the deleted integration's lifecycle to close: %w", action, tenant, integration, err)
	}
	return changeIntegration(ctx, c, tenant, integration, action, updateID, req)
}

func changeIntegration(ctx context.Context, c client.Client, tenant, integration, action, updateID string, req ChangeRequest) (client.WorkflowUpdateHandle, error) {
	id := IntegrationWorkflowID(tenant, integration)
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                ControlTaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, IntegrationLifecycle, IntegrationLifecycleInput{Tenant: tenant, Integration: integration})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			WorkflowID:   id,
			UpdateName:   action,
			UpdateID:     updateID,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s integration %s/%s: %w", action, tenant, integration, err)
	}
	return h, nil
}

// refusedAsDeleted reports whether h's change was refused because the
// integration is deleted.
func refusedAsDeleted(h client.WorkflowUpdateHandle) bool {
	var appErr *temporal.ApplicationError
	return errors.As(Refusal(h), &appErr) && strings.HasSuffix(appErr.Message(), refusedDeleted)
}

// Refusal returns the lifecycle's refusal of a change (an application error
// of type ErrInvalidTransition), or nil, without waiting for an accepted
// change to finish: a refused (or already finished) change's handle holds its
// outcome, while an accepted one would poll the server, which a cancelled
// context stops at once.
func Refusal(h client.WorkflowUpdateHandle) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrInvalidTransition {
		return err
	}
	return nil
}
