package hotpath

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// ErrUnavailable means the message could not be stored because NATS (or the
// blob store) is unavailable; the caller must not acknowledge its source.
var ErrUnavailable = errors.New("message store unavailable")

// Publisher puts messages taken in by consumers into their pipeline's `in`
// subject. It is the sdk.Sink of every consumer.
type Publisher struct {
	Accounts Accounts
	Claims   *ClaimCheck
}

// Publish stores msgs in p's stream and returns once JetStream acknowledged
// every one (or with an error wrapping ErrUnavailable). Messages are
// published concurrently; a duplicate ID is acknowledged without being
// stored twice.
func (pub *Publisher) Publish(ctx context.Context, p Pipeline, msgs []sdk.Message) error {
	if err := p.Validate(); err != nil {
		return err
	}
	js, err := pub.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if st := js.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: nats connection %s", ErrUnavailable, st)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		env := envelope{msg: m}
		if len(m.Body) > pub.Claims.threshold() { // the key is a hash: only when needed
			if err := pub.Claims.offload(ctx, p.ClaimKey(m.ID), &env); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		f, err := js.PublishMsgAsync(encode(p.InSubject(), m.ID, env), jetstream.WithExpectStream(p.Stream()))
		if err != nil {
			return fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.ID, err)
		}
		futures = append(futures, f)
	}
	return waitAll(ctx, futures)
}

// waitAll waits for every publish acknowledgement.
func waitAll(ctx context.Context, futures []jetstream.PubAckFuture) error {
	var firstErr error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
	return firstErr
}
