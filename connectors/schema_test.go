package connectors

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// TestEveryConnectorHasAConfigSchema: the API and the UI rely on it.
func TestEveryConnectorHasAConfigSchema(t *testing.T) {
	for _, c := range Catalog().All() {
		t.Run(string(c.Kind)+"/"+c.Name, func(t *testing.T) {
			raw, err := sdk.ConfigSchema(c)
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(raw, &doc))
			require.Equal(t, "object", doc["type"])
			require.NotEmpty(t, doc["description"], "the summary is the schema's description")
		})
	}
}
