package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

// fakePlacement records TenantPlacement's steps and keeps the tenant's
// recorded state.
type fakePlacement struct {
	mu      sync.Mutex
	steps   []string
	state   wire.PlacementState
	reasons []string
	// problem is what CheckInstance reports (once); verdict JudgeUsage's.
	problem       string
	verdict       activities.UsageVerdict
	noProvisioner bool
}

func (f *fakePlacement) step(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = append(f.steps, s)
}

func (f *fakePlacement) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.steps...)
}

func (f *fakePlacement) current() wire.PlacementState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakePlacement) register(r worker.Registry) {
	reg := func(fn any, name string) { r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(func(_ context.Context, in activities.PlacementInput) (activities.LoadedPlacement, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		st := f.state
		st.Tenant = in.Tenant
		return activities.LoadedPlacement{State: st, CheckEvery: 50 * time.Millisecond}, nil
	}, "LoadPlacement")
	reg(func(_ context.Context, in activities.RecordPlacementInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.state = in.State
		f.reasons = append(f.reasons, in.State.Placement+"/"+in.State.Step+": "+in.Reason)
		return nil
	}, "RecordPlacement")
	reg(func(_ context.Context, in activities.PlacementInput) error {
		if f.noProvisioner {
			return temporal.NewNonRetryableApplicationError("no provisioner here", activities.ErrNoProvisioner, nil)
		}
		f.step("EnsureInstance")
		return nil
	}, "EnsureInstance")
	reg(func(_ context.Context, in activities.PlacementInput) (string, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		p := f.problem
		f.problem = ""
		if p != "" {
			f.steps = append(f.steps, "CheckInstance: "+p)
		}
		return p, nil
	}, "CheckInstance")
	reg(func(_ context.Context, in activities.PlacementInput) (int, error) {
		f.step("PrepareStreams " + string(in.Location))
		return 1, nil
	}, "PrepareStreams")
	reg(func(_ context.Context, in activities.MirrorPlacementInput) error {
		f.step("MirrorPlacement write=" + string(in.Write) + " draining=" + string(in.Draining))
		return nil
	}, "MirrorPlacement")
	reg(func(_ context.Context, in activities.PlacementInput) error {
		f.step("WaitDrained " + string(in.Location))
		return nil
	}, "WaitDrained")
	reg(func(_ context.Context, in activities.MoveDLQInput) (int, error) {
		f.step("MoveDLQ " + string(in.From) + "->" + string(in.To))
		return 2, nil
	}, "MoveDLQ")
	reg(func(_ context.Context, in activities.PlacementInput) (int, error) {
		f.step("RetireLocation " + string(in.Location))
		return 1, nil
	}, "RetireLocation")
	reg(func(_ context.Context, in activities.PlacementInput) (activities.UsageVerdict, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.verdict, nil
	}, "JudgeUsage")
}

func startPlacementWorker(t *testing.T, f *fakePlacement) client.Client {
	t.Helper()
	grace := switchGrace
	switchGrace = 10 * time.Millisecond
	t.Cleanup(func() { switchGrace = grace })
	ts := testenv.TemporalServer(t)
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(TenantPlacement)
		f.register(r)
	})
	return ts.GetDefaultClient()
}

func requestPlacement(ctx context.Context, t *testing.T, c client.Client, req wire.PlacementRequest) client.WorkflowRun {
	t.Helper()
	run, err := c.SignalWithStartWorkflow(ctx, wire.TenantPlacementWorkflowID("acme"), wire.PlacementSignal, req,
		client.StartWorkflowOptions{ID: wire.TenantPlacementWorkflowID("acme"), TaskQueue: wire.ControlTaskQueue},
		wire.TenantPlacementWorkflow, wire.TenantPlacementInput{Tenant: "acme"})
	require.NoError(t, err)
	return run
}

var toDedicated = []string{
	"EnsureInstance", "PrepareStreams dedicated", "MirrorPlacement write=dedicated draining=shared",
	"WaitDrained shared", "MirrorPlacement write=dedicated draining=", "MoveDLQ shared->dedicated", "RetireLocation shared",
}

// A forced move to dedicated runs every step in order, and the workflow
// stays to watch the instance; the instance failing is started again;
// a forced move back ends the run.
func TestTenantPlacementMovesLiveAndWatchesTheInstance(t *testing.T) {
	f := &fakePlacement{state: wire.PlacementState{Placement: wire.PlacementShared}, verdict: activities.UsageVerdict{Demote: true, Why: "quiet"}}
	c := startPlacementWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := requestPlacement(ctx, t, c, wire.PlacementRequest{Target: wire.PlacementDedicated, Forced: true, Reason: "admin"})
	require.Eventually(t, func() bool { return f.current().Placement == wire.PlacementDedicated }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, toDedicated, f.ran())
	require.True(t, f.current().Forced, "forced: usage does not move it back")

	f.mu.Lock()
	f.problem = "not running"
	f.mu.Unlock()
	require.Eventually(t, func() bool { return len(f.ran()) == len(toDedicated)+2 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"CheckInstance: not running", "EnsureInstance"}, f.ran()[len(toDedicated):])
	require.Equal(t, wire.PlacementDedicated, f.current().Placement, "a forced tenant stays although its usage is low")

	requestPlacement(ctx, t, c, wire.PlacementRequest{Target: wire.PlacementShared, Forced: true, Reason: "admin again"})
	require.NoError(t, run.Get(ctx, nil), "a shared tenant's run ends")
	require.Equal(t, []string{
		"PrepareStreams shared", "MirrorPlacement write=shared draining=dedicated", "WaitDrained dedicated",
		"MirrorPlacement write=shared draining=", "MoveDLQ dedicated->shared", "RetireLocation dedicated",
	}, f.ran()[len(toDedicated)+2:])
	require.Equal(t, wire.PlacementState{Tenant: "acme", Placement: wire.PlacementShared, Forced: true}, f.current())
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Contains(t, f.reasons, "moving-to-dedicated/provision: admin")
	require.Contains(t, f.reasons, "dedicated/: dedicated instance unhealthy: not running; starting it again")
}

// A tenant moved by its usage goes back when its usage stays low.
func TestTenantPlacementDemotesAQuietTenant(t *testing.T) {
	f := &fakePlacement{state: wire.PlacementState{Placement: wire.PlacementShared}}
	c := startPlacementWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := requestPlacement(ctx, t, c, wire.PlacementRequest{Target: wire.PlacementDedicated, Reason: "usage: 4 integrations"})
	require.Eventually(t, func() bool { return f.current().Placement == wire.PlacementDedicated }, 20*time.Second, 20*time.Millisecond)
	f.mu.Lock()
	f.verdict = activities.UsageVerdict{Demote: true, Why: "quiet for an hour"}
	f.mu.Unlock()
	require.NoError(t, run.Get(ctx, nil))
	require.Equal(t, wire.PlacementShared, f.current().Placement)
	require.Contains(t, f.ran(), "RetireLocation dedicated")
}

// Without a provisioner the tenant stays shared, with the reason.
func TestTenantPlacementWithoutAProvisionerStaysShared(t *testing.T) {
	f := &fakePlacement{state: wire.PlacementState{Placement: wire.PlacementShared}, noProvisioner: true}
	c := startPlacementWorker(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := requestPlacement(ctx, t, c, wire.PlacementRequest{Target: wire.PlacementDedicated, Forced: true, Reason: "admin"})
	require.NoError(t, run.Get(ctx, nil))
	require.Empty(t, f.ran())
	require.Equal(t, wire.PlacementShared, f.current().Placement)
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.reasons[len(f.reasons)-1]
	require.True(t, strings.HasPrefix(last, "shared/: cannot move to a dedicated instance"), last)
}
