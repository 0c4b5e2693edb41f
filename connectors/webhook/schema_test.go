package webhook_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
)

// TestConfigSchema: the schema the API serves and the UI renders names
// every option in camelCase.
func TestConfigSchema(t *testing.T) {
	schema, err := sdk.ConfigSchema(webhook.Connector)
	require.NoError(t, err)
	for _, field := range []string{"signature", "maxBytes", "scheme", "tolerance", "keyMemory"} {
		require.Contains(t, string(schema), `"`+field+`"`)
	}
}
