package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// BlobJanitorResult says how many objects were removed.
type BlobJanitorResult struct {
	Removed int
}

// BlobJanitor removes expired claim-check objects. It runs on a schedule; a
// failed sweep is retried by Temporal and is harmless to repeat.
func BlobJanitor(ctx workflow.Context, in wire.BlobJanitorInput) (BlobJanitorResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumAttempts:    5,
		},
	})
	var out activities.SweepResult
	var blobs *activities.Blobs
	err := workflow.ExecuteActivity(ctx, blobs.SweepExpiredBlobs, activities.SweepInput{
		ClaimTTL: in.ClaimTTL,
		DLQTTL:   in.DLQTTL,
	}).Get(ctx, &out)
	if err != nil {
		return BlobJanitorResult{}, err
	}
	return BlobJanitorResult{Removed: out.Removed}, nil
}
