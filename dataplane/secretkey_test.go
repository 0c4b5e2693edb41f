package dataplane

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecretKeyKeepsTenantsApart(t *testing.T) {
	t.Parallel()
	key, err := SecretKey("acme", "slack.token_v2-x")
	require.NoError(t, err)
	require.Equal(t, "acme.slack.token_v2-x", key)
	require.Equal(t, "acme.>", TenantSecretsFilter("acme"))

	for _, tt := range []struct{ tenant, name string }{
		{"Acme", "a"}, {"acme.evil", "a"}, {"", "a"}, {"acme", ""}, {"acme", "a..b"}, {"acme", "a."},
		{"acme", ".a"}, {"acme", "1a"}, {"acme", "a b"}, {"acme", "a*"}, {"acme", ">"}, {"acme", strings.Repeat("a", 129)},
	} {
		_, err := SecretKey(tt.tenant, tt.name)
		require.Error(t, err, "%q %q", tt.tenant, tt.name)
	}
}
