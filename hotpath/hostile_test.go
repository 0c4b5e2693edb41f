package hotpath

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// hangingBuild is a consumer connector whose Build blocks until its context
// ends, like a PostgreSQL consumer pointed at a host that accepts TCP and
// never answers. It counts the builds begun and ended.
func hangingBuild(began, ended *atomic.Int64) sdk.Connector {
	return sdk.Connector{Name: "hanging-source", Kind: sdk.KindConsumer,
		Build: func(ctx context.Context, _ sdk.Env, _ json.RawMessage) (any, error) {
			began.Add(1)
			defer ended.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}}
}

// putSpec writes desired state for integration name with the given
// consumer connector and one recorder producer, without waiting.
func (h *harness) putSpec(name, consumer string, version int, producer string) dataplane.Pipeline {
	h.t.Helper()
	in := spec.Integration{Name: name, Consumer: spec.Step{Connector: consumer},
		Producers: map[string]spec.Step{producer: {Connector: "rec-" + producer}}}
	d := dataplane.Desired{Tenant: h.tenant, Integration: name, Version: version, Status: dataplane.DesiredRunning, Spec: in}
	require.NoError(h.t, h.state.PutDesired(context.Background(), d))
	return d.Pipeline()
}

// TestHangingBuildDoesNotFreezeTheRunner: a connector whose Build never
// answers delays only its own integration; another integration starts and
// runs meanwhile, and the hanging one is reported degraded with a reason
// naming the timeout.
func TestHangingBuildDoesNotFreezeTheRunner(t *testing.T) {
	var began, ended atomic.Int64
	h := newHarnessWith(t, harnessOptions{
		connectors:   []sdk.Connector{hangingBuild(&began, &ended)},
		buildTimeout: 6 * time.Second,
	}, "sink")
	stuck := h.putSpec("stuck", "hanging-source", 1, "sink")
	require.Eventually(t, func() bool { return began.Load() == 1 }, 5*time.Second, 10*time.Millisecond)

	startedAt := time.Now()
	healthy := h.putSpec("healthy", dataplane.WebhookConnector, 1, "sink")
	h.waitStatus(healthy, dataplane.StatusRunning)
	require.Less(t, time.Since(startedAt), 3*time.Second, "the healthy integration waited for the hanging one")
	require.Zero(t, ended.Load(), "the hanging build is still in flight while the other one runs")
	h.send(healthy, sdk.Message{ID: "h-1", Body: []byte("fine")})
	require.Eventually(t, func() bool { return h.producers["sink"].delivered() == 1 }, 10*time.Second, 20*time.Millisecond)

	st := h.waitStatus(stuck, dataplane.StatusDegraded)
	require.Contains(t, st.LastError, "timed out after 6s")
	require.EqualValues(t, 1, ended.Load(), "the hanging build was given up at its deadline")
	st, _, _ = h.state.GetStatus(context.Background(), healthy)
	require.Equal(t, dataplane.StatusRunning, st.Status, "only the hanging integration is degraded")
}

// TestNewerVersionOrDeleteDuringABuild: a desired state arriving while a
// pipeline is being built cancels that build; the newer version runs, a
// delete leaves nothing running, and no build is left behind.
func TestNewerVersionOrDeleteDuringABuild(t *testing.T) {
	var began, ended atomic.Int64
	h := newHarnessWith(t, harnessOptions{
		connectors:   []sdk.Connector{hangingBuild(&began, &ended)},
		buildTimeout: time.Minute,
	}, "sink")

	p := h.putSpec("changing", "hanging-source", 1, "sink")
	require.Eventually(t, func() bool { return began.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	h.putSpec("changing", dataplane.WebhookConnector, 2, "sink")
	st := h.waitStatus(p, dataplane.StatusRunning)
	require.Equal(t, 2, st.Version)
	require.EqualValues(t, 1, ended.Load(), "the superseded build was cancelled")
	h.send(p, sdk.Message{ID: "v2-1", Body: []byte("x")})
	require.Eventually(t, func() bool { return h.producers["sink"].delivered() == 1 }, 10*time.Second, 20*time.Millisecond)

	gone := h.putSpec("deleted", "hanging-source", 1, "sink")
	require.Eventually(t, func() bool { return began.Load() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, h.state.DeleteDesired(context.Background(), gone))
	require.Eventually(t, func() bool { return ended.Load() == 2 }, 5*time.Second, 10*time.Millisecond, "the deleted integration's build was cancelled")
	require.Never(t, func() bool {
		_, ok, _ := h.state.GetStatus(context.Background(), gone)
		return ok
	}, time.Second, 50*time.Millisecond, "a deleted integration reports no status")
}

// TestBuildIgnoringItsDeadlineIsAbandoned: a connector whose Build ignores
// its context (a blocking call without one) is given up shortly after the
// timeout: the integration is degraded with the reason, and other
// integrations still start.
func TestBuildIgnoringItsDeadlineIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	deaf := sdk.Connector{Name: "deaf-source", Kind: sdk.KindConsumer,
		Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) {
			<-release
			return nil, context.Canceled
		}}
	h := newHarnessWith(t, harnessOptions{connectors: []sdk.Connector{deaf}, buildTimeout: time.Second}, "sink")
	p := h.putSpec("deaf", "deaf-source", 1, "sink")
	require.Eventually(t, func() bool {
		st, ok, _ := h.state.GetStatus(context.Background(), p)
		return ok && st.Status == dataplane.StatusDegraded
	}, time.Second+abandonAfter+5*time.Second, 20*time.Millisecond)
	st, _, _ := h.state.GetStatus(context.Background(), p)
	require.Contains(t, st.LastError, "timed out after 1s; a connector ignored the deadline")
	other := h.putSpec("other", dataplane.WebhookConnector, 1, "sink")
	h.waitStatus(other, dataplane.StatusRunning)
}
