package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
)

// TenantProvision provisions a tenant (ID TenantProvisionWorkflowID): its
// rows and first key, its own NATS account with its JetStream limits, its
// DLQ stream in that account, then it marks the tenant active — before that
// its key does not authenticate. When a step fails for good, everything done
// so far is undone, the tenant is marked failed with the reason (GET shows
// it; its key never works) and the workflow fails; the ID can then be
// created again.
// Claim-checked bodies live under the tenant's object prefixes
// (dataplane.TenantObjectPrefixes), which need no creating.
func TenantProvision(ctx workflow.Context, in wire.TenantProvisionInput) (wire.TenantProvisionResult, error) {
	var a *activities.Tenants
	tenant := activities.TenantInput{Tenant: in.Tenant.ID}
	// Each step is one short call (a row, an account JWT, a stream): a
	// worker lost in the middle is noticed and replaced after 10 s.
	step := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5,
		},
	})
	if err := workflow.ExecuteActivity(step, a.CreateTenantRows, in.Tenant).Get(ctx, nil); err != nil {
		return wire.TenantProvisionResult{}, err
	}
	err := workflow.ExecuteActivity(step, a.PutTenantAccount, activities.TenantAccountInput{Tenant: in.Tenant.ID, Limits: natsauth.Limits(in.Limits)}).Get(ctx, nil)
	if err == nil {
		err = workflow.ExecuteActivity(step, a.EnsureTenantStreams,
			activities.TenantStreamsInput{Tenant: in.Tenant.ID, DLQBytes: natsauth.Limits(in.Limits).DLQ()}).Get(ctx, nil)
	}
	if err == nil {
		err = workflow.ExecuteActivity(step, a.ActivateTenant, tenant).Get(ctx, nil)
	}
	if err == nil {
		return wire.TenantProvisionResult{Tenant: in.Tenant.ID}, nil
	}

	// Compensate: every step is idempotent, so undo them all, and keep
	// trying until each is undone (the infrastructure may be down now).
	undo := withUnlimitedRetries(ctx, time.Minute)
	workflow.GetLogger(ctx).Warn("tenant provisioning failed; undoing it", "tenant", in.Tenant.ID, "error", err)
	var streams int
	for _, f := range []func() error{
		func() error { return workflow.ExecuteActivity(undo, a.RemoveTenantStreams, tenant).Get(ctx, &streams) },
		func() error { return workflow.ExecuteActivity(undo, a.DeleteTenantAccount, tenant).Get(ctx, nil) },
		func() error {
			// Runs recorded before failed tenants were kept removed the rows.
			if workflow.GetVersion(ctx, "keep-failed-tenant", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return workflow.ExecuteActivity(undo, a.PurgeTenantRows, tenant).Get(ctx, nil)
			}
			failed := activities.FailTenantInput{Tenant: in.Tenant.ID, Reason: failureReason(err)}
			return workflow.ExecuteActivity(undo, a.MarkTenantFailed, failed).Get(ctx, nil)
		},
	} {
		if cerr := f(); cerr != nil {
			return wire.TenantProvisionResult{}, temporal.NewNonRetryableApplicationError(
				"provisioning failed and could not be undone: "+cerr.Error(), "CompensationFailed", err)
		}
	}
	return wire.TenantProvisionResult{}, err
}

// failureReason is what the tenant's GET shows of why provisioning failed:
// the failing step's own message, without the retry wrapping.
func failureReason(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// withUnlimitedRetries returns ctx with activity options that retry until
// the activity succeeds, backing off up to maxInterval.
func withUnlimitedRetries(ctx workflow.Context, maxInterval time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: maxInterval,
			NonRetryableErrorTypes: []string{"TenantNotFound"},
		},
	})
}
