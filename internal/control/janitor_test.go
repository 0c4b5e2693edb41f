package control

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestEnsureBlobJanitorScheduleIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := testenv.Temporal(t)
	require.NoError(t, New(c).CheckHealth(ctx))
	require.NoError(t, New(c).EnsureBlobJanitorSchedule(ctx))
	require.NoError(t, New(c).EnsureBlobJanitorSchedule(ctx), "a second call finds it and succeeds")

	desc, err := c.ScheduleClient().GetHandle(ctx, wire.BlobJanitorScheduleID).Describe(ctx)
	require.NoError(t, err)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	require.Equal(t, wire.BlobJanitorInterval, desc.Schedule.Spec.Intervals[0].Every)
}

func TestEnsureBlobJanitorScheduleReportsUnreachableServer(t *testing.T) {
	c := testenv.Temporal(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, New(c).EnsureBlobJanitorSchedule(ctx), ErrUnavailable)
	require.ErrorIs(t, New(c).CheckHealth(ctx), ErrUnavailable)
}
