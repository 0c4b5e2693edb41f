package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestEnsureBlobJanitorScheduleIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := testenv.Temporal(t)
	require.NoError(t, EnsureBlobJanitorSchedule(ctx, c))
	require.NoError(t, EnsureBlobJanitorSchedule(ctx, c), "a second call finds it and succeeds")

	desc, err := c.ScheduleClient().GetHandle(ctx, BlobJanitorScheduleID).Describe(ctx)
	require.NoError(t, err)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	require.Equal(t, BlobJanitorInterval, desc.Schedule.Spec.Intervals[0].Every)
}

func TestEnsureBlobJanitorScheduleReportsUnreachableServer(t *testing.T) {
	c := testenv.Temporal(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, EnsureBlobJanitorSchedule(ctx, c))
}
