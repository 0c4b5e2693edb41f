package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, run([]string{"-out", dir}, io.Discard))
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 4)
	b, err := os.ReadFile(filepath.Join(dir, "vrsky-overview.json"))
	require.NoError(t, err)
	require.Contains(t, string(b), `"uid": "vrsky-overview"`)

	require.Error(t, run(nil, io.Discard), "-out is required")
	require.Error(t, run([]string{"-out", dir, "extra"}, io.Discard))
	require.Error(t, run([]string{"-bogus"}, io.Discard))
}
