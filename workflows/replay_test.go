package workflows

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

// Run `go test ./workflows -run OnTemporal -args -update-history` after a change
// to a workflow that is meant to break replay (and only then), and commit
// the files in testdata/. The replay tests then prove that the code still
// replays the histories recorded by the version before.
var updateHistory = flag.Bool("update-history", false, "rewrite the recorded workflow histories in testdata/")

const (
	integrationLifecycleHistory = "testdata/integration_lifecycle_history.json"
	// integrationLifecycleBeforeSchedulesHistory was recorded before the
	// lifecycle managed schedules; it is never rewritten.
	integrationLifecycleBeforeSchedulesHistory = "testdata/integration_lifecycle_before_schedules_history.json"
	integrationRunHistory                      = "testdata/integration_run_history.json"
	blobJanitorHistory                         = "testdata/blob_janitor_history.json"
	dlqReplayHistory                           = "testdata/dlq_replay_history.json"
)

// saveHistory writes a finished workflow's history as JSON, the format of
// `temporal workflow show --output json`, when -update-history is set.
func saveHistory(t *testing.T, c client.Client, workflowID, runID, path string) {
	t.Helper()
	if !*updateHistory {
		return
	}
	ctx := context.Background()
	var hist historypb.History
	iter := c.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("wrote %s (%d events)", path, len(hist.Events))
}

func replay(t *testing.T, path string, wf any) {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(wf)
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, path))
}

// registerFakeIntegrations registers activities under the names of
// activities.Integrations that act as a platform whose runners always
// report what is desired.
func registerFakeIntegrations(r worker.Registry) { registerFakeIntegrationsAwaiting(r, nil) }

// registerFakeIntegrationsAwaiting is registerFakeIntegrations with await,
// when set, standing in for AwaitRunnerStatus.
func registerFakeIntegrationsAwaiting(r worker.Registry, await func(context.Context, activities.AwaitStatusInput) (activities.RunnerStatus, error)) {
	desired := map[string]activities.DesiredStateInput{}
	r.RegisterActivityWithOptions(func(_ context.Context, in activities.DesiredStateInput) error {
		desired[in.Tenant+"/"+in.Integration] = in
		return nil
	}, activity.RegisterOptions{Name: "WriteDesiredState"})
	r.RegisterActivityWithOptions(func(context.Context, activities.PipelineInput) error { return nil },
		activity.RegisterOptions{Name: "RemoveDesiredState"})
	if await == nil {
		await = func(_ context.Context, in activities.AwaitStatusInput) (activities.RunnerStatus, error) {
			return activities.RunnerStatus{Version: in.Version, Status: in.Status}, nil
		}
	}
	r.RegisterActivityWithOptions(await, activity.RegisterOptions{Name: "AwaitRunnerStatus"})
	r.RegisterActivityWithOptions(func(context.Context, activities.Transition) error { return nil },
		activity.RegisterOptions{Name: "RecordTransition"})
	r.RegisterActivityWithOptions(func(context.Context, activities.SyncScheduleInput) (activities.SyncScheduleResult, error) {
		return activities.SyncScheduleResult{}, nil
	}, activity.RegisterOptions{Name: "SyncSchedule"})
	r.RegisterActivityWithOptions(func(context.Context, activities.PipelineInput) error { return nil },
		activity.RegisterOptions{Name: "RemoveSchedule"})
}

func TestIntegrationLifecycleOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationLifecycle)
		registerFakeIntegrations(r)
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tenant, integration := "acme", "orders"

	send := func(action, updateID string, req wire.ChangeRequest) (wire.IntegrationState, error) {
		var st wire.IntegrationState
		ch, err := control.New(c).ChangeIntegration(ctx, tenant, integration, action, updateID, req)
		if err != nil {
			return st, err
		}
		err = c.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: ch.WorkflowID, UpdateID: ch.UpdateID}).Get(ctx, &st)
		return st, err
	}
	ask := wire.ChangeRequest{Actor: "alice", Reason: "release"}

	_, err := send(wire.IntegrationStart, "", ask)
	require.ErrorContains(t, err, "deploy a version first", "the start starts the workflow and is refused")

	ask.Version = 1
	st, err := send(wire.IntegrationDeploy, "deploy-1", ask)
	require.NoError(t, err)
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: dataplane.DesiredRunning, Status: dataplane.StatusRunning}, st)
	again, err := send(wire.IntegrationDeploy, "deploy-1", ask)
	require.NoError(t, err)
	require.Equal(t, st, again, "the same update ID is the same change")

	st, err = send(wire.IntegrationStop, "", wire.ChangeRequest{Actor: "alice"})
	require.NoError(t, err)
	require.Equal(t, dataplane.StatusStopped, st.Status)

	st, err = send(wire.IntegrationUpdate, "", wire.ChangeRequest{Version: 2, Actor: "bob", Reason: "new mapping"})
	require.NoError(t, err)
	require.Equal(t, wire.IntegrationState{Version: 2, DesiredStatus: dataplane.DesiredStopped, Status: dataplane.StatusStopped}, st)

	v, err := c.QueryWorkflow(ctx, wire.IntegrationWorkflowID(tenant, integration), "", wire.IntegrationStateQuery)
	require.NoError(t, err)
	var queried wire.IntegrationState
	require.NoError(t, v.Get(&queried))
	require.Equal(t, st, queried)

	st, err = send(wire.IntegrationDelete, "", wire.ChangeRequest{Actor: "bob"})
	require.NoError(t, err)
	require.Equal(t, activities.StatusDeleted, st.Status)

	run := c.GetWorkflow(ctx, wire.IntegrationWorkflowID(tenant, integration), "")
	var res wire.IntegrationLifecycleResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, st, res.State)
	saveHistory(t, c, run.GetID(), run.GetRunID(), integrationLifecycleHistory)
}

func TestIntegrationLifecycleReplaysRecordedHistory(t *testing.T) {
	replay(t, integrationLifecycleHistory, IntegrationLifecycle)
}

// TestIntegrationLifecycleReplaysHistoryFromBeforeSchedules: lifecycles
// started before integrations had schedules still replay (GetVersion).
func TestIntegrationLifecycleReplaysHistoryFromBeforeSchedules(t *testing.T) {
	replay(t, integrationLifecycleBeforeSchedulesHistory, IntegrationLifecycle)
}

func TestBlobJanitorOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(BlobJanitor)
		r.RegisterActivityWithOptions(func(context.Context, activities.SweepInput) (activities.SweepResult, error) {
			return activities.SweepResult{Removed: 2}, nil
		}, activity.RegisterOptions{Name: "SweepExpiredBlobs"})
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "blob-janitor-test", TaskQueue: wire.ControlTaskQueue},
		BlobJanitor, wire.BlobJanitorInput{})
	require.NoError(t, err)
	var res BlobJanitorResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, 2, res.Removed)
	saveHistory(t, c, run.GetID(), run.GetRunID(), blobJanitorHistory)
}

func TestBlobJanitorReplaysRecordedHistory(t *testing.T) {
	replay(t, blobJanitorHistory, BlobJanitor)
}

// TestDLQReplayOnTemporal pages through three stand-in pages of dead letters.
func TestDLQReplayOnTemporal(t *testing.T) {
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(DLQReplay)
		r.RegisterActivityWithOptions(func(_ context.Context, in activities.ReplayPageInput) (activities.ReplayPageResult, error) {
			next := in.AfterSeq + 10
			return activities.ReplayPageResult{Done: 10, LastSeq: next, UpToSeq: 30, More: next < 30}, nil
		}, activity.RegisterOptions{Name: "ReplayPage"})
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wire.DLQReplayWorkflowID("acme", "r1"), TaskQueue: wire.ControlTaskQueue},
		DLQReplay, wire.DLQReplayInput{Tenant: "acme"})
	require.NoError(t, err)
	var res wire.DLQReplayResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, 30, res.Replayed)
	saveHistory(t, c, run.GetID(), run.GetRunID(), dlqReplayHistory)
}

func TestDLQReplayReplaysRecordedHistory(t *testing.T) {
	replay(t, dlqReplayHistory, DLQReplay)
}
