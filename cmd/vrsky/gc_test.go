package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
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
	require.Equal(t, uint64(100), gogc(), "a set GOGC is left alone")

	setGC(ctx, "bench", unset)
	require.Equal(t, uint64(gctarget.BusyPercent), gogc(), "a process that moves no message of its own keeps the busy target")

	setGC(ctx, "runner", unset)
	require.Eventually(t, func() bool { return gogc() == gctarget.RestPercent }, 5*time.Second, 10*time.Millisecond,
		"a runner's target follows the messages, at rest at first")
}

// gogc reads the runtime's GC target without changing it.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
