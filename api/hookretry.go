package api

import (
	"context"
	"errors"
	"time"

	"github.com/vrsky/vrsky/dataplane"
)

// Retrying what the message store could not confirm: the NATS node a
// publish went to was lost, or the stream is electing a new leader (a few
// seconds in a three-node cluster).
const (
	// storeAttemptTimeout bounds one attempt, so that a publish whose
	// PubAck went down with a node is sent again rather than awaited.
	storeAttemptTimeout = 2 * time.Second
	// storeRetryFor is how long after the first attempt a new one may
	// start: most of the request's own deadline (publishTimeout), which
	// bounds them all. A stream's leader election under load has been
	// seen to take six seconds.
	storeRetryFor = 8 * time.Second
	// storeRetryPause is the pause between attempts.
	storeRetryPause = 100 * time.Millisecond
)

// storeRetrying runs store until it succeeds, fails for another reason
// than dataplane.ErrUnavailable, ctx ends, or storeRetryFor has passed; it
// returns the last error. Repeating is safe: a message keeps its ID, so
// JetStream drops a second copy of one that was stored after all, and an
// idempotency claim of the same body answers "store it" again. Nothing is
// acknowledged here: the caller answers 202 only on nil.
func storeRetrying(ctx context.Context, store func(context.Context) error) error {
	began := time.Now()
	for {
		attempt, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
		err := store(attempt)
		cancel()
		if err == nil || !errors.Is(err, dataplane.ErrUnavailable) || time.Since(began) >= storeRetryFor {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(storeRetryPause):
		}
	}
}
