package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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

// pendingPrefix marks a claimed ID whose message may not be stored yet.
const pendingPrefix = "pending:"

// Claim decides what to do with message id of p, whose body has digest
// sum, in one round trip on the happy path: it records the ID as pending
// and answers false (unseen: store the message, then Confirm). When the ID
// is already known it answers true if its message is stored with the same
// body (store nothing, answer as the first time), false if it is pending
// with the same body (a request that raced this one or failed before
// storing: store it again, JetStream drops the duplicate), and
// ErrKeyReused if it came with another body. Errors reaching NATS wrap
// ErrUnavailable.
func (i *Idempotency) Claim(ctx context.Context, p Pipeline, id string, sum Digest) (seen bool, err error) {
	b, err := i.bucket(ctx, p.Tenant)
	if err != nil {
		return false, err
	}
	key, digest := idempotencyKey(p, id), hex.EncodeToString(sum[:])
	if _, err := b.kv.Create(ctx, key, []byte(pendingPrefix+digest)); err == nil {
		return false, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		if ctx.Err() != nil {
			leaveStuckNode(b.js.Conn()) // its node may be cut off
		}
		return false, fmt.Errorf("%w: write idempotency key: %w", ErrUnavailable, err)
	}
	e, err := b.kv.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("%w: read idempotency key: %w", ErrUnavailable, err)
	}
	stored, pending := strings.CutPrefix(string(e.Value()), pendingPrefix)
	if stored != digest {
		return false, ErrKeyReused
	}
	return !pending, nil
}

// Confirm records that p's message id, claimed with Claim, is stored. It
// neither waits for the write nor asks JetStream to acknowledge it: if it
// is lost, the ID stays pending and a repeat of the same body is stored
// again, which JetStream drops as a duplicate within its window.
func (i *Idempotency) Confirm(ctx context.Context, p Pipeline, id string, sum Digest) error {
	b, err := i.bucket(ctx, p.Tenant)
	if err != nil {
		return err
	}
	// A KV put is a publish to the bucket's subject for the key; without a
	// reply subject the server stores it and sends nothing back.
	subject := kvPutSubject(IdempotencyBucket, idempotencyKey(p, id))
	if err := b.js.Conn().Publish(subject, []byte(hex.EncodeToString(sum[:]))); err != nil {
		return fmt.Errorf("%w: confirm idempotency key: %w", ErrUnavailable, err)
	}
	return nil
}

func (i *Idempotency) bucket(ctx context.Context, tenant string) (tenantBucket, error) {
	js, err := i.Accounts.JetStream(ctx, tenant)
	if err != nil {
		return tenantBucket{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	i.mu.Lock()
	b, ok := i.buckets[tenant]
	i.mu.Unlock()
	if ok && b.js == js {
		return b, nil
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	kv, err := OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: IdempotencyBucket, History: 1, TTL: ttl,
		Description: "webhook ingress: body digest of each stored message ID",
	})
	if err != nil {
		return tenantBucket{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b = tenantBucket{js: js, kv: kv}
	i.mu.Lock()
	if i.buckets == nil {
		i.buckets = make(map[string]tenantBucket)
	}
	i.buckets[tenant] = b
	i.mu.Unlock()
	return b, nil
}
