package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// ErrUnavailable means the message could not be stored because NATS (or the
// blob store) is unavailable; the caller must not acknowledge its source.
var ErrUnavailable = errors.New("message store unavailable")

// ErrQuotaFull means the message could not be stored because its tenant's
// storage quota is full (JetStream refused the publish for the tenant's
// account). Nothing was stored; it can succeed again once the tenant's
// integrations have consumed what they hold.
var ErrQuotaFull = errors.New("the tenant's storage quota is full")

// jsErrAccountResourcesExceeded is JetStream's "resource limits exceeded
// for account" error code.
const jsErrAccountResourcesExceeded jetstream.ErrorCode = 10002

// publishError wraps the error of one refused publish: ErrQuotaFull when
// the tenant's account is over its limits, errKeyRecorded when the
// subject its first message was stored on condition of holds a record,
// ErrUnavailable otherwise.
func publishError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrAccountResourcesExceeded:
			return fmt.Errorf("%w: %w", ErrQuotaFull, err)
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %w", errKeyRecorded, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Publisher puts messages taken in by consumers into their pipeline's `in`
// subject. It is the sdk.Sink of every consumer.
type Publisher struct {
	Accounts Accounts
	Claims   *ClaimCheck
}

// Publish stores msgs in p's stream and returns once JetStream acknowledged
// every one (or with an error wrapping ErrQuotaFull or ErrUnavailable). Messages are
// published concurrently; a duplicate ID is acknowledged without being
// stored twice.
//
// A claim-checked body gets an object key of its own (the message ID and a
// random suffix), so a repeated ID never overwrites the body a stored
// message refers to; when JetStream reports the publish a duplicate, the
// object just written is deleted again (or left to the blob janitor).
func (pub *Publisher) Publish(ctx context.Context, p Pipeline, msgs []sdk.Message) error {
	_, err := pub.publish(ctx, p, msgs, "")
	return err
}

// publish is Publish; when unrecorded is set, JetStream stores the first
// message only if the subject unrecorded holds nothing (else the error
// wraps errKeyRecorded), checked and stored in one step. It reports
// whether JetStream acknowledged the first message as a duplicate.
func (pub *Publisher) publish(ctx context.Context, p Pipeline, msgs []sdk.Message, unrecorded string) (firstDuplicate bool, err error) {
	if err := p.Validate(); err != nil {
		return false, err
	}
	js, err := pub.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if st := js.Conn().Status(); st != nats.CONNECTED {
		return false, fmt.Errorf("%w: nats connection %s", ErrUnavailable, st)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var refs []string // claim-check keys, by future; nil while there are none
	for i, m := range msgs {
		env := Envelope{Msg: m}
		if len(m.Body) > pub.Claims.ThresholdOrDefault() { // the key is a hash: only when needed
			if err := pub.Claims.Offload(ctx, p.ClaimKey(m.ID+"/"+claimSuffix()), &env); err != nil {
				return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			if refs == nil {
				refs = make([]string, len(msgs))
			}
			refs[i] = env.BodyRef
		}
		msg := Encode(p.InSubject(), m.ID, env)
		if i == 0 && unrecorded != "" {
			msg.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{"0"}
			msg.Header[jetstream.ExpectedLastSubjSeqSubjHeader] = []string{unrecorded}
		}
		f, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(p.Stream()))
		if err != nil {
			return false, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.ID, err)
		}
		futures = append(futures, f)
	}
	firstDuplicate, err = pub.waitAcks(ctx, futures, refs)
	if err != nil && ctx.Err() != nil {
		leaveStuckNode(js.Conn()) // no PubAck in time: its node may be cut off
	}
	return firstDuplicate, err
}

// claimSuffix makes a claim-check key unique to one publish.
func claimSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitAcks waits for every publish acknowledgement, and reports whether
// the first publish was a duplicate. refs[i], when refs is set and it is,
// is futures[i]'s claim-checked body, deleted when the publish was a
// duplicate (the stored message refers to the first one's) or refused
// because its key is recorded.
func (pub *Publisher) waitAcks(ctx context.Context, futures []jetstream.PubAckFuture, refs []string) (firstDuplicate bool, err error) {
	var firstErr error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			duplicate := ack != nil && ack.Duplicate
			firstDuplicate = firstDuplicate || i == 0 && duplicate
			if duplicate && refs != nil && refs[i] != "" {
				// Best effort: the blob janitor removes what this misses.
				_ = pub.Claims.Store.Delete(ctx, refs[i])
			}
		case err := <-f.Err():
			err = publishError(err)
			if errors.Is(err, errKeyRecorded) && refs != nil && refs[i] != "" {
				_ = pub.Claims.Store.Delete(ctx, refs[i]) // refused, so referred to by nothing
			}
			if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
	return firstDuplicate, firstErr
}

// WaitAll waits for every publish acknowledgement; a refused publish
// wraps ErrQuotaFull or ErrUnavailable.
func WaitAll(ctx context.Context, futures []jetstream.PubAckFuture) error {
	var firstErr error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = publishError(err)
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
	return firstErr
}
