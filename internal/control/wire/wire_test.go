package wire_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/store"
)

// TestWireIsALeaf: the API, the client, the workflows and the activities
// all import wire, so it imports nothing but the standard library.
func TestWireIsALeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/vrsky/vrsky/internal/control/wire").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, imp := range strings.Fields(string(out)) {
		require.NotContains(t, imp, ".", "wire imports %s", imp)
	}
}

func TestIDsAreBuiltFromBusinessKeys(t *testing.T) {
	for got, want := range map[string]string{
		wire.IntegrationWorkflowID("acme", "orders"):    "integration/acme/orders",
		wire.IntegrationScheduleID("acme", "orders"):    "integration/acme/orders",
		wire.IntegrationRunWorkflowID("acme", "orders"): "integration-run/acme/orders",
		wire.DLQReplayWorkflowID("acme", "replay-1"):    "dlq-replay/acme/replay-1",
		wire.TenantProvisionWorkflowID("acme"):          "tenant/acme/provision",
		wire.TenantLimitsWorkflowID("acme"):             "tenant/acme/limits",
		wire.TenantDecommissionWorkflowID("acme"):       "tenant/acme/decommission",
	} {
		require.Equal(t, want, got)
	}
}

// The wire types stand for types of other packages in recorded histories:
// they must encode the same, and convert to them.
func TestWireTypesEncodeAsTheTypesTheyStandFor(t *testing.T) {
	limits := natsauth.Limits{DiskBytes: 1 << 30, MemoryBytes: 1, Streams: 2, Consumers: 3, DLQBytes: 4}
	same := func(a, b any) {
		t.Helper()
		ja, err := json.Marshal(a)
		require.NoError(t, err)
		jb, err := json.Marshal(b)
		require.NoError(t, err)
		require.JSONEq(t, string(jb), string(ja))
	}
	same(wire.Limits(limits), limits)
	tl := store.TenantLimits{Limits: limits, Integrations: 5, MessagesPerSecond: 6}
	same(wire.TenantLimits{Limits: wire.Limits(limits), Integrations: 5, MessagesPerSecond: 6}, tl)
	same(wire.NewTenant{ID: "a", Name: "A", KeyID: "k", KeyPrefix: "p", KeyHash: []byte{1}, Scopes: []string{"read"},
		Limits: &wire.TenantLimits{Limits: wire.Limits(limits), Integrations: 5}},
		store.NewTenant{ID: "a", Name: "A", KeyID: "k", KeyPrefix: "p", KeyHash: []byte{1}, Scopes: []store.Scope{store.ScopeRead},
			Limits: &store.TenantLimits{Limits: limits, Integrations: 5}})
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f := dataplane.DLQFilter{Integration: "orders", Producer: "db", Since: at, Until: at.Add(time.Hour), ErrorContains: "x"}
	same(wire.DLQFilter(f), f)
	require.Equal(t, f, dataplane.DLQFilter(wire.DLQFilter(f)))
}
