package api

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAPINeverImportsTemporal: the API asks the control plane for
// lifecycles only through internal/control, whose errors it maps to
// answers; it never depends on Temporal, the workflows or the activities,
// in its code or in its tests.
func TestAPINeverImportsTemporal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/vrsky/vrsky/api").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/vrsky/vrsky/internal/control", "the check sees the API's dependencies")
	for _, dep := range deps {
		require.False(t, strings.HasPrefix(dep, "go.temporal.io/"), "the API depends on %s", dep)
		require.NotEqual(t, "github.com/vrsky/vrsky/activities", dep)
		require.NotEqual(t, "github.com/vrsky/vrsky/workflows", dep)
	}
	out, err = exec.Command("go", "list", "-f", `{{join .TestImports "\n"}}`, "github.com/vrsky/vrsky/api").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, imp := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(imp, "go.temporal.io/"), "the API's tests import %s", imp)
		require.NotEqual(t, "github.com/vrsky/vrsky/activities", imp)
		require.NotEqual(t, "github.com/vrsky/vrsky/workflows", imp)
	}
}
