// Package activities holds VRSky's Temporal activities: the steps workflows
// take against the outside world (PostgreSQL, NATS, the blob store).
//
// Activities are methods on structs that hold their dependencies; every one
// is idempotent, because Temporal retries it. They never carry message bodies
// in their inputs or results.
package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
)

// Blobs holds the activities that maintain the blob store.
type Blobs struct {
	Store *blobstore.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SweepInput sets the lifetimes; zero means the hot path's defaults
// (dataplane.ClaimTTL for claim-checked bodies, dataplane.DLQRetention for
// dead-lettered ones: both 7 days, see docs/adr/0013).
type SweepInput struct {
	ClaimTTL time.Duration
	DLQTTL   time.Duration
}

// SweepResult counts removed objects.
type SweepResult struct {
	Removed int
}

// SweepExpiredBlobs deletes claim-check objects older than ClaimTTL and DLQ'd
// payloads older than DLQTTL. It is the backstop of the hot path, which
// removes a delivered message's body itself where the body was the
// message's alone. Repeating it is harmless.
func (b *Blobs) SweepExpiredBlobs(ctx context.Context, in SweepInput) (SweepResult, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	removed, err := dataplane.SweepExpired(ctx, b.Store, now(), in.ClaimTTL, in.DLQTTL)
	if err != nil {
		return SweepResult{Removed: removed}, fmt.Errorf("sweep expired blobs: %w", err)
	}
	return SweepResult{Removed: removed}, nil
}
