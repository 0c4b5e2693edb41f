package api

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vrsky/vrsky/dataplane"
)

func TestStoreRetryingRidesThroughALostNode(t *testing.T) {
	ctx := context.Background()
	calls := 0
	require.NoError(t, storeRetrying(ctx, func(context.Context) error { calls++; return nil }))
	require.Equal(t, 1, calls)

	calls = 0
	err := storeRetrying(ctx, func(context.Context) error {
		if calls++; calls < 3 {
			return fmt.Errorf("%w: no stream leader", dataplane.ErrUnavailable)
		}
		return nil
	})
	require.NoError(t, err, "stored on the third attempt")
	require.Equal(t, 3, calls)

	// A PubAck that never comes: the attempt ends, the next one stores.
	calls = 0
	began := time.Now()
	err = storeRetrying(ctx, func(attempt context.Context) error {
		if calls++; calls == 1 {
			<-attempt.Done()
			return fmt.Errorf("%w: %w", dataplane.ErrUnavailable, attempt.Err())
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls)
	require.Less(t, time.Since(began), storeAttemptTimeout+time.Second)
}

func TestStoreRetryingGivesUp(t *testing.T) {
	// Other errors are answered at once.
	calls := 0
	err := storeRetrying(context.Background(), func(context.Context) error { calls++; return dataplane.ErrQuotaFull })
	require.ErrorIs(t, err, dataplane.ErrQuotaFull)
	require.Equal(t, 1, calls)

	// The request's deadline ends the retries.
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = storeRetrying(ctx, func(context.Context) error { return dataplane.ErrUnavailable })
	require.ErrorIs(t, err, dataplane.ErrUnavailable)
	require.Less(t, time.Since(began), time.Second)

	// Without a deadline, storeRetryFor does.
	if testing.Short() {
		t.Skip("waits storeRetryFor")
	}
	began = time.Now()
	err = storeRetrying(context.Background(), func(context.Context) error { return errors.Join(dataplane.ErrUnavailable) })
	require.ErrorIs(t, err, dataplane.ErrUnavailable)
	require.GreaterOrEqual(t, time.Since(began), storeRetryFor)
	require.Less(t, time.Since(began), storeRetryFor+time.Second)
}
