package hotpath

import (
	"context"
	"errors"
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
	duplicateWindow    = 2 * time.Minute
)

// EnsureStreams creates or updates the pipeline's work-queue stream and the
// tenant's DLQ stream. It is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, p Pipeline) (jetstream.Stream, error) {
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       p.Stream(),
		Subjects:   []string{p.AllSubjects()},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: duplicateWindow,
		Discard:    jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", p.Stream(), err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       DLQStream(p.Tenant),
		Subjects:   []string{DLQSubjects(p.Tenant)},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     DLQRetention,
		Duplicates: duplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", DLQStream(p.Tenant), err)
	}
	return stream, nil
}

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

// deleteStream removes a pipeline's stream; a missing stream is fine.
func deleteStream(ctx context.Context, js jetstream.JetStream, p Pipeline) error {
	err := js.DeleteStream(ctx, p.Stream())
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", p.Stream(), err)
	}
	return nil
}
