package bench

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestBaselineMeasuresAJetStreamHopAndCleansUp(t *testing.T) {
	url := testenv.NATS(t)
	ctx := context.Background()
	res, err := Baseline(ctx, url, 1024, 300*time.Millisecond, 1)
	require.NoError(t, err)
	require.Positive(t, res.Rate)
	require.Positive(t, res.Consumed)
	require.Equal(t, 1024, res.MessageSize)
	require.Zero(t, res.PublishErrors)

	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		t.Errorf("stream %s left behind", name)
	}
	require.NoError(t, names.Err())
}

func TestBaselineStopsWithItsContext(t *testing.T) {
	url := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := Baseline(ctx, url, 1024, time.Minute, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = Baseline(context.Background(), "nats://127.0.0.1:1", 1024, time.Second, 1)
	require.ErrorContains(t, err, "connect to nats")
}

func TestBaselineSizeAndWindow(t *testing.T) {
	require.Equal(t, 1024, baselineSize(1024, 1<<20))
	require.Equal(t, 1<<20-baselineHeadroom, baselineSize(1<<20, 1<<20), "kept under the max payload")
	require.Equal(t, 1<<20, baselineSize(1<<20, 8<<20))
	require.Equal(t, baselineMaxPending, baselineWindow(1024))
	require.Equal(t, 64, baselineWindow(1<<20), "64 MiB of 1 MiB messages")
	require.Equal(t, 4, baselineWindow(64<<20))
}
