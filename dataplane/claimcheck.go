package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"

	"github.com/vrsky/vrsky/internal/blobstore"
)

// Claim-check defaults.
const (
	// DefaultClaimThreshold is the body size above which bodies travel by
	// reference.
	DefaultClaimThreshold = 256 << 10
	// ClaimTTL is how long a claim-checked body is kept by default: as long
	// as a dead letter, so that a message waiting in a stopped
	// integration's backlog or retrying finds its body (ADR 0013). A body
	// whose message was delivered is deleted at once where it has a single
	// owner (a pipeline with one producer).
	ClaimTTL = DLQRetention
	// DLQRetention is how long dead letters and their bodies are kept.
	DLQRetention = 7 * 24 * time.Hour
)

// ClaimCheck moves large bodies into the blob store so only a reference
// rides on NATS.
type ClaimCheck struct {
	Store *blobstore.Store
	// Threshold is the size above which a body is stored by reference;
	// 0 means DefaultClaimThreshold.
	Threshold int
	// Errors counts failed blob-store operations; nil counts none.
	Errors ErrorCounter
}

// ErrorCounter counts failed blob-store operations by operation: ClaimPut,
// ClaimGet or ClaimDelete. The runtime's metrics implement it.
type ErrorCounter interface {
	Inc(operation string)
}

// Claim-check operations, the values ErrorCounter.Inc receives.
const (
	ClaimPut    = "put"
	ClaimGet    = "get"
	ClaimDelete = "delete"
)

// countErr counts err, when not nil, as a failed operation.
func (c *ClaimCheck) countErr(operation string, err error) {
	if err != nil && c != nil && c.Errors != nil {
		c.Errors.Inc(operation)
	}
}

// ThresholdOrDefault is the size above which a body is stored by
// reference: Threshold, or DefaultClaimThreshold when it is not set.
func (c *ClaimCheck) ThresholdOrDefault() int {
	if c == nil || c.Threshold <= 0 {
		return DefaultClaimThreshold
	}
	return c.Threshold
}

// Offload stores env's body under key when it is over the threshold. It
// returns only after the store confirmed the write, so no reference is ever
// published before its object exists.
func (c *ClaimCheck) Offload(ctx context.Context, key string, env *Envelope) error {
	if len(env.Msg.Body) <= c.ThresholdOrDefault() {
		return nil
	}
	if c == nil || c.Store == nil {
		return fmt.Errorf("body of %d bytes is over the claim-check threshold and no blob store is configured", len(env.Msg.Body))
	}
	if err := c.Store.Put(ctx, key, bytes.NewReader(env.Msg.Body), int64(len(env.Msg.Body)), env.Msg.ContentType); err != nil {
		c.countErr(ClaimPut, err)
		return fmt.Errorf("claim-check body of %s: %w", env.Msg.ID, err)
	}
	env.BodyRef = key
	env.Size = int64(len(env.Msg.Body))
	return nil
}

// Why a claim-checked body cannot be had; both are permanent failures of the
// message, which goes to the DLQ with the reason.
var (
	ErrBodyGone   = errors.New("claim-checked body is gone")
	ErrForeignRef = errors.New("body reference outside the message's tenant")
)

// checkRef refuses a body reference that is not under p's tenant's
// claim-check prefix: a reference is a header anyone able to publish to the
// stream could write, and must never reach another tenant's bodies.
func checkRef(p Pipeline, ref string) error {
	if !strings.HasPrefix(ref, ClaimPrefix+p.Tenant+"/") || strings.Contains(ref, "..") {
		return sdk.PermanentError(fmt.Errorf("%w: %q", ErrForeignRef, ref))
	}
	return nil
}

// Resolve fetches env's body when it travels by reference.
func (c *ClaimCheck) Resolve(ctx context.Context, env *Envelope) error {
	if env.BodyRef == "" {
		return nil
	}
	r, err := c.Open(ctx, *env)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, 0, env.Size))
	if _, err := io.Copy(buf, r); err != nil {
		c.countErr(ClaimGet, err)
		return fmt.Errorf("read claim-checked body of %s: %w", env.Msg.ID, err)
	}
	env.Msg.Body = buf.Bytes()
	return nil
}

// Open returns a reader of env's claim-checked body.
func (c *ClaimCheck) Open(ctx context.Context, env Envelope) (io.ReadCloser, error) {
	if c == nil || c.Store == nil {
		return nil, fmt.Errorf("message %s has a claim-checked body and no blob store is configured", env.Msg.ID)
	}
	r, err := c.Store.Get(ctx, env.BodyRef)
	c.countErr(ClaimGet, err)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil, sdk.PermanentError(fmt.Errorf("%w: the claim-checked body %s of message %s is gone from the blob store", ErrBodyGone, env.BodyRef, env.Msg.ID))
	}
	if err != nil {
		return nil, fmt.Errorf("fetch claim-checked body of %s: %w", env.Msg.ID, err)
	}
	return r, nil
}

// Release deletes a claim-checked body its message owned alone, once that
// message is finished. It is best-effort: what it misses expires with
// ClaimTTL.
func (c *ClaimCheck) Release(ctx context.Context, ref string) {
	if ref == "" || c == nil || c.Store == nil {
		return
	}
	c.countErr(ClaimDelete, c.Store.Delete(ctx, ref))
}

// KeepForDLQ copies a claim-checked body to the DLQ prefix, where it lives as
// long as the dead letter, and returns the new reference.
func (c *ClaimCheck) KeepForDLQ(ctx context.Context, ref, dlqKey string) (string, error) {
	if err := c.Store.Copy(ctx, ref, dlqKey); err != nil {
		c.countErr(ClaimPut, err)
		if errors.Is(err, blobstore.ErrNotFound) {
			err = fmt.Errorf("%w: %w", ErrBodyGone, err)
		}
		return "", fmt.Errorf("keep claim-checked body for the DLQ: %w", err)
	}
	return dlqKey, nil
}

// SweepExpired removes claim-checked bodies older than claimTTL and
// dead-lettered bodies older than dlqTTL (zero means the defaults).
func SweepExpired(ctx context.Context, store *blobstore.Store, now time.Time, claimTTL, dlqTTL time.Duration) (int, error) {
	if claimTTL <= 0 {
		claimTTL = ClaimTTL
	}
	if dlqTTL <= 0 {
		dlqTTL = DLQRetention
	}
	claims, err := store.DeleteOlderThan(ctx, ClaimPrefix, now.Add(-claimTTL))
	if err != nil {
		return claims, err
	}
	dlq, err := store.DeleteOlderThan(ctx, DLQClaimPrefix, now.Add(-dlqTTL))
	return claims + dlq, err
}
