package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGCDefaultYieldsToGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	setGCDefault(func(string) string { return "" })
	require.Equal(t, defaultGCPercent, debug.SetGCPercent(100), "unset GOGC gets the default")

	setGCDefault(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	require.Equal(t, 100, debug.SetGCPercent(100), "a set GOGC is left alone")
}
