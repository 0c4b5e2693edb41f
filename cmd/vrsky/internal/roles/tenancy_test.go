package roles

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestWiredTenancyGivesTheAdminsEgressPolicy: connectors get the egress
// policy a platform admin set for their tenant, and the default policy when
// none was set.
func TestWiredTenancyGivesTheAdminsEgressPolicy(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := t.Context()
	want := sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1:8099"}}
	require.NoError(t, (&dataplane.EgressPolicies{JS: js}).Put(ctx, "acme", want))

	d := Deps{JS: js}
	require.NoError(t, WireTenancy(ctx, &d, nil, nil))
	env := sdk.Env{Tenant: "acme"}
	require.NoError(t, d.Tenancy.Complete(ctx, &env))
	require.Equal(t, want, env.Egress)
	env = sdk.Env{Tenant: "other"}
	require.NoError(t, d.Tenancy.Complete(ctx, &env))
	require.Equal(t, sdk.EgressPolicy{}, env.Egress)
	_, ok := env.LookupEnv("PATH")
	require.False(t, ok, "no environment variable is allowed by default")
}
