package hotpath

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Delivery settings shared by every stage consumer.
const (
	// MaxAttempts is how often a stage tries a message: 1 + 3 retries.
	MaxAttempts = 4
	// maxDeliverBackstop bounds redeliveries that are not counted as
	// attempts (runner crashes, lost acks); see docs/adr/0002.
	maxDeliverBackstop = 20
	ackWait            = 30 * time.Second
	maxAckPending      = 8192
)

// ensureConsumer creates or updates a stage's durable pull consumer.
func ensureConsumer(ctx context.Context, stream jetstream.Stream, name, subject string) (jetstream.Consumer, error) {
	c, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliverBackstop,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return c, nil
}
