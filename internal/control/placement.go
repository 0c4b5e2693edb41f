package control

import (
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// RequestPlacement asks the tenant's TenantPlacement run to move the
// tenant (req.Target: wire.PlacementShared or wire.PlacementDedicated),
// starting the run when none is going, and returns once the request is
// recorded: it never waits for the move. The tenant's placement in
// PostgreSQL tells how the move goes. A target other than those two is
// ErrInvalid, and nothing is sent; a control plane that does not take the
// request is ErrUnavailable.
func (c *Client) RequestPlacement(ctx context.Context, tenant string, req wire.PlacementRequest) error {
	what := "request placement " + req.Target + " of tenant " + tenant
	if req.Target != wire.PlacementShared && req.Target != wire.PlacementDedicated {
		return fmt.Errorf("%s: %w: target is %s or %s", what, ErrInvalid, wire.PlacementShared, wire.PlacementDedicated)
	}
	_, err := c.c.SignalWithStartWorkflow(ctx, wire.TenantPlacementWorkflowID(tenant), wire.PlacementSignal, req,
		client.StartWorkflowOptions{
			ID:        wire.TenantPlacementWorkflowID(tenant),
			TaskQueue: wire.ControlTaskQueue,
			// A run that is going takes the signal; a closed one is
			// followed by a new run.
			WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		},
		wire.TenantPlacementWorkflow, wire.TenantPlacementInput{Tenant: tenant})
	return mapError(what, err)
}
