package dataplane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestWhileJetStreamStartsWaitsForTheAccount: a cluster that has just
// started answers "JetStream not enabled for account" for a few seconds;
// that is waited out, other errors are not, and a server that keeps
// answering so is answered with its error.
func TestWhileJetStreamStartsWaitsForTheAccount(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := whileJetStreamStarts(ctx, func() error {
		if calls++; calls < 3 {
			return jetstream.ErrJetStreamNotEnabledForAccount
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, calls)

	other := errors.New("stream name already in use")
	calls = 0
	err = whileJetStreamStarts(ctx, func() error { calls++; return other })
	require.ErrorIs(t, err, other)
	require.Equal(t, 1, calls, "other errors are not retried")

	was := jetStreamStartup
	jetStreamStartup = 600 * time.Millisecond
	t.Cleanup(func() { jetStreamStartup = was })
	began := time.Now()
	err = whileJetStreamStarts(ctx, func() error { return jetstream.ErrJetStreamNotEnabledForAccount })
	require.ErrorIs(t, err, jetstream.ErrJetStreamNotEnabledForAccount)
	require.Less(t, time.Since(began), 3*time.Second)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	err = whileJetStreamStarts(cancelled, func() error { calls++; return jetstream.ErrJetStreamNotEnabledForAccount })
	require.ErrorIs(t, err, jetstream.ErrJetStreamNotEnabledForAccount)
	require.Equal(t, 1, calls, "a cancelled context stops the wait")
}
