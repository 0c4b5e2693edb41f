package api

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAPINeverImportsTemporal: the API asks the control plane for
// lifecycles only through internal/control, whose errors it maps to
// answers: neither its code nor its tests import Temporal (only
// internal/control does), and it depends on neither the workflows nor the
// activities.
func TestAPINeverImportsTemporal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/vrsky/vrsky/api").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/vrsky/vrsky/internal/control", "the check sees the API's dependencies")
	for _, dep := range deps {
		require.NotEqual(t, "github.com/vrsky/vrsky/activities", dep, "the API depends on the activities")
		require.NotEqual(t, "github.com/vrsky/vrsky/workflows", dep, "the API depends on the workflows")
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}{{"\n"}}{{join .TestImports "\n"}}`, "github.com/vrsky/vrsky/api").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, imp := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(imp, "go.temporal.io/"), "the API or its tests import %s", imp)
		require.NotEqual(t, "github.com/vrsky/vrsky/activities", imp)
		require.NotEqual(t, "github.com/vrsky/vrsky/workflows", imp)
	}
}
