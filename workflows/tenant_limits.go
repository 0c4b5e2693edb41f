package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
)

// TenantLimits (ID TenantLimitsWorkflowID) applies a tenant's changed
// limits: its NATS account's JetStream limits, then its DLQ's size. Both
// steps are idempotent and retried until they succeed; a newer change
// replaces a run still going. Lowering a limit below what is used removes
// nothing: the server refuses new writes until usage falls below it.
func TenantLimits(ctx workflow.Context, in wire.TenantLimitsInput) error {
	var a *activities.Tenants
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{"InvalidLimits"},
		},
	})
	account := activities.TenantAccountInput{Tenant: in.Tenant, Limits: natsauth.Limits(in.Limits)}
	if err := workflow.ExecuteActivity(ctx, a.PutTenantAccount, account).Get(ctx, nil); err != nil {
		return err
	}
	streams := activities.TenantStreamsInput{Tenant: in.Tenant, DLQBytes: natsauth.Limits(in.Limits).DLQ()}
	return workflow.ExecuteActivity(ctx, a.EnsureTenantStreams, streams).Get(ctx, nil)
}
