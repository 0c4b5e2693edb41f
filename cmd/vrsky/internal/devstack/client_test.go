package devstack_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
)

// TestAgainstTheDevStack drives a real dev stack the way VRSky's commands
// do: create tenants, deploy and redeploy an integration, read it, stop,
// start and delete it, and see another tenant find none of it.
func TestAgainstTheDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev stack")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	adminKey, err := os.ReadFile(filepath.Join(dir, devstack.AdminKeyFile))
	require.NoError(t, err)
	admin, err := client.New("http://"+stack.Endpoints().HTTP, string(adminKey))
	require.NoError(t, err)

	key, err := admin.CreateTenant(ctx, "acme")
	require.NoError(t, err)
	require.NotEmpty(t, key)
	_, err = admin.CreateTenant(ctx, "acme")
	require.Equal(t, http.StatusConflict, client.StatusOf(err), "%v", err)
	otherKey, err := admin.CreateTenant(ctx, "globex")
	require.NoError(t, err)
	acme, other := admin.WithKey(key), admin.WithKey(otherKey)

	spec := []byte("name: orders\nconsumer: {connector: http-webhook}\nsteps: [{connector: json-transform, config: {set: {seen: 'true'}}}]\n" +
		"producers: {out: {connector: file, config: {dir: out}}}\n")
	got, err := acme.Deploy(ctx, "orders", spec, "first", false)
	require.NoError(t, err)
	require.Equal(t, client.Deployed{Name: "orders", Version: 1, Status: "running"}, got)
	// Deploy then stop, sent back to back: the new version ends stopped.
	got, err = acme.Deploy(ctx, "orders", spec, "second", true)
	require.NoError(t, err)
	require.Equal(t, client.Deployed{Name: "orders", Version: 2, Status: "stopped"}, got)
	_, err = acme.Deploy(ctx, "bad", []byte("name: bad\nconsumer: {connector: http-webhook}\nproducers: {out: {connector: teleport}}\n"), "test", false)
	require.ErrorContains(t, err, `unknown producer "teleport"`)
	require.Equal(t, http.StatusUnprocessableEntity, client.StatusOf(err))

	change, err := acme.ChangeIntegration(ctx, "orders", "start", "back on")
	require.NoError(t, err)
	require.Equal(t, client.Start, change.Action)
	require.Equal(t, "integration/acme/orders", change.WorkflowId)
	require.Contains(t, string(change.Body), `"action":"start"`)
	require.NoError(t, acme.AwaitChange(ctx, "orders", change))
	st, err := acme.GetIntegrationStatusWithResponse(ctx, "orders")
	require.NoError(t, client.Check("status", st, err, http.StatusOK))
	require.Equal(t, "running", st.JSON200.Status)
	require.EqualValues(t, 2, st.JSON200.Runner.Version)

	list, err := acme.AllIntegrations(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "file", list[0].Spec.Producers["out"].Connector)
	events, err := acme.RecentLogs(ctx, "orders", 2)
	require.NoError(t, err)
	require.Len(t, events, 2)
	require.Equal(t, "start", events[0].Action, "newest first")
	require.Equal(t, "back on", *events[0].Reason)

	// Another tenant's key finds nothing.
	r, err := other.GetIntegrationWithResponse(ctx, "orders")
	require.True(t, client.IsNotFound(client.Check("get", r, err, http.StatusOK)))
	_, err = other.ChangeIntegration(ctx, "orders", "stop", "")
	require.True(t, client.IsNotFound(err), "%v", err)
	list, err = other.AllIntegrations(ctx, "")
	require.NoError(t, err)
	require.Empty(t, list)

	change, err = acme.ChangeIntegration(ctx, "orders", "stop", "maintenance")
	require.NoError(t, err)
	require.NoError(t, acme.AwaitChange(ctx, "orders", change))
	change, err = acme.ChangeIntegration(ctx, "orders", "deploy", "again")
	require.NoError(t, err)
	require.EqualValues(t, 2, change.Version)
	require.NoError(t, acme.AwaitChange(ctx, "orders", change))
	change, err = acme.ChangeIntegration(ctx, "orders", "delete", "done")
	require.NoError(t, err)
	require.NoError(t, acme.AwaitChange(ctx, "orders", change))
	r, err = acme.GetIntegrationWithResponse(ctx, "orders")
	require.EqualError(t, client.Check("get integration orders", r, err, http.StatusOK), "get integration orders: 404 Not Found: not found")
	events, err = acme.RecentLogs(ctx, "orders", 100)
	require.NoError(t, err, "the log outlives the integration")
	require.Greater(t, len(events), 5)

	// A key that is not one is refused, with the API's reason.
	_, err = admin.WithKey("nope").AllIntegrations(ctx, "")
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err), "%v", err)
}
