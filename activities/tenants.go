package activities

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
)

// ErrTenantExists is the application error type of a tenant ID that is
// taken; retrying does not help.
const ErrTenantExists = "TenantExists"

// Tenants holds the activities that provision and decommission tenants.
// Every one is idempotent: a retried step, or a whole workflow run again,
// ends in the same state.
type Tenants struct {
	Store *store.Store
	// NATS creates and deletes tenant accounts; nil when every tenant
	// shares one account, which makes those steps do nothing.
	NATS *natsauth.Admin
	// Accounts gives each tenant's JetStream.
	Accounts dataplane.Accounts
	Blobs    *blobstore.Store
	State    *dataplane.State
	// Control ends the lifecycle workflows and schedules of a deleted
	// tenant's integrations.
	Control *control.Client
	// Secrets is the runners' mirror of tenant secrets, emptied of the
	// tenant's when it is deleted; nil leaves only PostgreSQL to clean.
	Secrets *tenancy.SecretsKV
}

// TenantInput names a tenant.
type TenantInput struct {
	Tenant string
}

// CreateTenantRows adds the tenant in status provisioning with its first
// key (ErrTenantExists when the ID is taken).
func (a *Tenants) CreateTenantRows(ctx context.Context, in wire.NewTenant) error {
	t := store.NewTenant{ID: in.ID, Name: in.Name, KeyID: in.KeyID, KeyPrefix: in.KeyPrefix, KeyHash: in.KeyHash}
	for _, s := range in.Scopes {
		t.Scopes = append(t.Scopes, store.Scope(s))
	}
	if in.Limits != nil {
		t.Limits = &store.TenantLimits{Limits: natsauth.Limits(in.Limits.Limits), Integrations: in.Limits.Integrations,
			MessagesPerSecond: in.Limits.MessagesPerSecond, RememberedKeys: in.Limits.RememberedKeys}
		if err := t.Limits.Validate(); err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidLimits", err)
		}
	}
	_, err := a.Store.BeginTenant(ctx, t)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTenantExists, err)
	}
	return err
}

// TenantAccountInput is a tenant's NATS account and its limits.
type TenantAccountInput struct {
	Tenant string
	Limits natsauth.Limits
}

// PutTenantAccount creates or updates the tenant's NATS account with its
// JetStream limits.
func (a *Tenants) PutTenantAccount(ctx context.Context, in TenantAccountInput) error {
	if a.NATS == nil {
		return nil
	}
	if err := in.Limits.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidLimits", err)
	}
	_, err := a.NATS.PutTenant(ctx, in.Tenant, in.Limits)
	return err
}

// TenantStreamsInput is a tenant and the size of its DLQ.
type TenantStreamsInput struct {
	Tenant   string
	DLQBytes int64
}

// EnsureTenantStreams creates or resizes the tenant's DLQ stream in its
// account (DLQBytes 0: dataplane.DefaultDLQBytes).
func (a *Tenants) EnsureTenantStreams(ctx context.Context, in TenantStreamsInput) error {
	js, err := a.Accounts.JetStream(ctx, in.Tenant)
	if err != nil {
		return err
	}
	err = dataplane.EnsureDLQStream(ctx, js, in.Tenant, in.DLQBytes)
	if insufficientResources(err) {
		// The server has no room for the tenant's quota: retrying within
		// seconds does not change that; the provisioning fails with why.
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrInsufficientResources, err)
	}
	return err
}

// ErrInsufficientResources is the application error type of a JetStream
// server that cannot hold a tenant's quota.
const ErrInsufficientResources = "InsufficientResources"

// insufficientResources reports the server's "insufficient storage /
// memory resources" refusals of a stream.
func insufficientResources(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	const storage, memory, insufficient jetstream.ErrorCode = 10047, 10028, 10023
	switch apiErr.ErrorCode {
	case storage, memory, insufficient:
		return true
	}
	return false
}

// ErrTenantGone is the error type of activating a tenant that is being
// deleted.
const ErrTenantGone = "TenantGone"

// ActivateTenant makes the tenant active: its keys authenticate from now on.
// A tenant deleted meanwhile stays deleted: that is a non-retryable error,
// and the provisioning run undoes what it made.
func (a *Tenants) ActivateTenant(ctx context.Context, in TenantInput) error {
	err := a.Store.SetTenantStatus(ctx, in.Tenant, store.TenantActive)
	if errors.Is(err, store.ErrTenantGone) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTenantGone, err)
	}
	return err
}

// PurgeTenantRows removes a tenant whose provisioning failed, and its key.
func (a *Tenants) PurgeTenantRows(ctx context.Context, in TenantInput) error {
	return a.Store.PurgeProvisioningTenant(ctx, in.Tenant)
}

// FailTenantInput is a tenant whose provisioning failed, and why.
type FailTenantInput struct {
	Tenant string
	Reason string
}

// MarkTenantFailed keeps a tenant whose provisioning failed (and was
// undone) as failed with the reason; its key never authenticates.
func (a *Tenants) MarkTenantFailed(ctx context.Context, in FailTenantInput) error {
	return a.Store.FailTenant(ctx, in.Tenant, in.Reason)
}

// MarkTenantDeleting revokes the tenant's keys at once, marks it deleting
// (a deleted tenant stays deleted) and deletes its secrets.
func (a *Tenants) MarkTenantDeleting(ctx context.Context, in TenantInput) error {
	err := a.Store.DeleteTenant(ctx, in.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "TenantNotFound", err)
	}
	if err != nil {
		return err
	}
	return a.removeSecrets(ctx, in.Tenant)
}

// removeSecrets deletes the tenant's secrets, from PostgreSQL and from the
// runners' mirror, as soon as the tenant is deleting.
func (a *Tenants) removeSecrets(ctx context.Context, tenant string) error {
	if _, err := a.Store.DeleteTenantSecrets(ctx, tenant); err != nil {
		return err
	}
	if a.Secrets == nil {
		return nil
	}
	_, err := a.Secrets.DeleteTenant(ctx, tenant)
	return err
}

// ListTenantIntegrations returns the IDs of the tenant's integrations.
func (a *Tenants) ListTenantIntegrations(ctx context.Context, in TenantInput) ([]string, error) {
	return a.Store.TenantIntegrationIDs(ctx, in.Tenant)
}

// RemoveIntegrationInput is one integration to take down with its tenant:
// its desired state, its lifecycle workflow and its schedule. WorkflowID
// and ScheduleID are recorded in histories; they are always the IDs
// wire builds from Tenant and Integration.
type RemoveIntegrationInput struct {
	Tenant, Integration string
	WorkflowID          string
	ScheduleID          string
}

// RemoveIntegration stops the integration for good: runners drop its
// pipeline, its lifecycle workflow is terminated, its schedule deleted.
func (a *Tenants) RemoveIntegration(ctx context.Context, in RemoveIntegrationInput) error {
	if err := a.State.DeleteDesired(ctx, dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration}); err != nil {
		return err
	}
	return a.Control.TerminateIntegration(ctx, in.Tenant, in.Integration)
}

// RemoveTenantStreams deletes every stream of the tenant and returns how
// many there were.
func (a *Tenants) RemoveTenantStreams(ctx context.Context, in TenantInput) (int, error) {
	js, err := a.Accounts.JetStream(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	return dataplane.DeleteTenantStreams(ctx, js, in.Tenant)
}

// forgetter is an Accounts that keeps connections it can close.
type forgetter interface{ Forget(tenant string) }

// DeleteTenantAccount deletes the tenant's NATS account; its remaining
// connections are closed.
func (a *Tenants) DeleteTenantAccount(ctx context.Context, in TenantInput) error {
	if a.NATS == nil {
		return nil
	}
	if f, ok := a.Accounts.(forgetter); ok {
		f.Forget(in.Tenant)
	}
	return a.NATS.DeleteTenant(ctx, in.Tenant)
}

// RemoveTenantObjects deletes the tenant's claim-checked and dead-lettered
// bodies and returns how many objects it removed.
func (a *Tenants) RemoveTenantObjects(ctx context.Context, in TenantInput) (int, error) {
	removed := 0
	for _, prefix := range dataplane.TenantObjectPrefixes(in.Tenant) {
		n, err := a.Blobs.DeleteOlderThan(ctx, prefix, time.Now().Add(time.Hour))
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// FinishTenantDeletion removes the runners' copy of the tenant's egress
// policy and marks the tenant deleted.
func (a *Tenants) FinishTenantDeletion(ctx context.Context, in TenantInput) error {
	if a.State != nil && a.State.Egress != nil {
		if err := a.State.Egress.Delete(ctx, in.Tenant); err != nil {
			return err
		}
	}
	return a.Store.SetTenantStatus(ctx, in.Tenant, store.TenantDeleted)
}
