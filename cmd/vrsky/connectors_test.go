package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConnectorsList(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"connectors", "list"}, &out, &errOut))
	require.Contains(t, out.String(), "json-transform")
	require.Contains(t, out.String(), "converter")

	out.Reset()
	require.NoError(t, run(ctx, []string{"connectors", "list", "--json"}, &out, &errOut))
	var list []connectorInfo
	require.NoError(t, json.Unmarshal(out.Bytes(), &list))
	require.NotEmpty(t, list)
	for _, c := range list {
		require.NotEmpty(t, c.Name)
		require.NotEmpty(t, c.Kind)
		require.NotEmpty(t, c.Summary)
		var schema struct{ Type string }
		require.NoError(t, json.Unmarshal(c.Schema, &schema))
		require.Equal(t, "object", schema.Type)
	}

	require.ErrorIs(t, run(ctx, []string{"connectors"}, &out, &errOut), errUsage)
	require.ErrorIs(t, run(ctx, []string{"connectors", "list", "--bogus"}, &out, &errOut), errUsage)
}
