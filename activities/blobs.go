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

	"github.com/vrsky/vrsky/internal/blobstore"
)

// Claim-check object prefixes and their default lifetimes.
const (
	ClaimPrefix     = "claims/"
	DLQPrefix       = "dlq/"
	DefaultClaimTTL = 15 * time.Minute
	DefaultDLQTTL   = 7 * 24 * time.Hour
)

// Blobs holds the activities that maintain the blob store.
type Blobs struct {
	Store *blobstore.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SweepInput sets the lifetimes; zero means the default.
type SweepInput struct {
	ClaimTTL time.Duration
	DLQTTL   time.Duration
}

// SweepResult counts removed objects.
type SweepResult struct {
	Removed int
}

// SweepExpiredBlobs deletes claim-check objects older than ClaimTTL and DLQ'd
// payloads older than DLQTTL. Repeating it is harmless.
func (b *Blobs) SweepExpiredBlobs(ctx context.Context, in SweepInput) (SweepResult, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	claimTTL, dlqTTL := in.ClaimTTL, in.DLQTTL
	if claimTTL <= 0 {
		claimTTL = DefaultClaimTTL
	}
	if dlqTTL <= 0 {
		dlqTTL = DefaultDLQTTL
	}
	var total int
	for prefix, ttl := range map[string]time.Duration{ClaimPrefix: claimTTL, DLQPrefix: dlqTTL} {
		n, err := b.Store.DeleteOlderThan(ctx, prefix, now().Add(-ttl))
		total += n
		if err != nil {
			return SweepResult{Removed: total}, fmt.Errorf("sweep %s: %w", prefix, err)
		}
	}
	return SweepResult{Removed: total}, nil
}
