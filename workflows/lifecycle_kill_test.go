package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestIntegrationLifecycleSurvivesAWorkerKilledMidChange: the worker
// carrying out a deploy dies without a word while it waits for the runners;
// another worker finishes the change once the attempt times out, and the
// integration ends as it would have without the kill.
func TestIntegrationLifecycleSurvivesAWorkerKilledMidChange(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the heartbeat timeout")
	}
	ts := testenv.TemporalServer(t)
	waiting, gone := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(gone) })
	var once sync.Once
	dying := ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationLifecycle)
		registerFakeIntegrationsAwaiting(r, func(context.Context, activities.AwaitStatusInput) (activities.RunnerStatus, error) {
			// A killed process neither heartbeats nor answers: the server
			// times the attempt out.
			once.Do(func() { close(waiting) })
			<-gone
			return activities.RunnerStatus{}, errors.New("the process is gone")
		})
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ch, err := control.New(c).ChangeIntegration(ctx, "acme", "orders", wire.IntegrationDeploy, "deploy-1", wire.ChangeRequest{Version: 1, Actor: "alice"})
	require.NoError(t, err)
	h := c.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: ch.WorkflowID, UpdateID: ch.UpdateID})
	<-waiting
	dying.Stop() // its attempt times out after the 15 s heartbeat timeout
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationLifecycle)
		registerFakeIntegrations(r)
	})

	var st wire.IntegrationState
	require.NoError(t, h.Get(ctx, &st))
	require.Equal(t, wire.IntegrationState{Version: 1, DesiredStatus: dataplane.DesiredRunning, Status: dataplane.StatusRunning}, st)
	v, err := c.QueryWorkflow(ctx, wire.IntegrationWorkflowID("acme", "orders"), "", wire.IntegrationStateQuery)
	require.NoError(t, err)
	var queried wire.IntegrationState
	require.NoError(t, v.Get(&queried))
	require.Equal(t, st, queried)
}
