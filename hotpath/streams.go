package hotpath

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
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

// DefaultDLQBytes caps a tenant's DLQ stream created by a pipeline before
// its tenant's provisioning set one (natsauth.DefaultLimits.DLQBytes).
const DefaultDLQBytes = 128 << 20

// EnsureStreams creates or updates the pipeline's work-queue stream and
// makes sure the tenant's DLQ stream exists (it leaves the DLQ's size, which
// comes from the tenant's limits, alone). It is idempotent.
//
// The work-queue stream has no byte limit of its own: with an account per
// tenant the account's disk quota bounds all its streams together, and a
// stream MaxBytes would be reserved on the server (docs/adr/0016).
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
	if _, err := js.Stream(ctx, DLQStream(p.Tenant)); errors.Is(err, jetstream.ErrStreamNotFound) {
		err = EnsureDLQStream(ctx, js, p.Tenant, DefaultDLQBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq stream of %s: %w", p.Tenant, err)
	}
	return stream, nil
}

// EnsureDLQStream creates or updates the tenant's DLQ stream, holding at
// most maxBytes (0: DefaultDLQBytes): when it is full the oldest dead
// letters go first, and no other tenant's stream is touched. This limit
// holds in both account modes, SharedAccount included. It is idempotent.
func EnsureDLQStream(ctx context.Context, js jetstream.JetStream, tenant string, maxBytes int64) error {
	if !spec.ValidName(tenant) {
		return fmt.Errorf("invalid tenant name %q", tenant)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultDLQBytes
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       DLQStream(tenant),
		Subjects:   []string{DLQSubjects(tenant)},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     DLQRetention,
		MaxBytes:   maxBytes,
		Discard:    jetstream.DiscardOld,
		Duplicates: duplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", DLQStream(tenant), err)
	}
	return nil
}

// DeleteTenantStreams deletes every stream of the tenant — its pipelines'
// and its DLQ — and returns how many it deleted. Streams of other tenants
// sharing the account are left alone. It is idempotent.
func DeleteTenantStreams(ctx context.Context, js jetstream.JetStream, tenant string) (int, error) {
	if !spec.ValidName(tenant) {
		return 0, fmt.Errorf("invalid tenant name %q", tenant)
	}
	names := js.StreamNames(ctx)
	var mine []string
	for name := range names.Name() {
		if IsTenantStream(tenant, name) {
			mine = append(mine, name)
		}
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return 0, fmt.Errorf("list streams: %w", err)
	}
	for _, name := range mine {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	return len(mine), nil
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
