package dataplane

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestRunRequestsAndResultsInState(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	p := Pipeline{Tenant: "acme", Integration: "orders"}

	for _, bad := range []struct {
		p   Pipeline
		req RunRequest
	}{
		{Pipeline{Tenant: "Bad", Integration: "x"}, RunRequest{RunID: "r"}},
		{p, RunRequest{}},
		{p, RunRequest{RunID: string(make([]byte, MaxRunIDLength+1))}},
	} {
		require.Error(t, state.RequestRun(ctx, bad.p, bad.req))
	}
	_, _, err = state.RunResult(ctx, Pipeline{Tenant: "x", Integration: "Bad"})
	require.Error(t, err)
	_, err = state.RecentRuns(ctx, Pipeline{Tenant: "x", Integration: "Bad"}, 1)
	require.Error(t, err)

	_, ok, err := state.RunResult(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	recent, err := state.RecentRuns(ctx, p, 5)
	require.NoError(t, err)
	require.Empty(t, recent)

	require.NoError(t, state.RequestRun(ctx, p, RunRequest{RunID: "r1"}))
	first, err := state.Runs.Get(ctx, p.RunRequestKey())
	require.NoError(t, err)
	require.NoError(t, state.RequestRun(ctx, p, RunRequest{RunID: "r1"}))
	again, err := state.Runs.Get(ctx, p.RunRequestKey())
	require.NoError(t, err)
	require.Equal(t, first.Revision(), again.Revision(), "the same run is not asked for twice")
	var req RunRequest
	require.NoError(t, json.Unmarshal(again.Value(), &req))
	require.Equal(t, "r1", req.RunID)
	require.False(t, req.RequestedAt.IsZero())

	_, err = state.Runs.Put(ctx, p.RunResultKey(), []byte("{"))
	require.NoError(t, err)
	_, _, err = state.RunResult(ctx, p)
	require.ErrorContains(t, err, "decode the run result")

	// Deleting the pipeline forgets its runs.
	require.NoError(t, state.DeleteDesired(ctx, p))
	_, err = state.Runs.Get(ctx, p.RunRequestKey())
	require.Error(t, err)
	recent, err = state.RecentRuns(ctx, p, 5)
	require.NoError(t, err)
	require.Empty(t, recent)
}
