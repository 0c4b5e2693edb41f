package tenancy

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestCompleteGivesTheTenantsEgressPolicy(t *testing.T) {
	policies := map[string]sdk.EgressPolicy{"acme": {AllowPrivate: true}}
	p := &Platform{Egress: func(_ context.Context, tenant string) (sdk.EgressPolicy, error) {
		if tenant == "broken" {
			return sdk.EgressPolicy{}, errors.New("bucket unavailable")
		}
		return policies[tenant], nil
	}}
	env := sdk.Env{Tenant: "acme"}
	require.NoError(t, p.Complete(t.Context(), &env))
	require.True(t, env.Egress.AllowPrivate)
	env = sdk.Env{Tenant: "other"}
	require.NoError(t, p.Complete(t.Context(), &env))
	require.Equal(t, sdk.EgressPolicy{}, env.Egress)
	env = sdk.Env{Tenant: "broken"}
	require.ErrorContains(t, p.Complete(t.Context(), &env), "egress policy: bucket unavailable", "no policy, no build")
}
