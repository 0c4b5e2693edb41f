package workflows

import (
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/control/wire"
)

// The client starts workflows by the names in wire; the worker registers
// them under their functions' names. They must agree.
func TestWireNamesAreTheWorkflowsNames(t *testing.T) {
	for name, fn := range map[string]any{
		wire.TenantProvisionWorkflow:      TenantProvision,
		wire.TenantDecommissionWorkflow:   TenantDecommission,
		wire.TenantLimitsWorkflow:         TenantLimits,
		wire.IntegrationLifecycleWorkflow: IntegrationLifecycle,
		wire.IntegrationRunWorkflow:       IntegrationRun,
		wire.DLQReplayWorkflow:            DLQReplay,
		wire.BlobJanitorWorkflow:          BlobJanitor,
	} {
		full := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
		require.Equal(t, name, full[strings.LastIndex(full, ".")+1:])
	}
}

// TestWorkflowsHoldNoClientCode: starting, updating and reading workflows
// is internal/control's job.
func TestWorkflowsHoldNoClientCode(t *testing.T) {
	for _, imp := range importsOf(t, "github.com/vrsky/vrsky/workflows") {
		require.NotEqual(t, "go.temporal.io/sdk/client", imp, "workflows imports the Temporal client")
		require.NotEqual(t, "github.com/vrsky/vrsky/internal/control", imp, "workflows imports the control-plane client")
	}
}

// importsOf lists the packages pkg's non-test files import directly.
func importsOf(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, pkg).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.Fields(string(out))
}
