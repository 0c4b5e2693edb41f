package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestIntegrationLifecycleSurvivesAWorkerKilledMidChange: the worker
// carrying out a deploy dies while it waits for the runners; another worker
// finishes the change, and the integration ends as it would have without
// the kill.
func TestIntegrationLifecycleSurvivesAWorkerKilledMidChange(t *testing.T) {
	ts := testenv.TemporalServer(t)
	waiting := make(chan struct{})
	var once sync.Once
	dying := ts.NewWorker(ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationLifecycle)
		registerFakeIntegrationsAwaiting(r, func(ctx context.Context, _ activities.AwaitStatusInput) (activities.RunnerStatus, error) {
			once.Do(func() { close(waiting) })
			<-ctx.Done()
			return activities.RunnerStatus{}, ctx.Err()
		})
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	h, err := ChangeIntegration(ctx, c, "acme", "orders", IntegrationDeploy, "deploy-1", ChangeRequest{Version: 1, Actor: "alice"})
	require.NoError(t, err)
	<-waiting
	dying.Stop()
	ts.NewWorker(ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(IntegrationLifecycle)
		registerFakeIntegrations(r)
	})

	var st IntegrationState
	require.NoError(t, h.Get(ctx, &st))
	require.Equal(t, IntegrationState{Version: 1, DesiredStatus: hotpath.DesiredRunning, Status: hotpath.StatusRunning}, st)
	v, err := c.QueryWorkflow(ctx, IntegrationWorkflowID("acme", "orders"), "", IntegrationStateQuery)
	require.NoError(t, err)
	var queried IntegrationState
	require.NoError(t, v.Get(&queried))
	require.Equal(t, st, queried)
}
