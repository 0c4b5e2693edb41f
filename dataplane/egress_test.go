package dataplane

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestEgressPolicies(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := t.Context()
	writer := &EgressPolicies{JS: js}
	reader := &EgressPolicies{JS: js}

	p, err := reader.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, p, "a tenant without a policy gets the default one")

	want := sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{"erp.internal:443"}}
	require.NoError(t, writer.Put(ctx, "acme", want))
	p, err = reader.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, want, p)
	other, err := reader.Policy(ctx, "other")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, other, "one tenant's policy is not another's")

	require.NoError(t, writer.Delete(ctx, "acme"))
	require.NoError(t, writer.Delete(ctx, "acme"), "deleting twice succeeds")
	p, err = reader.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, p)

	for _, bad := range []string{"", "a.b", "*", ">"} {
		_, err := reader.Policy(ctx, bad)
		require.ErrorContains(t, err, "not a tenant ID")
		require.Error(t, writer.Put(ctx, bad, want))
		require.Error(t, writer.Delete(ctx, bad))
	}

	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	require.NoError(t, state.Egress.Put(ctx, "acme", want))
	p, err = reader.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, want, p)
}
