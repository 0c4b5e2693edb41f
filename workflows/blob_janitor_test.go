package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
)

func TestBlobJanitorPassesTTLsAndReportsCount(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var blobs *activities.Blobs
	env.OnActivity(blobs.SweepExpiredBlobs, mock.Anything, activities.SweepInput{ClaimTTL: time.Minute, DLQTTL: time.Hour}).
		Return(activities.SweepResult{Removed: 3}, nil)

	env.ExecuteWorkflow(BlobJanitor, wire.BlobJanitorInput{ClaimTTL: time.Minute, DLQTTL: time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res BlobJanitorResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 3, res.Removed)
}

func TestBlobJanitorRetriesThenFails(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var blobs *activities.Blobs
	calls := 0
	env.OnActivity(blobs.SweepExpiredBlobs, mock.Anything, mock.Anything).
		Return(func(context.Context, activities.SweepInput) (activities.SweepResult, error) {
			calls++
			return activities.SweepResult{}, errors.New("s3 down")
		})

	env.ExecuteWorkflow(BlobJanitor, wire.BlobJanitorInput{})
	require.True(t, env.IsWorkflowCompleted())
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 5, calls, "the retry policy's attempts, then the workflow fails")
}
