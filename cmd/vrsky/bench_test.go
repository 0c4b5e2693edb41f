package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchSmoke runs `vrsky bench` as a user would, against a child stack
// (this test binary re-run as vrsky, see TestMain), briefly and at a low
// rate: it checks the report, never the numbers' size.
func TestBenchSmoke(t *testing.T) {
	rep, progress := benchSmoke(t, "--workers", "32")
	require.Equal(t, "pipeline", rep["scenario"])
	require.Equal(t, 200.0, rep["sent"])
	require.Zero(t, rep["errors"])
	require.Zero(t, rep["lost"])
	require.Equal(t, 180.0, rep["delivered"], "every accepted message but the filtered tenth")
	require.Equal(t, true, rep["stack_is_child"])
	for _, k := range []string{"p99_ms", "sustained_rate", "baseline_rate", "cpu_seconds_per_million", "peak_rss_mb"} {
		require.Positive(t, rep[k], k)
	}
	require.Contains(t, progress, "stack ready")
}

// benchSmoke runs `vrsky bench --json` briefly (200 msgs/s for 1 s after
// 500 ms of warm-up) with args added, against a child stack
// (this test binary re-run as vrsky, see TestMain), and returns its one
// JSON report and its progress output.
func benchSmoke(t *testing.T, args ...string) (rep map[string]any, progress string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a dev stack")
	}
	// The child stack inherits the environment: it runs main(), as vrsky.
	t.Setenv("VRSKY_TEST_RUN_MAIN", "1")
	var out, errOut bytes.Buffer
	all := append([]string{"bench", "--rate", "200", "--duration", "1s", "--warmup", "500ms", "--json"}, args...)
	require.NoError(t, run(context.Background(), all, &out, &errOut), errOut.String())
	dec := json.NewDecoder(&out)
	require.NoError(t, dec.Decode(&rep), "stdout holds one JSON object")
	require.False(t, dec.More(), "and nothing else")
	return rep, errOut.String()
}

// TestBenchSplitRunnerSmoke runs `vrsky bench --split-runner`: a child
// stack without a runner and a child `vrsky runner --dev`, both this test
// binary re-run as vrsky. Every message must go through the split runner,
// and the report must carry the runner's own figures.
func TestBenchSplitRunnerSmoke(t *testing.T) {
	rep, progress := benchSmoke(t, "--split-runner", "--workers", "32", "--no-baseline")
	require.Equal(t, 200.0, rep["sent"])
	require.Zero(t, rep["errors"])
	require.Zero(t, rep["lost"])
	require.Equal(t, 180.0, rep["delivered"])
	for _, k := range []string{"runner_cpu_seconds", "runner_cpu_seconds_per_million", "runner_rss_before_mb", "runner_peak_rss_mb",
		"peak_rss_mb", "cpu_seconds_per_million"} {
		require.Positive(t, rep[k], k)
	}
	require.Contains(t, progress, "stack ready")
	require.Contains(t, progress, "runner ready")
}

// TestBenchCDCSmoke runs `vrsky bench --scenario cdc` against a child
// stack started with no exported variable: the bench stores the stack's
// database URL as its tenant's secret and opens the database to the tenant
// through the API, and every inserted row must reach the target table.
func TestBenchCDCSmoke(t *testing.T) {
	rep, progress := benchSmoke(t, "--scenario", "cdc", "--no-baseline")
	require.Equal(t, "cdc", rep["scenario"])
	require.Equal(t, 200.0, rep["sent"], "rows committed in the source table")
	require.Zero(t, rep["errors"])
	require.Zero(t, rep["lost"])
	require.Zero(t, rep["duplicates"])
	require.Equal(t, 200.0, rep["delivered"], "every row found in the target table")
	require.Equal(t, true, rep["stack_is_child"])
	for _, k := range []string{"p50_ms", "p99_ms", "sustained_rate", "cpu_seconds_per_million", "peak_rss_mb", "loadgen_cpu_seconds",
		"source_transactions", "postgres_cpu_seconds"} {
		require.Positive(t, rep[k], k)
	}
	require.Contains(t, rep, "replication_lag_max_bytes")
	require.Contains(t, progress, "stack ready")
}

// TestBenchCDCSplitRunnerSmoke runs the CDC scenario with the runner in a
// process of its own (`vrsky runner --dev`), which must resolve the tenant
// secret and read the egress policy the same way.
func TestBenchCDCSplitRunnerSmoke(t *testing.T) {
	rep, progress := benchSmoke(t, "--scenario", "cdc", "--split-runner", "--no-baseline")
	require.Equal(t, 200.0, rep["sent"])
	require.Zero(t, rep["lost"])
	require.Equal(t, 200.0, rep["delivered"])
	require.Positive(t, rep["runner_cpu_seconds"])
	require.Contains(t, progress, "runner ready")
}

func TestBenchFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"bad flag":           {"bench", "--bogus"},
		"extra argument":     {"bench", "extra"},
		"zero rate":          {"bench", "--rate", "0"},
		"zero workers":       {"bench", "--workers", "0"},
		"zero interval":      {"bench", "--scenario", "cdc", "--tx-interval", "0s"},
		"unknown key memory": {"bench", "--key-memory", "forever"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, &out, &errOut)
			require.Error(t, err)
			require.True(t, errorsIsUsage(err))
		})
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"bench", "--data-dir", t.TempDir()}, &out, &errOut)
	require.ErrorContains(t, err, "is vrsky dev running?")
}
