package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// DefaultIdempotencyTTL is how long a delivery key is remembered.
const DefaultIdempotencyTTL = 24 * time.Hour

// ErrKeyReused means a delivery key was already stored with another body.
var ErrKeyReused = errors.New("idempotency key already used with a different body")

// ErrKeyNotRecorded means a keyed delivery was stored but the record of
// its key could not be written: a repeat is stored again, which JetStream's
// duplicate window drops for two minutes and nothing drops after.
var ErrKeyNotRecorded = errors.New("delivery stored, its key not recorded")

// errKeyRecorded means a conditional publish found its key's record.
var errKeyRecorded = errors.New("delivery key already recorded")

// Digest is the SHA-256 of a body.
type Digest [sha256.Size]byte

// Idempotency stores keyed deliveries (docs/adr/0034): a delivery named by
// a key — a webhook's Idempotency-Key, a CloudEvent's source and id — is
// stored once, a repeat with the same body within TTL stores nothing and is
// answered as the first was, and a repeat with another body is refused.
//
// Each stored key has a record, the digest of its body, in the pipeline's
// own stream on Pipeline.KeySubject, which no stage consumes and which
// expires after TTL (a per-message TTL, counted in the tenant's storage).
// The first message of a delivery is published on condition that no record
// of its key exists, so checking the key and storing the message are one
// JetStream commit, one round trip; the record is written after the
// delivery is stored, without waiting.
//
// A remembered key is also an entry of the NATS server's subject index,
// in its memory until the record expires. MaxTenantKeys, or a tenant's
// own limit (TenantKeys), bounds a tenant's keys (docs/adr/0035): past
// it, a new key is stored as always but its record expires with
// JetStream's 2-minute duplicate window, not after TTL; CountKeys keeps
// the counts.
type Idempotency struct {
	Publisher *Publisher
	// TTL is how long a key is remembered; 0 means DefaultIdempotencyTTL.
	TTL time.Duration
	// MaxTenantKeys bounds the keys a tenant has remembered at once, over
	// all its pipelines (DefaultTenantKeys in the api role); 0: no bound.
	MaxTenantKeys int64
	// TenantKeys gives the tenants whose quota sets a limit of their own;
	// nil: every tenant gets MaxTenantKeys.
	TenantKeys TenantKeyLimits
	// Logger is told when a tenant reaches its limit and when it is under
	// it again; nil: nobody.
	Logger *slog.Logger

	keys keyCounts
}

// Store stores msgs, the delivery named key whose body has digest sum, in
// p's stream, unless key is recorded there: then it stores nothing and
// answers seen if the recorded body is the same, ErrKeyReused if not.
//
// A key whose first message is stored but not yet recorded — a request
// racing this one, or one that failed before it recorded its key — is
// stored again: JetStream drops what it already holds as duplicates within
// its window, and the key is recorded. Errors reaching NATS wrap
// ErrUnavailable; a delivery stored whose record could not be written
// returns ErrKeyNotRecorded.
func (i *Idempotency) Store(ctx context.Context, p Pipeline, key string, sum Digest, msgs []sdk.Message) (seen bool, err error) {
	if len(msgs) == 0 {
		return false, errors.New("store a keyed delivery: no message")
	}
	subject := p.KeySubject(key)
	duplicate, err := i.Publisher.publish(ctx, p, msgs[:1], subject)
	switch {
	case errors.Is(err, errKeyRecorded):
		seen, err := i.compare(ctx, p, subject, sum)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// A replicated stream refuses a check on a record being
			// written: it is there in a moment, so try again.
			err = fmt.Errorf("%w: delivery key being recorded: %w", ErrUnavailable, err)
		}
		return seen, err
	case err != nil:
		return false, err
	case duplicate:
		// Stored before, recorded since or not at all.
		if seen, err := i.compare(ctx, p, subject, sum); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return seen, err
		}
	}
	if len(msgs) > 1 {
		if err := i.Publisher.Publish(ctx, p, msgs[1:]); err != nil {
			return false, err
		}
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	if !i.keys.remember(p, i.keyLimit(p.Tenant)) {
		// Past the tenant's limit the key is remembered as long as the
		// duplicate window remembers its messages. A short record, not
		// none: behind older records, a stream the stages drain would
		// cost the NATS server a new block each time (docs/adr/0035).
		ttl = duplicateWindow
	}
	return false, i.record(ctx, p, subject, sum, ttl)
}

// compare reads the record on subject: seen when it holds sum,
// ErrKeyReused when it holds another digest, an error wrapping
// jetstream.ErrMsgNotFound when there is none.
func (i *Idempotency) compare(ctx context.Context, p Pipeline, subject string, sum Digest) (seen bool, err error) {
	js, err := i.Publisher.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	stream, err := js.Stream(ctx, p.Stream())
	if err != nil {
		return false, fmt.Errorf("%w: open stream %s: %w", ErrUnavailable, p.Stream(), err)
	}
	rec, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, fmt.Errorf("read delivery key record: %w", err)
	}
	if err != nil {
		return false, fmt.Errorf("%w: read delivery key record: %w", ErrUnavailable, err)
	}
	if string(rec.Data) != hex.EncodeToString(sum[:]) {
		return false, ErrKeyReused
	}
	return true, nil
}

// record writes the record of a stored key, which expires after ttl. It
// neither waits for the write nor asks JetStream to acknowledge it: a key
// not recorded is stored again by a repeat, which JetStream drops within
// its duplicate window.
func (i *Idempotency) record(ctx context.Context, p Pipeline, subject string, sum Digest, ttl time.Duration) error {
	js, err := i.Publisher.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeyNotRecorded, err)
	}
	msg := &nats.Msg{Subject: subject, Data: []byte(hex.EncodeToString(sum[:])), Header: nats.Header{
		jetstream.MsgTTLHeader: []string{strconv.FormatInt(int64(max(ttl, time.Second)/time.Second), 10)},
	}}
	// Without a reply subject the server stores it and sends nothing back.
	if err := js.Conn().PublishMsg(msg); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyNotRecorded, err)
	}
	return nil
}
