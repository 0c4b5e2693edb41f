package control

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

// placementSeen is what the stand-in TenantPlacement run was started with
// and the requests it received, as its query answers.
type placementSeen struct {
	Input    wire.TenantPlacementInput `json:"input"`
	Requests []wire.PlacementRequest   `json:"requests"`
}

// seenQuery is the stand-in run's query.
const seenQuery = "seen"

// startPlacementStandIn runs, under TenantPlacement's name, a workflow that
// records its input and every placement signal, and ends after a request
// whose reason is "stop".
func startPlacementStandIn(t *testing.T) *Client {
	t.Helper()
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in wire.TenantPlacementInput) error {
			seen := placementSeen{Input: in}
			if err := workflow.SetQueryHandler(ctx, seenQuery, func() (placementSeen, error) { return seen, nil }); err != nil {
				return err
			}
			ch := workflow.GetSignalChannel(ctx, wire.PlacementSignal)
			for {
				var req wire.PlacementRequest
				ch.Receive(ctx, &req)
				seen.Requests = append(seen.Requests, req)
				if req.Reason == "stop" {
					return nil
				}
			}
		}, workflow.RegisterOptions{Name: wire.TenantPlacementWorkflow})
	})
	return New(ts.GetDefaultClient())
}

// seenBy queries the tenant's stand-in run until it received want
// requests.
func seenBy(t *testing.T, c *Client, tenant string, want int) placementSeen {
	t.Helper()
	var seen placementSeen
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := c.Temporal().QueryWorkflow(ctx, wire.TenantPlacementWorkflowID(tenant), "", seenQuery)
		if err != nil {
			return false
		}
		seen = placementSeen{}
		return v.Get(&seen) == nil && len(seen.Requests) >= want
	}, 30*time.Second, 50*time.Millisecond)
	return seen
}

func TestRequestPlacementSignalsTheTenantsRun(t *testing.T) {
	c := startPlacementStandIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	toDedicated := wire.PlacementRequest{Target: wire.PlacementDedicated, Forced: true, Reason: "a big customer"}
	require.NoError(t, c.RequestPlacement(ctx, "acme", toDedicated))
	seen := seenBy(t, c, "acme", 1)
	require.Equal(t, wire.TenantPlacementInput{Tenant: "acme"}, seen.Input, "the run was started for the tenant")
	require.Equal(t, []wire.PlacementRequest{toDedicated}, seen.Requests)
	first, err := c.Temporal().DescribeWorkflowExecution(ctx, wire.TenantPlacementWorkflowID("acme"), "")
	require.NoError(t, err)
	require.Equal(t, wire.TenantPlacementWorkflow, first.GetWorkflowExecutionInfo().GetType().GetName())
	require.Equal(t, wire.ControlTaskQueue, first.GetWorkflowExecutionInfo().GetTaskQueue())

	// A second request goes to the same run.
	back := wire.PlacementRequest{Target: wire.PlacementShared, Reason: "stop"}
	require.NoError(t, c.RequestPlacement(ctx, "acme", back))
	seen = seenBy(t, c, "acme", 2)
	require.Equal(t, []wire.PlacementRequest{toDedicated, back}, seen.Requests)

	// Each tenant has its own run.
	require.NoError(t, c.RequestPlacement(ctx, "globex", wire.PlacementRequest{Target: wire.PlacementDedicated, Reason: "globex"}))
	other := seenBy(t, c, "globex", 1)
	require.Equal(t, "globex", other.Input.Tenant)
	require.Equal(t, "globex", other.Requests[0].Reason)

	// Once acme's run ended, a request starts a new one.
	require.NoError(t, c.Temporal().GetWorkflow(ctx, wire.TenantPlacementWorkflowID("acme"), first.GetWorkflowExecutionInfo().GetExecution().GetRunId()).Get(ctx, nil))
	again := wire.PlacementRequest{Target: wire.PlacementDedicated, Forced: true, Reason: "again"}
	require.NoError(t, c.RequestPlacement(ctx, "acme", again))
	seen = seenBy(t, c, "acme", 1)
	require.Equal(t, []wire.PlacementRequest{again}, seen.Requests)
	second, err := c.Temporal().DescribeWorkflowExecution(ctx, wire.TenantPlacementWorkflowID("acme"), "")
	require.NoError(t, err)
	require.NotEqual(t, first.GetWorkflowExecutionInfo().GetExecution().GetRunId(), second.GetWorkflowExecutionInfo().GetExecution().GetRunId())
}

func TestRequestPlacementRefusesOtherTargets(t *testing.T) {
	c := startPlacementStandIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, target := range []string{"", wire.PlacementMovingToDedicated, wire.PlacementMovingToShared, "Dedicated", "elsewhere"} {
		err := c.RequestPlacement(ctx, "acme", wire.PlacementRequest{Target: target, Reason: "x"})
		require.ErrorIs(t, err, ErrInvalid, "%q", target)
	}
	_, err := c.Temporal().DescribeWorkflowExecution(ctx, wire.TenantPlacementWorkflowID("acme"), "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "nothing was started")
}

// refusingTemporal is a Temporal client whose server does not take
// signals.
type refusingTemporal struct {
	client.Client
	err error
}

func (r refusingTemporal) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, r.err
}

func TestRequestPlacementWithoutAControlPlane(t *testing.T) {
	req := wire.PlacementRequest{Target: wire.PlacementDedicated, Reason: "x"}
	for _, err := range []error{serviceerror.NewUnavailable("down"), errors.New("connection refused"), context.DeadlineExceeded} {
		got := New(refusingTemporal{err: err}).RequestPlacement(context.Background(), "acme", req)
		require.ErrorIs(t, got, ErrUnavailable, "%v", err)
		require.ErrorContains(t, got, "request placement dedicated of tenant acme")
	}
	c := startPlacementStandIn(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.RequestPlacement(ctx, "acme", req), ErrUnavailable)
}
