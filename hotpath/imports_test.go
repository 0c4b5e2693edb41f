package hotpath

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDataPlaneNeverImportsTemporal: the hot path and the connectors keep
// running when the control plane is down, so they must not depend on
// Temporal at all.
func TestDataPlaneNeverImportsTemporal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"github.com/vrsky/vrsky/hotpath", "github.com/vrsky/vrsky/connectors/...").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.NotEmpty(t, deps)
	for _, dep := range deps {
		require.False(t, strings.HasPrefix(dep, "go.temporal.io/"), "the data plane imports %s", dep)
	}
}

// TestRuntimeUsesTheContract: hotpath is the runtime behind the contract in
// dataplane, never the other way round.
func TestRuntimeUsesTheContract(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", "github.com/vrsky/vrsky/hotpath").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, strings.Fields(string(out)), "github.com/vrsky/vrsky/dataplane")
}
