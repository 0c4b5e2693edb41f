package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// BlobJanitorInterval is how often the blob janitor runs.
const BlobJanitorInterval = 5 * time.Minute

// EnsureBlobJanitorSchedule creates the schedule that runs BlobJanitor every
// BlobJanitorInterval; it is a no-op when the schedule exists.
func EnsureBlobJanitorSchedule(ctx context.Context, c client.Client) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   BlobJanitorScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: BlobJanitorInterval}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        BlobJanitorScheduleID,
			Workflow:  BlobJanitor,
			Args:      []any{BlobJanitorInput{}},
			TaskQueue: ControlTaskQueue,
		},
	})
	if err == nil || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return nil
	}
	var exists *serviceerror.AlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	return fmt.Errorf("create schedule %q: %w", BlobJanitorScheduleID, err)
}
