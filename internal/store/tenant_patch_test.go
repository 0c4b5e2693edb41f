package store

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestPatchTenantEgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme Corp")
	require.NoError(t, err)
	got, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, got.Egress, "a new tenant has the default policy")

	want := sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{"erp.internal:443", "10.0.0.5"}}
	patched, err := s.PatchTenant(ctx, "acme", TenantPatch{Egress: &want}, nil)
	require.NoError(t, err)
	require.Equal(t, want, patched.Egress)
	require.Equal(t, "Acme Corp", patched.Name)
	got, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, want, got.Egress)
	list, _, err := s.ListTenants(ctx, Page{})
	require.NoError(t, err)
	require.Equal(t, want, list[0].Egress)

	// An empty patch changes nothing.
	patched, err = s.PatchTenant(ctx, "acme", TenantPatch{}, nil)
	require.NoError(t, err)
	require.Equal(t, want, patched.Egress)

	// A mirror that fails leaves the stored policy as it was; one that
	// works sees the new one.
	other := sdk.EgressPolicy{AllowHosts: []string{"db.internal:5432"}}
	_, err = s.PatchTenant(ctx, "acme", TenantPatch{Egress: &other}, func(context.Context, Tenant) error { return errors.New("mirror down") })
	require.ErrorContains(t, err, "mirror down")
	got, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, want, got.Egress)
	var mirrored Tenant
	_, err = s.PatchTenant(ctx, "acme", TenantPatch{Egress: &other}, func(_ context.Context, t Tenant) error { mirrored = t; return nil })
	require.NoError(t, err)
	require.Equal(t, other, mirrored.Egress)

	// Back to the default.
	_, err = s.PatchTenant(ctx, "acme", TenantPatch{Egress: &sdk.EgressPolicy{}}, nil)
	require.NoError(t, err)
	got, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.False(t, got.Egress.AllowPrivate)
	require.Empty(t, got.Egress.AllowHosts)

	_, err = s.PatchTenant(ctx, "nobody", TenantPatch{Egress: &want}, nil)
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	_, err = s.PatchTenant(ctx, "acme", TenantPatch{Egress: &want}, nil)
	require.ErrorIs(t, err, ErrNotFound, "a tenant going away keeps its policy")
}
