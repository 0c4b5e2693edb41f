package main

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/gctarget"
)

func TestGCTargetByCommandUnlessGOGCIsSet(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unset := func(string) string { return "" }

	setGC(ctx, "dev", func(k string) string { return map[string]string{"GOGC": "100"}[k] })
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, 100, gctarget.Percent(), "a set GOGC is left alone")

	setGC(ctx, "bench", unset)
	require.Equal(t, gctarget.BusyPercent, gctarget.Percent(), "a process that moves no message of its own keeps the busy target")

	setGC(ctx, "runner", unset)
	require.Eventually(t, func() bool { return gctarget.Percent() == gctarget.RestPercent }, 5*time.Second, 10*time.Millisecond,
		"a runner's target follows the messages, at rest at first")
}
