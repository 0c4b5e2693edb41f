package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// removeDedicatedInstance is the workflow.GetVersion change ID under which
// decommissioning removes the tenant's dedicated NATS instance.
const removeDedicatedInstance = "remove-dedicated-instance"

// TenantDecommission removes a tenant (ID TenantDecommissionWorkflowID):
// it revokes its keys at once, takes down every integration (pipelines,
// lifecycle workflows, schedules), deletes its streams, its dedicated NATS instance
// (if it has one), its NATS account and its objects, and marks it deleted. Each step retries until it succeeds and
// is idempotent, so running it again — after a crash or by hand — is safe.
func TenantDecommission(ctx workflow.Context, in wire.TenantDecommissionInput) (wire.TenantDecommissionResult, error) {
	var a *activities.Tenants
	var res wire.TenantDecommissionResult
	tenant := activities.TenantInput{Tenant: in.Tenant}
	step := withUnlimitedRetries(ctx, time.Minute)

	if err := workflow.ExecuteActivity(step, a.MarkTenantDeleting, tenant).Get(ctx, nil); err != nil {
		return res, err
	}
	var ids []string
	if err := workflow.ExecuteActivity(step, a.ListTenantIntegrations, tenant).Get(ctx, &ids); err != nil {
		return res, err
	}
	for _, id := range ids {
		remove := activities.RemoveIntegrationInput{
			Tenant: in.Tenant, Integration: id,
			WorkflowID: wire.IntegrationWorkflowID(in.Tenant, id), ScheduleID: wire.IntegrationScheduleID(in.Tenant, id),
		}
		if err := workflow.ExecuteActivity(step, a.RemoveIntegration, remove).Get(ctx, nil); err != nil {
			return res, err
		}
		res.Integrations++
	}
	if err := workflow.ExecuteActivity(step, a.RemoveTenantStreams, tenant).Get(ctx, &res.Streams); err != nil {
		return res, err
	}
	if workflow.GetVersion(ctx, removeDedicatedInstance, workflow.DefaultVersion, 1) >= 1 {
		var p *activities.Placement
		if err := workflow.ExecuteActivity(step, p.RemoveInstance, activities.PlacementInput{Tenant: in.Tenant}).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	if err := workflow.ExecuteActivity(step, a.DeleteTenantAccount, tenant).Get(ctx, nil); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(step, a.RemoveTenantObjects, tenant).Get(ctx, &res.Objects); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(step, a.FinishTenantDeletion, tenant).Get(ctx, nil); err != nil {
		return res, err
	}
	return res, nil
}
