package csv_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/csv"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// TestConfigSchema: the schema the API serves and the UI renders names
// every option in camelCase.
func TestConfigSchema(t *testing.T) {
	schema, err := sdk.ConfigSchema(csv.Connector)
	require.NoError(t, err)
	for _, field := range []string{"direction", "mode", "delimiter", "header", "columns", "types", "trimSpace", "skipRows", "ragged", "escapeFormulas", "maxBytes"} {
		require.Contains(t, string(schema), `"`+field+`"`)
	}
}
