package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
)

// TestScheduledFileIntegrationThroughTheDevStack: a file integration on a
// schedule takes nothing in by itself; run now through the API, the file
// in its directory is taken in and reaches the producer, and the run shows
// in the schedule and the execution log. Pause and resume show too.
func TestScheduledFileIntegrationThroughTheDevStack(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	admin := adminClient(t, ep, dir)
	c, _, err := tenantkey.Ensure(ctx, admin, "acme", filepath.Join(t.TempDir(), "acme.key"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := c.ListIntegrationsWithResponse(ctx, &client.ListIntegrationsParams{Limit: client.Ptr[int64](1)})
		return err == nil && r.StatusCode() == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "the tenant's key works once it is provisioned")

	// At 03:00 UTC on 1 January only: nothing runs by itself during the test.
	_, err = c.Deploy(ctx, "nightly", []byte(`
name: nightly
consumer: { connector: file, config: { dir: in, format: ndjson } }
producers: { out: { connector: file, config: { dir: out } } }
schedule: "0 3 1 1 *"
`), "scheduled import", false)
	require.NoError(t, err)

	in := filepath.Join(dir, "files", "acme", "in")
	require.NoError(t, os.MkdirAll(in, 0o750))
	drop := filepath.Join(in, "orders.ndjson")
	require.NoError(t, os.WriteFile(drop, []byte("{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"), 0o640))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(drop, old, old))

	time.Sleep(2 * time.Second)
	require.FileExists(t, drop, "a scheduled consumer does not watch its directory")

	schedule := func() map[string]any {
		t.Helper()
		var out map[string]any
		r, err := c.GetIntegrationScheduleWithResponse(ctx, "nightly")
		require.NoError(t, client.Check("get schedule", r, err, http.StatusOK))
		require.NoError(t, json.Unmarshal(r.Body, &out))
		return out
	}
	post := func(path string) int {
		t.Helper()
		var (
			r   client.Response
			err error
		)
		switch path {
		case "trigger":
			r, err = c.TriggerIntegrationScheduleWithResponse(ctx, "nightly")
		case "pause":
			r, err = c.PauseIntegrationScheduleWithResponse(ctx, "nightly", client.ChangeReason{})
		case "resume":
			r, err = c.ResumeIntegrationScheduleWithResponse(ctx, "nightly", client.ChangeReason{})
		}
		require.NoError(t, err)
		require.Less(t, r.StatusCode(), 300)
		return r.StatusCode()
	}
	sched := schedule()
	require.Equal(t, "0 3 1 1 *", sched["cron"])
	require.Equal(t, false, sched["paused"])

	require.Equal(t, http.StatusAccepted, post("trigger"))
	lines := func() []string { return producedLines(dir, "acme", "out") }
	require.Eventually(t, func() bool { return len(lines()) == 3 }, time.Minute, 100*time.Millisecond,
		"the triggered run takes the file in and it reaches the producer")
	require.ElementsMatch(t, []string{`{"id":1}`, `{"id":2}`, `{"id":3}`}, lines())
	// The consumer moves the file once JetStream has stored its lines, which
	// may be just after the producer wrote them.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(in, "done", "orders.ndjson"))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the file is acknowledged")

	require.Eventually(t, func() bool {
		runs, _ := schedule()["recent_runs"].([]any)
		return len(runs) == 1 && runs[0].(map[string]any)["status"] == "succeeded"
	}, time.Minute, 100*time.Millisecond)
	run := schedule()["recent_runs"].([]any)[0].(map[string]any)
	require.EqualValues(t, 3, run["messages"])
	require.Equal(t, "dev", run["runner"])
	require.Eventually(t, func() bool {
		events, err := c.RecentLogs(ctx, "nightly", 1)
		return err == nil && len(events) == 1 && events[0].Action == "run" && events[0].Reason != nil &&
			strings.Contains(*events[0].Reason, "succeeded: took in 3 message(s)")
	}, time.Minute, 100*time.Millisecond, "the run is in the execution log")

	require.Equal(t, http.StatusOK, post("pause"))
	require.Equal(t, true, schedule()["paused"])
	require.Equal(t, http.StatusOK, post("resume"))
	require.Equal(t, false, schedule()["paused"])
}
