package controltest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The control plane it starts provisions a tenant for real.
func TestStartRunsTheWorkflows(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	_, js := testenv.JetStream(t)
	ctl := Start(t, Deps{Store: st, JS: js})

	keyID, prefix, hash, secret := store.NewKey()
	in := wire.TenantProvisionInput{
		Tenant: wire.NewTenant{ID: "acme", Name: "Acme", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []string{"read"}},
		Limits: wire.Limits(natsauth.DefaultLimits),
	}
	require.NoError(t, ctl.ProvisionTenant(ctx, in, false))
	var res wire.TenantProvisionResult
	Wait(t, ctl, wire.TenantProvisionWorkflowID("acme"), &res)
	require.Equal(t, "acme", res.Tenant)
	p, err := st.Authenticate(ctx, secret)
	require.NoError(t, err)
	require.Equal(t, "acme", p.TenantID)
}
