package xml_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/xml"
)

// TestConfigSchema: the schema the API serves and the UI renders names
// every option in camelCase.
func TestConfigSchema(t *testing.T) {
	schema, err := sdk.ConfigSchema(xml.Connector)
	require.NoError(t, err)
	for _, field := range []string{"direction", "attributePrefix", "textKey", "arrays", "root", "maxDepth", "maxBytes"} {
		require.Contains(t, string(schema), `"`+field+`"`)
	}
}
