package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
)

// pollingJSON is a file integration polled at 06:00 UTC every day.
const pollingJSON = `{
	"name": "nightly",
	"consumer": {"connector": "file", "config": {"dir": "in"}},
	"producers": {"archive": {"connector": "file", "config": {"dir": "archive"}}},
	"schedule": "0 6 * * *"
}`

// standInRunsServer answers every run request as the runner holding the
// pipeline's lease does, taking in one message per run.
func standInRunsServer(t *testing.T, state *dataplane.State) {
	answerPuts(t, state.Runs, func(ctx context.Context, entry jetstream.KeyValueEntry) {
		if strings.HasSuffix(entry.Key(), ".result") {
			return
		}
		var req dataplane.RunRequest
		if json.Unmarshal(entry.Value(), &req) != nil {
			return
		}
		now := time.Now().UTC()
		b, _ := json.Marshal(dataplane.RunResult{RunID: req.RunID, Runner: "runner-1", StartedAt: now, FinishedAt: now.Add(time.Millisecond), Messages: 1})
		_, _ = state.Runs.Put(ctx, entry.Key()+".result", b)
	})
}

// scheduleOf reads the integration's schedule and requires it exists.
func scheduleOf(t *testing.T, e *lifecycleEnv, key, integration string) map[string]any {
	t.Helper()
	res := call(t, e.h, http.MethodGet, "/v1/integrations/"+integration+"/schedule", key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	return res.body
}

func TestScheduleThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	standInRunsServer(t, e.state)
	key, keyID := e.createTenant(t, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, pollingJSON).code)
	path := "/v1/integrations/nightly/schedule"

	before := call(t, e.h, http.MethodGet, path, key, "")
	requireProblem(t, before, http.StatusNotFound)
	require.Contains(t, before.body["detail"], "not deployed yet")

	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/nightly/deploy", key, "").code)
	e.awaitStatus(t, key, "nightly", "running")
	s := scheduleOf(t, e, key, "nightly")
	require.Equal(t, wire.IntegrationScheduleID("acme", "nightly"), s["id"])
	require.Equal(t, "0 6 * * *", s["cron"])
	require.EqualValues(t, 1, s["version"])
	require.Equal(t, false, s["paused"])
	require.Equal(t, "skip", s["overlap"])
	require.Equal(t, "24h0m0s", s["catchup_window"])
	next := s["next_runs"].([]any)
	require.NotEmpty(t, next)
	for _, n := range next {
		at, err := time.Parse(time.RFC3339, n.(string))
		require.NoError(t, err)
		require.Equal(t, []int{6, 0}, []int{at.UTC().Hour(), at.UTC().Minute()}, "every day at 06:00 UTC")
	}
	require.Empty(t, s["recent_runs"])

	// Pause and resume, each saying who and why.
	paused := call(t, e.h, http.MethodPost, path+"/pause", key, `{"reason":"supplier outage"}`)
	require.Equal(t, http.StatusOK, paused.code, paused.raw)
	require.Equal(t, true, paused.body["paused"])
	require.Equal(t, "paused by key "+keyID+": supplier outage", paused.body["note"])
	require.Empty(t, paused.body["next_runs"], "nothing is due while paused")
	require.Equal(t, true, scheduleOf(t, e, key, "nightly")["paused"])
	resumed := call(t, e.h, http.MethodPost, path+"/resume", key, "")
	require.Equal(t, http.StatusOK, resumed.code, resumed.raw)
	require.Equal(t, false, resumed.body["paused"])
	require.Equal(t, "resumed by key "+keyID, resumed.body["note"])

	// Run now: the run is served and recorded.
	trigger := call(t, e.h, http.MethodPost, path+"/trigger", key, "")
	require.Equal(t, http.StatusAccepted, trigger.code, trigger.raw)
	require.Equal(t, "trigger", trigger.body["action"])
	require.Eventually(t, func() bool {
		s = scheduleOf(t, e, key, "nightly")
		return len(s["recent_runs"].([]any)) == 1 && s["running"] == false
	}, 30*time.Second, 50*time.Millisecond)
	run := s["recent_runs"].([]any)[0].(map[string]any)
	require.Equal(t, "succeeded", run["status"])
	require.EqualValues(t, 1, run["messages"])
	require.Equal(t, "runner-1", run["runner"])
	starts := s["recent_starts"].([]any)
	require.Len(t, starts, 1)
	require.Equal(t, run["run_id"], starts[0].(map[string]any)["run_id"], "the runners' report and Temporal's start are the same run")
	require.Eventually(t, func() bool {
		logs := call(t, e.h, http.MethodGet, "/v1/integrations/nightly/logs?limit=1", key, "")
		items, _ := logs.body["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["action"] == "run"
	}, 20*time.Second, 50*time.Millisecond, "the run is in the execution log")
	logs := call(t, e.h, http.MethodGet, "/v1/integrations/nightly/logs?limit=1", key, "")
	entry := logs.body["items"].([]any)[0].(map[string]any)
	require.Equal(t, "schedule", entry["actor"], "the schedule ran it")
	require.Contains(t, entry["reason"], "succeeded: took in 1 message(s)")
	status := call(t, e.h, http.MethodGet, "/v1/integrations/nightly/status", key, "")
	require.Equal(t, "running", status.body["status"], "a run leaves the integration's state as it is")

	// Backfill: bad windows are 422 with their location; a good one runs.
	now := time.Now().UTC()
	yesterday6 := time.Date(now.Year(), now.Month(), now.Day(), 6, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	window := func(start, end time.Time) string {
		return `{"start":"` + start.Format(time.RFC3339) + `","end":"` + end.Format(time.RFC3339) + `"}`
	}
	for _, tc := range []struct{ name, body, location, detail string }{
		{"end before start", window(yesterday6, yesterday6.Add(-time.Hour)), "body.end", "must be after start"},
		{"empty window", window(yesterday6, yesterday6), "body.end", "must be after start"},
		{"over 31 days", window(yesterday6.AddDate(0, 0, -40), yesterday6), "body.end", "at most 31 days"},
		{"in the future", window(yesterday6, now.Add(time.Hour)), "body.end", "must not be in the future"},
		{"not a time", `{"start":"yesterday","end":"` + now.Format(time.RFC3339) + `"}`, "body.start", ""},
		{"missing end", `{"start":"` + yesterday6.Format(time.RFC3339) + `"}`, "body", ""},
		{"no scheduled time", window(yesterday6.Add(time.Minute), yesterday6.Add(time.Hour)), "body", "holds no scheduled time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, e.h, http.MethodPost, path+"/backfill", key, tc.body)
			requireProblem(t, res, http.StatusUnprocessableEntity)
			require.Contains(t, problemLocations(res), tc.location, res.raw)
			require.Contains(t, res.raw, tc.detail)
		})
	}
	backfill := call(t, e.h, http.MethodPost, path+"/backfill", key, window(yesterday6.Add(-time.Hour), yesterday6.Add(time.Hour)))
	require.Equal(t, http.StatusAccepted, backfill.code, backfill.raw)
	require.EqualValues(t, 1, backfill.body["scheduled_times"])
	require.Eventually(t, func() bool {
		s = scheduleOf(t, e, key, "nightly")
		return len(s["recent_runs"].([]any)) == 2 && s["running"] == false
	}, 30*time.Second, 50*time.Millisecond, "the backfilled run ran")

	// Stopping the integration pauses its schedule; it cannot be resumed
	// or run until the integration starts again, which resumes it.
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/nightly/stop", key, "").code)
	e.awaitStatus(t, key, "nightly", "stopped")
	s = scheduleOf(t, e, key, "nightly")
	require.Equal(t, true, s["paused"])
	require.Contains(t, s["note"], "version 1 stopped by "+keyID)
	for _, op := range []string{"/resume", "/trigger", "/backfill"} {
		body := ""
		if op == "/backfill" {
			body = window(yesterday6.Add(-time.Hour), yesterday6.Add(time.Hour))
		}
		res := call(t, e.h, http.MethodPost, path+op, key, body)
		requireProblem(t, res, http.StatusConflict)
		require.Contains(t, res.body["detail"], "the integration is stopped")
	}
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/nightly/start", key, "").code)
	require.Eventually(t, func() bool { return scheduleOf(t, e, key, "nightly")["paused"] == false }, 20*time.Second, 50*time.Millisecond)

	// A version without a schedule removes it.
	noSchedule := strings.Replace(strings.Replace(pollingJSON, `,
	"schedule": "0 6 * * *"`, "", 1), `"dir": "archive"`, `"dir": "archive-2"`, 1)
	require.Equal(t, http.StatusOK, callWith(t, e.h, http.MethodPut, "/v1/integrations/nightly", key, noSchedule, nil).code)
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/nightly/deploy", key, "").code)
	var gone response
	require.Eventually(t, func() bool {
		gone = call(t, e.h, http.MethodGet, path, key, "")
		return gone.code == http.StatusNotFound && strings.Contains(gone.raw, "sets none")
	}, 20*time.Second, 50*time.Millisecond, "last: %s", gone.raw)
	require.Contains(t, gone.body["detail"], "its deployed version 2 sets none")
	_, err := e.control.DescribeSchedule(context.Background(), "acme", "nightly")
	require.ErrorIs(t, err, control.ErrNotFound, "the Temporal Schedule is deleted")
}

func TestDeletingAScheduledIntegrationDeletesItsSchedule(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	key, _ := e.createTenant(t, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, pollingJSON).code)
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/nightly/deploy", key, "").code)
	e.awaitStatus(t, key, "nightly", "running")
	scheduleOf(t, e, key, "nightly")

	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodDelete, "/v1/integrations/nightly", key, "").code)
	require.Eventually(t, func() bool {
		_, err := e.control.DescribeSchedule(context.Background(), "acme", "nightly")
		return err != nil
	}, 20*time.Second, 50*time.Millisecond)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/nightly/schedule", key, ""), http.StatusNotFound)
}

func TestSchedulesAreTenantScopedAndNeedScopes(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	keyA, _ := e.createTenant(t, "tenant-a")
	keyB, _ := e.createTenant(t, "tenant-b")
	reader, _ := e.createKey(t, keyA, `["read"]`)
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", keyA, pollingJSON).code)
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", keyA, ordersJSON).code)
	for _, id := range []string{"nightly", "orders"} {
		require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/"+id+"/deploy", keyA, "").code)
		e.awaitStatus(t, keyA, id, "running")
	}
	before := scheduleOf(t, e, keyA, "nightly")

	ops := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/integrations/nightly/schedule", ""},
		{http.MethodPost, "/v1/integrations/nightly/schedule/pause", `{"reason":"mine now"}`},
		{http.MethodPost, "/v1/integrations/nightly/schedule/resume", ""},
		{http.MethodPost, "/v1/integrations/nightly/schedule/trigger", ""},
		{http.MethodPost, "/v1/integrations/nightly/schedule/backfill", `{"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"}`},
	}
	for _, op := range ops {
		res := call(t, e.h, op.method, op.path, keyB, op.body)
		requireProblem(t, res, http.StatusNotFound)
		require.Equal(t, "not found", res.body["detail"], "indistinguishable from an unknown integration")
	}
	for _, op := range ops[1:] {
		requireProblem(t, call(t, e.h, op.method, op.path, reader, op.body), http.StatusForbidden)
	}
	require.Equal(t, before["paused"], scheduleOf(t, e, reader, "nightly")["paused"], "read is enough to look")

	// An integration without a schedule, and an unknown one.
	res := call(t, e.h, http.MethodGet, "/v1/integrations/orders/schedule", keyA, "")
	requireProblem(t, res, http.StatusNotFound)
	require.Contains(t, res.body["detail"], "integration orders has no schedule: its deployed version 1 sets none")
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations/orders/schedule/trigger", keyA, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/NOT_VALID/schedule", keyA, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/nothing/schedule", keyA, ""), http.StatusNotFound)

	// A schedule the lifecycle has not made (yet).
	require.NoError(t, e.control.DeleteSchedule(context.Background(), "tenant-a", "nightly"))
	res = call(t, e.h, http.MethodPost, "/v1/integrations/nightly/schedule/pause", keyA, "")
	requireProblem(t, res, http.StatusNotFound)
	require.Contains(t, res.body["detail"], "its lifecycle is creating or removing it")
}

func TestSchedulesWithoutTemporalAre503(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Control = nil })
	key, _ := activeTenant(t, e.st, "acme")
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", key, pollingJSON).code)
	for _, path := range []string{"/schedule", "/schedule/pause", "/schedule/trigger"} {
		method := http.MethodPost
		if path == "/schedule" {
			method = http.MethodGet
		}
		res := call(t, e.h, method, "/v1/integrations/nightly"+path, key, "")
		requireProblem(t, res, http.StatusServiceUnavailable)
		require.NotEmpty(t, res.header.Get("Retry-After"))
	}
}

func TestOpenAPIDocumentsScheduleOperations(t *testing.T) {
	t.Parallel()
	srv := New(Options{Gatherer: prometheus.NewRegistry(), Store: &store.Store{}})
	res := call(t, srv.Handler(), http.MethodGet, "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, res.code)
	paths := res.body["paths"].(map[string]any)
	for _, tc := range []struct{ path, id, scope string }{
		{"/v1/integrations/{integrationId}/schedule", "get-integration-schedule", "read"},
		{"/v1/integrations/{integrationId}/schedule/pause", "pause-integration-schedule", "write"},
		{"/v1/integrations/{integrationId}/schedule/resume", "resume-integration-schedule", "write"},
		{"/v1/integrations/{integrationId}/schedule/trigger", "trigger-integration-schedule", "write"},
		{"/v1/integrations/{integrationId}/schedule/backfill", "backfill-integration-schedule", "write"},
	} {
		method := "post"
		if tc.scope == "read" {
			method = "get"
		}
		o := paths[tc.path].(map[string]any)[method].(map[string]any)
		require.Equal(t, tc.id, o["operationId"])
		require.Equal(t, []any{"Schedules"}, o["tags"])
		require.NotEmpty(t, o["description"])
		require.Equal(t, []any{map[string]any{"bearer": []any{tc.scope}}}, o["security"], tc.id)
		for _, code := range []string{"401", "403", "404", "503"} {
			require.Contains(t, o["responses"], code, tc.id)
		}
	}
}
