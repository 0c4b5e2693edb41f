package testtenant_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestActiveTenantsKeyAuthenticates: the tenant is active and its key
// authenticates as that tenant with a new tenant's first scopes.
func TestActiveTenantsKeyAuthenticates(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)

	secret, keyID := testtenant.Active(t, st, "acme")
	tenant, err := st.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantActive, tenant.Status)

	p, err := st.Authenticate(ctx, secret)
	require.NoError(t, err)
	require.Equal(t, "acme", p.TenantID)
	require.Equal(t, keyID, p.KeyID)
	require.ElementsMatch(t, testtenant.Scopes, p.Scopes)
	require.False(t, p.Admin)
}
