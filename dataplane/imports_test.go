package dataplane

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/vrsky/vrsky/"

// deps lists every package pkgs import, directly or not.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.NotEmpty(t, deps)
	return deps
}

// TestContractImportsNoRuntime: the contract is what the control plane,
// the API and the runners share, so it carries none of the runtime's
// weight: not the runtime itself, no metrics library, no Temporal, no
// connector but the SDK's types.
func TestContractImportsNoRuntime(t *testing.T) {
	for _, dep := range deps(t, module+"dataplane") {
		require.NotEqual(t, module+"hotpath", dep, "the contract imports the runtime")
		require.False(t, strings.HasPrefix(dep, "github.com/prometheus/"), "the contract imports %s", dep)
		require.False(t, strings.HasPrefix(dep, "go.temporal.io/"), "the contract imports %s", dep)
		if strings.HasPrefix(dep, module+"connectors/") {
			require.Equal(t, module+"connectors/sdk", dep, "the contract imports a connector")
		}
	}
}

// TestControlPlaneReachesTheDataPlaneThroughItsContract: the API, the
// workflows and the activities read and write the data plane through this
// package only, never through the runtime.
func TestControlPlaneReachesTheDataPlaneThroughItsContract(t *testing.T) {
	for _, pkg := range []string{"api", "workflows", "activities"} {
		for _, dep := range deps(t, module+pkg) {
			require.False(t, dep == module+"hotpath" || strings.HasPrefix(dep, module+"hotpath/"), "%s imports %s", pkg, dep)
		}
	}
}

// TestWorkflowsCarryNoMetricsLibrary: workflows are deterministic code
// replayed by the worker; what they need of the data plane is a few names.
func TestWorkflowsCarryNoMetricsLibrary(t *testing.T) {
	for _, dep := range deps(t, module+"workflows") {
		require.False(t, strings.HasPrefix(dep, "github.com/prometheus/"), "workflows import %s", dep)
	}
}
