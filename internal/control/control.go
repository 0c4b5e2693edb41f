// Package control is VRSky's one client of Temporal: every place that asks
// the control plane for something — the API, the activities that manage
// schedules and take integrations down, the worker role that ensures the
// janitor's schedule — goes through a Client. It starts workflows, sends
// lifecycle updates, reads a DLQ replay's progress and manages Temporal
// Schedules, and maps Temporal's errors to its own (ErrExists, ErrRefused,
// ErrNotFound, ErrUnavailable), so that its callers never import
// go.temporal.io.
//
// It never waits on a workflow run inside a request: it starts, asks, or
// reads, and returns. It imports neither workflows/ nor activities/: the
// names and types it shares with them are in internal/control/wire.
package control

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// Errors of a Client. Every error a Client returns is one of these, or
// wraps one, or is the caller's context error.
var (
	// ErrExists is a workflow (or schedule) that exists, or existed, under
	// the ID asked for: a tenant ID taken, for example.
	ErrExists = errors.New("already exists")
	// ErrNotFound is a workflow or schedule that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable is a control plane that did not answer or did not
	// take the request; retrying later may help.
	ErrUnavailable = errors.New("the control plane is unavailable")
	// ErrInvalid is a request Temporal refuses as malformed (a schedule
	// it cannot parse, say); retrying does not help.
	ErrInvalid = errors.New("refused as invalid")
)

// RefusedError is a change the workflow refused in its current state
// (a start before the first deploy, say); Reason says why.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = &RefusedError{}

// Is makes errors.Is(err, ErrRefused) true for every refusal.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Client asks the control plane for lifecycles. The zero value is not
// usable; build it with New.
type Client struct {
	c client.Client
}

// New returns a Client on the Temporal client c (which the caller dials
// and closes).
func New(c client.Client) *Client { return &Client{c: c} }

// Temporal is the underlying Temporal client, for the worker that runs the
// workflows (cmd/vrsky/internal/roles) and for tests that wait on a run.
func (c *Client) Temporal() client.Client { return c.c }

// CheckHealth reports whether Temporal's frontend answers.
func (c *Client) CheckHealth(ctx context.Context) error {
	if _, err := c.c.CheckHealth(ctx, nil); err != nil {
		return mapError("check health", err)
	}
	return nil
}

// mapError wraps err, met while doing what, in the Client's own errors.
func mapError(what string, err error) error {
	var (
		started  *serviceerror.WorkflowExecutionAlreadyStarted
		exists   *serviceerror.AlreadyExists
		notFound *serviceerror.NotFound
		invalid  *serviceerror.InvalidArgument
		appErr   *temporal.ApplicationError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	case errors.As(err, &started), errors.As(err, &exists), errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return fmt.Errorf("%s: %w", what, ErrExists)
	case errors.As(err, &notFound):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: %w: %v", what, ErrInvalid, err)
	case errors.As(err, &appErr) && appErr.Type() == wire.ErrInvalidTransition:
		return &RefusedError{Reason: appErr.Message()}
	}
	return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
}

// ProvisionTenant starts the tenant's TenantProvision run and returns
// without waiting for it (the tenant's row tells how it ends). ErrExists
// when a run for that ID is in progress or succeeded. retry is set when
// the tenant's earlier provisioning failed: a run of it that has not
// closed yet is terminated (nothing is left for it to do).
func (c *Client) ProvisionTenant(ctx context.Context, in wire.TenantProvisionInput, retry bool) error {
	opts := client.StartWorkflowOptions{
		ID:                    wire.TenantProvisionWorkflowID(in.Tenant.ID),
		TaskQueue:             wire.ControlTaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		// A run in progress or done means the ID is taken: never join it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
	if retry {
		opts.WorkflowIDConflictPolicy = enums.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
		opts.WorkflowExecutionErrorWhenAlreadyStarted = false
	}
	_, err := c.c.ExecuteWorkflow(ctx, opts, wire.TenantProvisionWorkflow, in)
	return mapError("provision tenant "+in.Tenant.ID, err)
}

// DecommissionTenant starts (or joins) the tenant's TenantDecommission run
// and returns without waiting for it.
func (c *Client) DecommissionTenant(ctx context.Context, tenant string) error {
	_, err := c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wire.TenantDecommissionWorkflowID(tenant),
		TaskQueue:                wire.ControlTaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wire.TenantDecommissionWorkflow, wire.TenantDecommissionInput{Tenant: tenant})
	return mapError("decommission tenant "+tenant, err)
}

// ChangeTenantLimits starts the TenantLimits run applying a tenant's new
// JetStream limits (a run still going is replaced) and returns without
// waiting for it.
func (c *Client) ChangeTenantLimits(ctx context.Context, tenant string, limits wire.Limits) error {
	_, err := c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wire.TenantLimitsWorkflowID(tenant),
		TaskQueue:                wire.ControlTaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
	}, wire.TenantLimitsWorkflow, wire.TenantLimitsInput{Tenant: tenant, Limits: limits})
	return mapError("change limits of tenant "+tenant, err)
}

// TerminateIntegration ends an integration's lifecycle workflow and deletes
// its schedule, for a tenant being decommissioned; either missing is not
// an error.
func (c *Client) TerminateIntegration(ctx context.Context, tenant, integration string) error {
	id := wire.IntegrationWorkflowID(tenant, integration)
	err := mapError("terminate "+id, c.c.TerminateWorkflow(ctx, id, "", "tenant decommissioned"))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return c.DeleteSchedule(ctx, tenant, integration)
}
