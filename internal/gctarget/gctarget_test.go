package gctarget

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTheTargetFollowsTheMessages: at rest from the start, busy once a
// message moved, busy while messages keep moving, at rest again once none
// has for RestAfter, and busy at the next one.
func TestTheTargetFollowsTheMessages(t *testing.T) {
	var f follower
	now := time.Unix(1_000_000, 0)
	step := func(d time.Duration, count uint64) int {
		now = now.Add(d)
		return f.target(count, now)
	}
	require.Equal(t, RestPercent, step(checkEvery, 0), "nothing moved since the start")
	require.Equal(t, BusyPercent, step(checkEvery, 3), "a message moved")
	for i := range uint64(24) { // two minutes of a message every 5 s
		require.Equal(t, BusyPercent, step(checkEvery, 4+i))
	}
	require.Equal(t, BusyPercent, step(RestAfter-time.Second, 27), "a minute less a second without a message")
	require.Equal(t, RestPercent, step(time.Second, 27), "a minute without a message")
	require.Equal(t, RestPercent, step(time.Hour, 27))
	require.Equal(t, BusyPercent, step(checkEvery, 28), "a message after the rest")
}

// TestFollowSetsTheRuntimesTarget runs the real Follow: the runtime's
// target is RestPercent once it started, whatever it was before.
func TestFollowSetsTheRuntimesTarget(t *testing.T) {
	old := debug.SetGCPercent(BusyPercent)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	require.Equal(t, BusyPercent, Percent())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Follow(ctx) }()
	require.Eventually(t, func() bool { return Percent() == RestPercent }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}
