package hotpath

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// A tenant moved while messages wait at the old location: the runner
// consumes both until the old one is empty, nothing is lost or delivered
// twice, and once the move ends only the new location runs.
func TestRunnerDrainsTheOldLocationOfAMovingTenant(t *testing.T) {
	h := newHarness(t, "out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := dataplane.OpenPlacements(ctx, h.platformJS)
	require.NoError(t, err)
	shared := h.pub.Accounts
	placed, err := dataplane.NewPlacedAccounts(ctx, kv, shared, "test")
	require.NoError(t, err)
	t.Cleanup(placed.Close)
	h.stop()      // the harness's runner knows no placements: run one that does
	h.done <- nil // for the harness's own cleanup
	runner := h.runner("placed-runner")
	runner.Accounts = placed
	runner.Backoff = func(int) time.Duration { return 50 * time.Millisecond }
	rctx, stopRunner := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { stopRunner(); <-done }) }
	t.Cleanup(stop)
	h.pub = &dataplane.Publisher{Accounts: placed, Claims: h.pub.Claims}

	p := h.deploy("orders", nil, "out")
	rec := h.producers["out"]
	rec.setFail(func(sdk.Message) error { return errors.New("sink down") }) // keep them in the old stream
	for i := range 20 {
		h.send(p, sdk.Message{ID: fmt.Sprintf("old-%d", i), Body: []byte("x")})
	}
	url, _ := testenv.DedicatedNATS(t, "vrsky", "s3cret")
	inst := dataplane.Instance{URLs: []string{url}, User: "vrsky", Password: "s3cret"}
	move := dataplane.Placement{Tenant: h.tenant, Write: dataplane.Dedicated, Draining: dataplane.Shared, Dedicated: &inst}
	dedicated, err := placed.At(ctx, move, dataplane.Dedicated)
	require.NoError(t, err)
	_, err = dataplane.EnsureStreams(ctx, dedicated, p)
	require.NoError(t, err)
	require.NoError(t, dataplane.PutPlacement(ctx, kv, move))
	require.Eventually(t, func() bool { return placed.Placement(h.tenant).Write == dataplane.Dedicated }, 5*time.Second, 10*time.Millisecond)
	for i := range 20 {
		h.send(p, sdk.Message{ID: fmt.Sprintf("new-%d", i), Body: []byte("y")})
	}
	held, err := dataplane.UndrainedMessages(ctx, h.js, h.tenant)
	require.NoError(t, err)
	require.Positive(t, held, "the old location still holds what waits for the sink")

	rec.setFail(nil)
	require.Eventually(t, func() bool { return rec.delivered() == 40 }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		held, err := dataplane.UndrainedMessages(ctx, h.js, h.tenant)
		return err == nil && held == 0
	}, 10*time.Second, 20*time.Millisecond, "the old location drains")

	settled := move
	settled.Draining = ""
	require.NoError(t, dataplane.PutPlacement(ctx, kv, settled))
	require.Eventually(t, func() bool { return placed.Placement(h.tenant).Draining == "" }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // the runner follows the same bucket
	for i := range 10 {
		h.send(p, sdk.Message{ID: fmt.Sprintf("after-%d", i), Body: []byte("z")})
	}
	require.Eventually(t, func() bool { return rec.delivered() == 50 }, 10*time.Second, 20*time.Millisecond)
	for id, n := range rec.count {
		require.Equal(t, 1, n, "message %s delivered more than once", id)
	}
	require.Equal(t, dataplane.StatusRunning, h.waitStatus(p, dataplane.StatusRunning).Status)

	// Nothing reads the old location any more: a message put there stays.
	require.NoError(t, (&dataplane.Publisher{Accounts: shared, Claims: h.pub.Claims}).Publish(ctx, p,
		[]sdk.Message{{ID: "stray", Tenant: p.Tenant, Integration: p.Integration, Body: []byte("s"), Received: time.Now()}}))
	time.Sleep(300 * time.Millisecond)
	held, err = dataplane.UndrainedMessages(ctx, h.js, h.tenant)
	require.NoError(t, err)
	require.EqualValues(t, 1, held, "the settled placement consumes only the dedicated instance")
	stop() // before the dedicated server goes
}
