package roles

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

type otherTenancy struct{}

func (otherTenancy) Complete(context.Context, *sdk.Env) error { return nil }

func TestTenancyGivesTheAdminsEgressPolicy(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := t.Context()
	want := sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1:8099"}}
	require.NoError(t, (&hotpath.EgressPolicies{JS: js}).Put(ctx, "acme", want))

	// No Tenancy: tenants still get their egress policy.
	env := sdk.Env{Tenant: "acme"}
	require.NoError(t, Deps{JS: js}.tenancy().Complete(ctx, &env))
	require.Equal(t, want, env.Egress)
	env = sdk.Env{Tenant: "other"}
	require.NoError(t, Deps{JS: js}.tenancy().Complete(ctx, &env))
	require.Equal(t, sdk.EgressPolicy{}, env.Egress)

	// The platform's Tenancy keeps its secrets and gains the policy; the
	// caller's value is left as it was.
	secrets := func(string) sdk.SecretResolver {
		return func(context.Context, string) (string, error) { return "s3cr3t", nil }
	}
	platform := &tenancy.Platform{Secrets: secrets}
	env = sdk.Env{Tenant: "acme"}
	require.NoError(t, Deps{JS: js, Tenancy: platform}.tenancy().Complete(ctx, &env))
	require.Equal(t, want, env.Egress)
	v, err := env.Secrets(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, "s3cr3t", v)
	require.Nil(t, platform.Egress)

	// Anything else is used as it is.
	require.Equal(t, otherTenancy{}, Deps{JS: js, Tenancy: otherTenancy{}}.tenancy())
	fixed := &tenancy.Platform{Egress: func(context.Context, string) (sdk.EgressPolicy, error) { return sdk.EgressPolicy{}, nil }}
	require.Same(t, fixed, Deps{JS: js, Tenancy: fixed}.tenancy())
	require.Nil(t, Deps{}.tenancy())
}
