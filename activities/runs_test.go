package activities

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// scheduledSpec is ordersSpec polled on a schedule.
func scheduledSpec(schedule string) spec.Integration {
	return spec.Integration{Name: "orders", Consumer: spec.Step{Connector: "file"},
		Producers: map[string]spec.Step{"db": {Connector: "postgres"}}, Schedule: schedule}
}

// desire writes the integration's desired state as the lifecycle does.
func (f *integrationFixture) desire(t *testing.T, status, schedule string) {
	t.Helper()
	require.NoError(t, f.stateBucket.PutDesired(context.Background(), dataplane.Desired{
		Tenant: f.tenant, Integration: f.id, Version: 1, Status: status, Spec: scheduledSpec(schedule),
	}))
}

// standInRunner answers every run request of the fixture's integration as
// a runner does, through answer; it writes nothing when answer returns nil.
func (f *integrationFixture) standInRunner(t *testing.T, answer func(dataplane.RunRequest) []dataplane.RunResult) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := f.stateBucket.Runs.Watch(ctx, f.pipeline.RunRequestKey())
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var entry jetstream.KeyValueEntry
			select {
			case <-ctx.Done():
				return
			case entry = <-w.Updates():
			}
			if entry == nil {
				continue
			}
			var req dataplane.RunRequest
			if json.Unmarshal(entry.Value(), &req) != nil {
				continue
			}
			for _, res := range answer(req) {
				b, _ := json.Marshal(res)
				_, _ = f.stateBucket.Runs.Put(ctx, f.pipeline.RunResultKey(), b)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = w.Stop()
	})
}

func TestRunOnceWaitsForTheRunnersResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	f.desire(t, dataplane.DesiredRunning, "*/5 * * * *")
	requests := 0
	f.standInRunner(t, func(req dataplane.RunRequest) []dataplane.RunResult {
		requests++
		started := time.Now().UTC()
		res := dataplane.RunResult{RunID: req.RunID, Runner: "r1", StartedAt: started}
		finished := res
		finished.FinishedAt, finished.Messages = started.Add(time.Second), 3
		if req.RunID == "bad" {
			finished.Error = "open dir: permission denied"
		}
		return []dataplane.RunResult{res, finished}
	})

	out, err := f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "run-1", Deadline: time.Now().Add(10 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, RunSucceeded, out.Status)
	require.Equal(t, 3, out.Messages)
	require.Equal(t, "r1", out.Runner)
	require.Empty(t, out.Error)
	require.Equal(t, time.Second, out.FinishedAt.Sub(out.StartedAt))

	again, err := f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "run-1"})
	require.NoError(t, err)
	require.Equal(t, out, again, "a retried activity waits for the same run")
	require.Equal(t, 1, requests, "and does not ask for a second one")

	failed, err := f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "bad"})
	require.NoError(t, err)
	require.Equal(t, RunFailed, failed.Status)
	require.Equal(t, "open dir: permission denied", failed.Error)
	require.Equal(t, 3, failed.Messages, "what a failed run took in is reported")
}

func TestRunOnceTimesOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	f.desire(t, dataplane.DesiredRunning, "0 * * * *")

	out, err := f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "nobody", Deadline: time.Now().Add(150 * time.Millisecond)})
	require.NoError(t, err)
	require.Equal(t, RunTimedOut, out.Status)
	require.Contains(t, out.Error, "no runner took the run")

	f.standInRunner(t, func(req dataplane.RunRequest) []dataplane.RunResult {
		return []dataplane.RunResult{{RunID: req.RunID, Runner: "r1", StartedAt: time.Now()}}
	})
	out, err = f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "slow", Deadline: time.Now().Add(300 * time.Millisecond)})
	require.NoError(t, err)
	require.Equal(t, RunTimedOut, out.Status)
	require.Equal(t, "r1", out.Runner)
	require.Contains(t, out.Error, "did not finish the run")

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = f.a.RunOnce(cctx, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "cancelled"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRunOnceSkipsWhatIsNotRunningOnASchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	in := RunInput{Tenant: f.tenant, Integration: f.id, RunID: "r"}

	out, err := f.a.RunOnce(ctx, in)
	require.NoError(t, err)
	require.Equal(t, RunOutcome{RunID: "r", Status: RunSkipped, Error: "the integration is not running"}, out, "never deployed")

	f.desire(t, dataplane.DesiredStopped, "0 * * * *")
	out, err = f.a.RunOnce(ctx, in)
	require.NoError(t, err)
	require.Equal(t, RunSkipped, out.Status)

	f.desire(t, dataplane.DesiredRunning, "")
	out, err = f.a.RunOnce(ctx, in)
	require.NoError(t, err)
	require.Equal(t, RunSkipped, out.Status)
	require.Contains(t, out.Error, "has no schedule")
	_, err = f.stateBucket.Runs.Get(ctx, f.pipeline.RunRequestKey())
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "nothing was asked of the runners")

	_, err = f.a.RunOnce(ctx, RunInput{Tenant: "Bad!", Integration: f.id, RunID: "r"})
	require.Error(t, err)
	f.desire(t, dataplane.DesiredRunning, "0 * * * *")
	_, err = f.a.RunOnce(ctx, RunInput{Tenant: f.tenant, Integration: f.id})
	require.ErrorContains(t, err, "run ID")
}

func TestRunOnceHeartbeatsAsAnActivity(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	f.desire(t, dataplane.DesiredRunning, "0 * * * *")
	f.standInRunner(t, func(req dataplane.RunRequest) []dataplane.RunResult {
		time.Sleep(100 * time.Millisecond)
		now := time.Now()
		return []dataplane.RunResult{{RunID: req.RunID, StartedAt: now, FinishedAt: now, Messages: 1}}
	})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.a)
	v, err := env.ExecuteActivity(f.a.RunOnce, RunInput{Tenant: f.tenant, Integration: f.id, RunID: "hb"})
	require.NoError(t, err)
	var out RunOutcome
	require.NoError(t, v.Get(&out))
	require.Equal(t, RunSucceeded, out.Status)
}

func TestRecordTransitionLogsARunWithoutChangingTheState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	run := Transition{ID: "run/abc", Tenant: f.tenant, Integration: f.id, Actor: "schedule", Action: ActionRun,
		Reason: "took in 3 messages"}
	require.NoError(t, f.a.RecordTransition(ctx, run))
	require.NoError(t, f.a.RecordTransition(ctx, run))
	var status, desired string
	var version int
	require.NoError(t, f.db.QueryRow(ctx, `SELECT current_version, desired_status, status FROM integrations WHERE tenant_id = $1 AND id = $2`,
		f.tenant, f.id).Scan(&version, &desired, &status))
	require.Equal(t, []any{0, "stopped", "stopped"}, []any{version, desired, status}, "the integration's state is untouched")
	var n int
	var reason string
	require.NoError(t, f.db.QueryRow(ctx, `SELECT count(*), max(reason) FROM integration_events WHERE tenant_id = $1 AND action = 'run'`,
		f.tenant).Scan(&n, &reason))
	require.Equal(t, 1, n)
	require.Equal(t, "took in 3 messages", reason)
}
