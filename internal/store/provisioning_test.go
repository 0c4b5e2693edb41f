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
	require.NoError(t, s.SetTenantStatus(ctx, "acme", TenantDeleted))
	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	got, err := s.GetTenant(ctx, "acme")
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
