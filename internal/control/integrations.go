package control

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// Change is a lifecycle change the integration's workflow accepted; it is
// carried out in the background.
type Change struct {
	WorkflowID string
	UpdateID   string
}

// ChangeIntegration asks an integration's IntegrationLifecycle for a
// change (action: wire.IntegrationDeploy, …Start, …Stop, …Update,
// …Delete), starting the workflow if it is not running, and returns once
// the change is accepted: a refusal is a *RefusedError with the workflow's
// reason. updateID, when set, makes a repeated request (a client retry) the
// same change. It never waits for an accepted change to be carried out.
//
// The lifecycle run of an integration deleted a moment ago closes right
// after the deletion is recorded; a change to an integration created again
// under the same ID in between would meet that run and be refused. Such a
// change waits for the old run to close and goes to a new one.
func (c *Client) ChangeIntegration(ctx context.Context, tenant, integration, action, updateID string, req wire.ChangeRequest) (Change, error) {
	h, err := c.changeIntegration(ctx, tenant, integration, action, updateID, req)
	if err != nil {
		return Change{}, mapError(fmt.Sprintf("%s integration %s/%s", action, tenant, integration), err)
	}
	refused := refusal(h)
	var appErr *temporal.ApplicationError
	if errors.As(refused, &appErr) && strings.HasSuffix(appErr.Message(), wire.RefusedDeleted) {
		if err := c.c.GetWorkflow(ctx, h.WorkflowID(), h.RunID()).Get(ctx, nil); err != nil {
			return Change{}, mapError(fmt.Sprintf("%s integration %s/%s: wait for the deleted integration's lifecycle to close", action, tenant, integration), err)
		}
		if h, err = c.changeIntegration(ctx, tenant, integration, action, updateID, req); err != nil {
			return Change{}, mapError(fmt.Sprintf("%s integration %s/%s", action, tenant, integration), err)
		}
		refused = refusal(h)
	}
	if refused != nil {
		return Change{}, mapError("", refused)
	}
	return Change{WorkflowID: h.WorkflowID(), UpdateID: h.UpdateID()}, nil
}

func (c *Client) changeIntegration(ctx context.Context, tenant, integration, action, updateID string, req wire.ChangeRequest) (client.WorkflowUpdateHandle, error) {
	id := wire.IntegrationWorkflowID(tenant, integration)
	start := c.c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                wire.ControlTaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wire.IntegrationLifecycleWorkflow, wire.IntegrationLifecycleInput{Tenant: tenant, Integration: integration})
	return c.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			WorkflowID:   id,
			UpdateName:   action,
			UpdateID:     updateID,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
}

// refusal returns the lifecycle's refusal of a change (an application error
// of type wire.ErrInvalidTransition), or nil, without waiting for an
// accepted change to finish: a refused (or already finished) change's
// handle holds its outcome, while an accepted one would poll the server,
// which a cancelled context stops at once.
func refusal(h client.WorkflowUpdateHandle) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == wire.ErrInvalidTransition {
		return err
	}
	return nil
}
