package hotpath

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IdempotencyBucket holds, in each tenant's account, the body digest of
// every message ID the webhook ingress stored, for the bucket's TTL. It
// outlives JetStream's 2-minute duplicate window, so a key repeated a day
// later is still one message, and a key repeated with another body is
// refused rather than stored.
const IdempotencyBucket = "vrsky_idempotency"

// DefaultIdempotencyTTL is how long a message ID is remembered.
const DefaultIdempotencyTTL = 24 * time.Hour

// ErrKeyReused means a message ID was already stored with another body.
var ErrKeyReused = errors.New("idempotency key already used with a different body")

// Idempotency remembers the body digest of each stored message ID. The
// bucket lives in each tenant's account, so its size counts against that
// tenant's JetStream limits and goes with the tenant. Safe for concurrent
// use.
type Idempotency struct {
	Accounts Accounts
	// TTL is how long an ID is remembered; 0 means DefaultIdempotencyTTL.
	TTL time.Duration

	mu      sync.Mutex
	buckets map[string]tenantBucket // tenant → its bucket
}

type tenantBucket struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// Digest is the SHA-256 of a body.
type Digest [sha256.Size]byte

// Seen reports whether p already stored message id, with the body whose
// digest is sum: true means the caller must store nothing and answer as
// the first time; ErrKeyReused means the ID came with another body. Errors
// reaching NATS wrap ErrUnavailable.
func (i *Idempotency) Seen(ctx context.Context, p Pipeline, id string, sum Digest) (bool, error) {
	kv, err := i.bucket(ctx, p.Tenant)
	if err != nil {
		return false, err
	}
	e, err := kv.Get(ctx, idempotencyKey(p, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: read idempotency key: %w", ErrUnavailable, err)
	}
	if string(e.Value()) != hex.EncodeToString(sum[:]) {
		return false, ErrKeyReused
	}
	return true, nil
}

// Remember records that p stored message id with the body of digest sum.
// Call it only after the message is durable. When another body was
// remembered for id meanwhile (two requests raced with one key), it
// returns ErrKeyReused: JetStream kept only the first of them.
func (i *Idempotency) Remember(ctx context.Context, p Pipeline, id string, sum Digest) error {
	kv, err := i.bucket(ctx, p.Tenant)
	if err != nil {
		return err
	}
	key, value := idempotencyKey(p, id), hex.EncodeToString(sum[:])
	if _, err := kv.Create(ctx, key, []byte(value)); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: write idempotency key: %w", ErrUnavailable, err)
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("%w: read idempotency key: %w", ErrUnavailable, err)
	}
	if string(e.Value()) != value {
		return ErrKeyReused
	}
	return nil
}

func (i *Idempotency) bucket(ctx context.Context, tenant string) (jetstream.KeyValue, error) {
	js, err := i.Accounts.JetStream(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	i.mu.Lock()
	b, ok := i.buckets[tenant]
	i.mu.Unlock()
	if ok && b.js == js {
		return b.kv, nil
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: IdempotencyBucket, History: 1, TTL: ttl,
		Description: "webhook ingress: body digest of each stored message ID",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: open bucket %s: %w", ErrUnavailable, IdempotencyBucket, err)
	}
	i.mu.Lock()
	if i.buckets == nil {
		i.buckets = make(map[string]tenantBucket)
	}
	i.buckets[tenant] = tenantBucket{js: js, kv: kv}
	i.mu.Unlock()
	return kv, nil
}

// idempotencyKey is p's key for message id: a hash, since IDs may hold
// any printable character and KV keys may not.
func idempotencyKey(p Pipeline, id string) string {
	sum := sha256.Sum256([]byte(id))
	return p.Tenant + "." + p.Integration + "." + hex.EncodeToString(sum[:16])
}
