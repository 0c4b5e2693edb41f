package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/require"
)

// generatedDir is where the Helm chart and compose's Grafana load the
// dashboards from.
const generatedDir = "../helm/vrsky/files/dashboards"

// TestGeneratedDashboardsAreCurrent regenerates the dashboards and fails
// when the committed JSON differs: edit the Go code, then run
// `go generate ./dashboards` in deploy/.
func TestGeneratedDashboardsAreCurrent(t *testing.T) {
	files, err := Render()
	require.NoError(t, err)
	onDisk, err := filepath.Glob(filepath.Join(generatedDir, "*.json"))
	require.NoError(t, err)
	require.Len(t, onDisk, len(files), "one JSON file per generated dashboard, no stray files in %s", generatedDir)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(generatedDir, name))
		require.NoError(t, err, "%s is missing: run go generate ./dashboards in deploy/", name)
		require.True(t, bytes.Equal(want, got), "%s is out of date: run go generate ./dashboards in deploy/", name)
	}
}

func load(t *testing.T, name string) dashboard.Dashboard {
	t.Helper()
	plugins.RegisterDefaultPlugins()
	b, err := os.ReadFile(filepath.Join(generatedDir, name))
	require.NoError(t, err)
	var d dashboard.Dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

func variables(d dashboard.Dashboard) map[string]dashboard.VariableModel {
	out := map[string]dashboard.VariableModel{}
	if d.Templating.List != nil {
		for _, v := range d.Templating.List {
			out[v.Name] = v
		}
	}
	return out
}

// TestDashboardsShape: the four dashboards, unique uids, the variables
// each needs, and every panel titled, described and tied to a data source
// variable.
func TestDashboardsShape(t *testing.T) {
	wantVars := map[string][]string{
		"vrsky-overview.json":    {promVar, lokiVar},
		"vrsky-tenant.json":      {promVar, lokiVar, "tenant"},
		"vrsky-integration.json": {promVar, lokiVar, "tenant", "integration"},
		"vrsky-nats.json":        {promVar, lokiVar},
	}
	uids := map[string]bool{}
	for _, d := range All() {
		require.Contains(t, wantVars, d.File)
		built := load(t, d.File)
		require.NotNil(t, built.Uid)
		require.False(t, uids[*built.Uid], "uid %s used twice", *built.Uid)
		uids[*built.Uid] = true
		vars := variables(built)
		require.Len(t, vars, len(wantVars[d.File]), d.File)
		for _, v := range wantVars[d.File] {
			require.Contains(t, vars, v, d.File)
		}
		panels := 0
		for _, p := range built.Panels {
			if p.Panel == nil {
				require.NotNil(t, p.RowPanel)
				continue
			}
			panels++
			require.NotEmpty(t, p.Panel.Title, d.File)
			require.NotNil(t, p.Panel.Description, "%s: %s", d.File, p.Panel.Title)
			require.NotEmpty(t, *p.Panel.Description, "%s: %s", d.File, p.Panel.Title)
			require.NotNil(t, p.Panel.Datasource, "%s: %s", d.File, p.Panel.Title)
			require.True(t, strings.HasPrefix(*p.Panel.Datasource.Uid, "${"), "%s: %s uses a data source variable", d.File, p.Panel.Title)
			require.NotEmpty(t, p.Panel.Targets, "%s: %s", d.File, p.Panel.Title)
			require.NotNil(t, p.Panel.GridPos)
			require.LessOrEqual(t, p.Panel.GridPos.X+p.Panel.GridPos.W, uint32(24))
		}
		require.GreaterOrEqual(t, panels, 8, d.File)
	}
	require.Len(t, uids, 4)
}

// TestNATSDashboardSaysDedicatedServersAreMissing: dedicated tenant NATS
// servers do not exist yet, and the dashboard says so.
func TestNATSDashboardSaysDedicatedServersAreMissing(t *testing.T) {
	d := load(t, "vrsky-nats.json")
	require.Contains(t, *d.Description, "Dedicated per-tenant NATS servers do not exist yet")
}

func TestWriteCreatesEveryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, len(All()))

	blocked := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocked, nil, 0o600))
	require.Error(t, Write(filepath.Join(blocked, "sub")), "a directory under a file cannot be created")
}
