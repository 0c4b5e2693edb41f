package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
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

func TestConnectorNewScaffolds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"connector", "new", "sftp-upload", "--kind", "producer", "--dir", dir}, &out, &errOut))
	require.Contains(t, out.String(), "sftpupload.Connector")
	require.FileExists(t, filepath.Join(dir, "sftpupload", "sftpupload_test.go"))
	require.ErrorIs(t, run(ctx, []string{"connector", "new"}, &out, &errOut), errUsage)
	require.ErrorIs(t, run(ctx, []string{"connector", "new", "x-y", "--bogus"}, &out, &errOut), errUsage)
	require.Error(t, run(ctx, []string{"connector", "new", "Bad", "--dir", dir}, &out, &errOut))
}
