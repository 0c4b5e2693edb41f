package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// duplicateWindow is how long JetStream remembers a Nats-Msg-Id in every
// stream VRSky creates.
const duplicateWindow = 2 * time.Minute

// DefaultDLQBytes caps a tenant's DLQ stream created by a pipeline before
// its tenant's provisioning set one (natsauth.DefaultLimits.DLQBytes).
const DefaultDLQBytes = 128 << 20

// CreateOrUpdateStream creates or updates a stream with cfg. Every stream
// VRSky makes is made here, so a platform-wide stream setting lands in one
// place.
func CreateOrUpdateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var stream jetstream.Stream
	err := whileJetStreamStarts(ctx, func() (err error) {
		stream, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return stream, nil
}

// EnsureStreams creates or updates the pipeline's work-queue stream and
// makes sure the tenant's DLQ stream exists (it leaves the DLQ's size, which
// comes from the tenant's limits, alone). It is idempotent.
//
// The work-queue stream also holds the records of the delivery keys its
// ingress stored (Pipeline.KeySubjects), which no stage consumes and which
// expire on their own: hence per-message TTLs (docs/adr/0034).
//
// The work-queue stream has no byte limit of its own: with an account per
// tenant the account's disk quota bounds all its streams together, and a
// stream MaxBytes would be reserved on the server (docs/adr/0016).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, p Pipeline) (jetstream.Stream, error) {
	stream, err := CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{
		Name:        p.Stream(),
		Subjects:    []string{p.AllSubjects(), p.KeySubjects()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  duplicateWindow,
		Discard:     jetstream.DiscardOld,
		AllowMsgTTL: true,
	})
	if err != nil {
		return nil, err
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
	_, err := CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{
		Name:       DLQStream(tenant),
		Subjects:   []string{DLQSubjects(tenant)},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     DLQRetention,
		MaxBytes:   maxBytes,
		Discard:    jetstream.DiscardOld,
		Duplicates: duplicateWindow,
	})
	return err
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

// DeleteStream removes a pipeline's stream; a missing stream is fine.
func DeleteStream(ctx context.Context, js jetstream.JetStream, p Pipeline) error {
	err := js.DeleteStream(ctx, p.Stream())
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", p.Stream(), err)
	}
	return nil
}

// OpenBucket creates or updates the KV bucket cfg describes and returns
// it. Every bucket VRSky makes is made here, so a platform-wide bucket
// setting lands in one place.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := whileJetStreamStarts(ctx, func() (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// jetStreamStartup bounds how long whileJetStreamStarts waits for a
// cluster that has just started to enable JetStream for an account.
var jetStreamStartup = 15 * time.Second

// whileJetStreamStarts runs op, again every quarter second while the
// server answers that JetStream is not enabled for the account yet, which
// a cluster answers for a few seconds after it starts, before its meta
// leader has enabled the accounts; a server that keeps answering so after
// jetStreamStartup is answered with its error.
func whileJetStreamStarts(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(jetStreamStartup)
	for {
		err := op()
		if !errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
