package httpout

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Credentials written inline in headers would be stored in the spec, its
// versions and every listing: they are refused, and the error says to use
// secretHeaders with a tenant secret.
func TestCredentialHeadersMustBeSecrets(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Authorization", "authorization", "PROXY-AUTHORIZATION", "Cookie", "x-api-key", "X-Auth-Token",
		"Api-Key", "X-Access-Token", "X-Client-Secret", "X-Session-Id"} {
		raw, _ := json.Marshal(map[string]any{"url": "https://example.com/", "headers": map[string]string{name: "Bearer hunter2"}})
		_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv}, raw)
		require.ErrorContains(t, err, "carries credentials", name)
		require.ErrorContains(t, err, `use secretHeaders: {"`, name)
		require.ErrorContains(t, err, `{"secret": NAME}`, name)
		require.NotContains(t, err.Error(), "hunter2")
	}
	// Ordinary headers stay allowed, and credentials are fine as secrets.
	for _, name := range []string{"Accept", "X-Request-Source", "User-Agent", "X-Tenant"} {
		require.False(t, CredentialHeader(name), name)
	}
	raw := json.RawMessage(`{"url":"https://example.com/","headers":{"Accept":"application/json"},"secretHeaders":{"Authorization":{"secret":"token"}}}`)
	cfg := &Config{}
	require.NoError(t, json.Unmarshal(raw, cfg))
	require.NoError(t, cfg.Validate())
}
