package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/spec"
)

func newTenantInput(id string) (NewTenant, string) {
	keyID, prefix, hash, secret := NewKey()
	return NewTenant{ID: id, Name: "Tenant " + id, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []Scope{ScopeRead, ScopeWrite}}, secret
}

func TestProvisioningLifecycle(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	in, secret := newTenantInput("acme")

	tn, err := s.BeginTenant(ctx, in)
	require.NoError(t, err)
	require.Equal(t, TenantProvisioning, tn.Status)
	_, err = s.Authenticate(ctx, secret)
	require.ErrorIs(t, err, ErrUnauthenticated, "the key works only once the tenant is active")

	again, err := s.BeginTenant(ctx, in)
	require.NoError(t, err, "a retried step succeeds")
	require.Equal(t, tn.ID, again.ID)
	other, _ := newTenantInput("acme")
	_, err = s.BeginTenant(ctx, other)
	require.ErrorIs(t, err, ErrConflict, "another creation of the same ID")

	require.NoError(t, s.SetTenantStatus(ctx, "acme", TenantActive))
	p, err := s.Authenticate(ctx, secret)
	require.NoError(t, err)
	require.Equal(t, "acme", p.TenantID)
	require.ErrorIs(t, s.SetTenantStatus(ctx, "nobody", TenantActive), ErrNotFound)

	require.NoError(t, s.PurgeProvisioningTenant(ctx, "acme"), "an active tenant is never purged")
	_, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)

	_, err = s.CreateIntegration(ctx, "acme", spec.Integration{Name: "orders",
		Consumer: spec.Step{Connector: "http-webhook"}, Producers: map[string]spec.Step{"out": {Connector: "file"}}}, "test")
	require.NoError(t, err)
	ids, err := s.TenantIntegrationIDs(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, []string{"orders"}, ids)

	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	// A provisioning step retried late never revives a tenant being deleted.
	require.ErrorIs(t, s.SetTenantStatus(ctx, "acme", TenantActive), ErrTenantGone)
	got, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, TenantDeleting, got.Status)
	_, err = s.Authenticate(ctx, secret)
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.NoError(t, s.SetTenantStatus(ctx, "acme", TenantDeleted))
	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	require.ErrorIs(t, s.SetTenantStatus(ctx, "acme", TenantActive), ErrTenantGone)
	got, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, TenantDeleted, got.Status, "a deleted tenant stays deleted")
	require.NotNil(t, got.DeletedAt)
	_, err = s.BeginTenant(ctx, in)
	require.ErrorIs(t, err, ErrConflict, "a deleted tenant's ID is never reused")
}

func TestFailedProvisioningIsPurged(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	in, _ := newTenantInput("gone")
	_, err := s.BeginTenant(ctx, in)
	require.NoError(t, err)
	require.NoError(t, s.PurgeProvisioningTenant(ctx, "gone"))
	require.NoError(t, s.PurgeProvisioningTenant(ctx, "gone"), "twice")
	var keys int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE tenant_id = 'gone'`).Scan(&keys))
	require.Zero(t, keys)
	_, err = s.BeginTenant(ctx, in)
	require.NoError(t, err, "the ID can be used again")

	bad, _ := newTenantInput("Bad_ID")
	_, err = s.BeginTenant(ctx, bad)
	require.ErrorIs(t, err, ErrInvalid)
	noScopes, _ := newTenantInput("ok")
	noScopes.Scopes = []Scope{"root"}
	_, err = s.BeginTenant(ctx, noScopes)
	require.Error(t, err)
}

// An admin changes a tenant's quotas; the integrations quota refuses one
// integration too many with a clear error, and counts only this tenant's.
func TestTenantLimitsAndIntegrationQuota(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		in, _ := newTenantInput(id)
		_, err := s.BeginTenant(ctx, in)
		require.NoError(t, err)
		require.NoError(t, s.SetTenantStatus(ctx, id, TenantActive))
	}
	got, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, DefaultTenantLimits, got.Limits, "no limits stored: the defaults")

	limits := DefaultTenantLimits
	limits.Integrations = 2
	got, err = s.SetTenantLimits(ctx, "acme", limits)
	require.NoError(t, err)
	require.Equal(t, 2, got.Limits.Integrations)
	_, err = s.SetTenantLimits(ctx, "nobody", limits)
	require.ErrorIs(t, err, ErrNotFound)
	bad := limits
	bad.DiskBytes = 0
	_, err = s.SetTenantLimits(ctx, "acme", bad)
	require.ErrorIs(t, err, ErrInvalid)

	for _, name := range []string{"one", "two"} {
		_, err := s.CreateIntegration(ctx, "acme", testSpec(name, "out"), "test")
		require.NoError(t, err)
	}
	_, err = s.CreateIntegration(ctx, "acme", testSpec("three", "out"), "test")
	require.ErrorIs(t, err, ErrQuotaExceeded)
	require.ErrorIs(t, err, ErrInvalid, "answered as a 4xx")
	require.ErrorContains(t, err, "tenant acme has 2 integrations, its quota is 2")
	_, err = s.CreateIntegration(ctx, "globex", testSpec("three", "out"), "test")
	require.NoError(t, err, "another tenant's quota is its own")
	n, err := s.CountTenantIntegrations(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 2, n)

	limits.Integrations = 3
	_, err = s.SetTenantLimits(ctx, "acme", limits)
	require.NoError(t, err)
	_, err = s.CreateIntegration(ctx, "acme", testSpec("three", "out"), "test")
	require.NoError(t, err, "a raised quota holds at once")
}

// A failed provisioning keeps the tenant, failed with its reason, until
// the ID is created again.
func TestFailedTenantKeepsItsReason(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	in, _ := newTenantInput("acme")
	_, err := s.BeginTenant(ctx, in)
	require.NoError(t, err)
	require.NoError(t, s.FailTenant(ctx, "acme", "no room"))
	got, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, TenantFailed, got.Status)
	require.Equal(t, "no room", got.FailureReason)
	_, err = s.SetTenantLimits(ctx, "acme", DefaultTenantLimits)
	require.ErrorIs(t, err, ErrNotFound, "a failed tenant has no limits to change")

	again, _ := newTenantInput("acme")
	tn, err := s.BeginTenant(ctx, again)
	require.NoError(t, err)
	require.Equal(t, TenantProvisioning, tn.Status)
	require.Empty(t, tn.FailureReason)
}
