package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// fakeDLQ serves ReplayPage from a list of sequences, recording each call.
type fakeDLQ struct {
	seqs  []uint64
	calls []activities.ReplayPageInput
}

func (f *fakeDLQ) page(_ context.Context, in activities.ReplayPageInput) (activities.ReplayPageResult, error) {
	f.calls = append(f.calls, in)
	out := activities.ReplayPageResult{LastSeq: in.AfterSeq, UpToSeq: 1000}
	for _, s := range f.seqs {
		if s <= in.AfterSeq {
			continue
		}
		if out.Done == in.Limit {
			out.More = true
			break
		}
		out.Done++
		out.LastSeq = s
	}
	return out, nil
}

func TestDLQReplayPagesUntilDone(t *testing.T) {
	filter := wire.DLQFilter{Integration: "orders", ErrorContains: "disk"}
	for _, tc := range []struct {
		name      string
		in        wire.DLQReplayInput
		seqs      int
		want      wire.DLQReplayResult
		wantCalls int
	}{
		{"all pages", wire.DLQReplayInput{Tenant: "acme", Filter: filter}, 250, wire.DLQReplayResult{Replayed: 250}, 3},
		{"bounded", wire.DLQReplayInput{Tenant: "acme", Filter: filter, MaxMessages: 120}, 250, wire.DLQReplayResult{Replayed: 120}, 2},
		{"discard", wire.DLQReplayInput{Tenant: "acme", Filter: filter, Discard: true}, 5, wire.DLQReplayResult{Discarded: 5}, 1},
		{"empty", wire.DLQReplayInput{Tenant: "acme"}, 0, wire.DLQReplayResult{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			f := &fakeDLQ{}
			for i := range tc.seqs {
				f.seqs = append(f.seqs, uint64(2*i+1))
			}
			var dlq *activities.DLQ
			env.OnActivity(dlq.ReplayPage, mock.Anything, mock.Anything).Return(f.page)

			env.ExecuteWorkflow(DLQReplay, tc.in)
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			var res wire.DLQReplayResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.Equal(t, tc.want, res)
			require.Len(t, f.calls, tc.wantCalls)
			require.Zero(t, f.calls[0].UpToSeq, "the first page fixes the upper bound")
			for i, c := range f.calls {
				require.Equal(t, dataplane.DLQFilter(tc.in.Filter), c.Filter)
				require.Equal(t, tc.in.Discard, c.Discard)
				if i > 0 {
					require.EqualValues(t, 1000, c.UpToSeq)
					require.Greater(t, c.AfterSeq, f.calls[i-1].AfterSeq, "each page starts after the previous one")
				}
			}
		})
	}
}

func TestDLQReplayContinuesAsNewWithItsPosition(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	f := &fakeDLQ{}
	for i := range 500 {
		f.seqs = append(f.seqs, uint64(i+1))
	}
	var dlq *activities.DLQ
	env.OnActivity(dlq.ReplayPage, mock.Anything, mock.Anything).Return(f.page)

	env.ExecuteWorkflow(DLQReplay, wire.DLQReplayInput{Tenant: "acme", PagesPerRun: 2, MaxMessages: 400})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can))
	require.Len(t, f.calls, 2)
	next := wire.DLQReplayInput{Tenant: "acme", PagesPerRun: 2, MaxMessages: 400}
	next.AfterSeq, next.UpToSeq, next.Done = 200, 1000, 200
	var got wire.DLQReplayInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &got))
	require.Equal(t, next, got)
}

func TestDLQReplayFailsOnAnInvalidFilterWithoutRetrying(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	calls := 0
	var dlq *activities.DLQ
	env.OnActivity(dlq.ReplayPage, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ReplayPageInput) (activities.ReplayPageResult, error) {
			calls++
			return activities.ReplayPageResult{}, temporal.NewNonRetryableApplicationError("bad", activities.ErrInvalidFilter, nil)
		})
	env.ExecuteWorkflow(DLQReplay, wire.DLQReplayInput{Tenant: "acme"})
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 1, calls)
}

func TestDLQReplayWorkflowIDIsPerRequest(t *testing.T) {
	require.Equal(t, "dlq-replay/acme/r1", wire.DLQReplayWorkflowID("acme", "r1"))
	require.NotEqual(t, wire.DLQReplayWorkflowID("acme", "r1"), wire.DLQReplayWorkflowID("other", "r1"))
}
