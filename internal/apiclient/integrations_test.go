package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIntegrationsAgainstTheDevStack reads and changes an integration the
// way `vrsky integrations` does: list, get, status, versions, the log page
// by page, stop, start, delete, and another tenant seeing none of it.
func TestIntegrationsAgainstTheDevStack(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := devStackAdmin(t, dir)
	c, _, err := EnsureTenant(ctx, admin, "acme", filepath.Join(dir, "keys", "acme.key"))
	require.NoError(t, err)
	other, _, err := EnsureTenant(ctx, admin, "globex", filepath.Join(dir, "keys", "globex.key"))
	require.NoError(t, err)

	spec := []byte("name: orders\nconsumer: {connector: http-webhook}\nsteps: [{connector: json-transform, config: {set: {seen: 'true'}}}]\n" +
		"producers: {out: {connector: file, config: {dir: out}}}\n")
	_, err = c.Deploy(ctx, "orders", spec, "first", false)
	require.NoError(t, err)
	_, err = c.Deploy(ctx, "orders", spec, "second", false)
	require.NoError(t, err)
	// Deploy waits for the runners; deploying again and waiting for the
	// change makes sure the lifecycle recorded version 2 too.
	accepted, raw, err := c.ChangeIntegration(ctx, "orders", "deploy", "again")
	require.NoError(t, err)
	require.Equal(t, 2, accepted.Version)
	require.JSONEq(t, `"deploy"`, string(mustField(t, raw, "action")))
	require.NoError(t, c.AwaitChange(ctx, "orders", accepted))

	list, raw, err := c.ListIntegrations(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "orders", list[0].ID)
	require.Equal(t, 2, list[0].Version)
	require.Equal(t, "file", list[0].Spec.Producers["out"].Connector)
	var listJSON struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal(raw, &listJSON))
	require.Equal(t, "orders", listJSON.Items[0]["id"])
	list, _, err = c.ListIntegrations(ctx, "stopped")
	require.NoError(t, err)
	require.Empty(t, list)

	it, raw, err := c.GetIntegration(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 2, it.DeployedVersion)
	require.Equal(t, "running", it.DesiredStatus)
	require.Equal(t, "json-transform", it.Spec.Steps[0].Connector)
	require.True(t, json.Valid(raw))

	st, _, err := c.IntegrationStatus(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 2, st.Version)
	require.NotNil(t, st.Runner)
	require.Equal(t, "running", st.Runner.Status)

	versions, _, err := c.IntegrationVersions(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, []int{2, 1}, []int{versions[0].Version, versions[1].Version})

	// Pages of one entry: collect follows the cursor to the limit, newest
	// first, without repeating an entry.
	all, _, err := c.IntegrationLogs(ctx, "orders", 100)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), 2)
	paged, raw, err := collect[IntegrationEvent](ctx, c, "logs", "/v1/integrations/orders/logs", url.Values{}, 2, 1)
	require.NoError(t, err)
	require.Equal(t, all[:2], paged)
	require.True(t, json.Valid(raw))
	require.Equal(t, "deploy", all[len(all)-1].Action, "the oldest entry is the first deploy")
	_, _, err = c.IntegrationLogs(ctx, "orders", 0)
	require.ErrorContains(t, err, "not positive")

	accepted, _, err = c.ChangeIntegration(ctx, "orders", "stop", "maintenance")
	require.NoError(t, err)
	require.Equal(t, "integration/acme/orders", accepted.WorkflowID)
	require.Equal(t, "stop", accepted.Action)
	require.Equal(t, 2, accepted.Version)
	require.NoError(t, c.AwaitChange(ctx, "orders", accepted))
	st, _, err = c.IntegrationStatus(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, "stopped", st.Status, "recorded")
	require.Equal(t, "stopped", st.Runner.Status, "reported")
	events, _, err := c.IntegrationLogs(ctx, "orders", 1)
	require.NoError(t, err)
	require.Equal(t, IntegrationEvent{ID: events[0].ID, At: events[0].At, Actor: events[0].Actor,
		Action: "stop", FromStatus: "running", ToStatus: "stopped", Reason: "maintenance"}, events[0])

	accepted, _, err = c.ChangeIntegration(ctx, "orders", "start", "")
	require.NoError(t, err)
	require.NoError(t, c.AwaitChange(ctx, "orders", accepted))

	_, _, err = c.ChangeIntegration(ctx, "orders", "explode", "")
	require.EqualError(t, err, "explode integration orders: unknown action")
	require.ErrorContains(t, c.AwaitChange(ctx, "orders", ChangeAccepted{Action: "explode"}), "cannot wait")

	// Another tenant's key finds nothing.
	_, _, err = other.GetIntegration(ctx, "orders")
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Status)
	_, _, err = other.ChangeIntegration(ctx, "orders", "stop", "")
	require.True(t, isNotFound(err), "%v", err)
	list, _, err = other.ListIntegrations(ctx, "")
	require.NoError(t, err)
	require.Empty(t, list)

	accepted, _, err = c.ChangeIntegration(ctx, "orders", "delete", "")
	require.NoError(t, err)
	require.Equal(t, "delete", accepted.Action)
	require.NoError(t, c.AwaitChange(ctx, "orders", accepted))
	_, _, err = c.GetIntegration(ctx, "orders")
	require.EqualError(t, err, "get integration orders: 404 Not Found: not found")
	_, _, err = c.IntegrationVersions(ctx, "orders")
	require.True(t, isNotFound(err), "%v", err)
	events, _, err = c.IntegrationLogs(ctx, "orders", 100)
	require.NoError(t, err, "the log outlives the integration")
	require.Greater(t, len(events), len(all))

	// A problem with located errors reads as one line.
	_, _, err = c.ListIntegrations(ctx, "sideways")
	require.ErrorContains(t, err, "list integrations: 422 Unprocessable Entity")
	require.ErrorContains(t, err, "query.status")

	// Waiting ends with the context.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	err = admin.WithKey("nope").AwaitChange(short, "orders", ChangeAccepted{Action: "delete"})
	require.ErrorContains(t, err, "not deleted in time")
	err = c.AwaitChange(short, "orders", ChangeAccepted{Action: "stop", logMark: events[0].ID})
	require.ErrorContains(t, err, "stop not carried out in time")
}

// mustField returns the JSON of an object's field.
func mustField(t *testing.T, raw []byte, name string) json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fields))
	return fields[name]
}
