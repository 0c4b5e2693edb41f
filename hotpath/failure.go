package hotpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// Backoff returns the redelivery delay before attempt n+1 after n failed
// attempts: 1 s, 2 s, 4 s, …
func Backoff(failedAttempts int) time.Duration {
	if failedAttempts < 1 {
		failedAttempts = 1
	}
	return time.Second << (failedAttempts - 1)
}

// maxInfraBackoff caps the redelivery delay after failures of VRSky's own
// infrastructure.
const maxInfraBackoff = 5 * time.Minute

// InfraBackoff returns the redelivery delay of a message that the stage
// could not handle because VRSky's own infrastructure failed (the blob
// store, a NATS publish, the attempt counter) on its deliveries-th delivery:
// 1 s doubling per delivery up to maxInfraBackoff, with half of it random
// so that messages failed together do not all come back together. The
// maxDeliverBackstop deliveries then span half an hour to an hour of
// trouble (ADR 0013).
func InfraBackoff(deliveries int) time.Duration {
	deliveries = min(max(deliveries, 1), 16)
	d := min(time.Second<<(deliveries-1), maxInfraBackoff)
	return d/2 + rand.N(d/2+1)
}

// failures is the failure policy: for a message a stage could not handle it
// decides between a delayed redelivery and the DLQ, and writes the dead
// letter. It makes no JetStream ack call: the settler (settle.go) acts on
// its verdict.
//
// Attempts are counted in the message-state bucket, not from JetStream's
// delivery count, so redeliveries caused by VRSky itself (a runner killed
// before acking, a lost ack) never burn a message's retries. Nothing is
// written for messages that never fail.
type failures struct {
	js      jetstream.JetStream
	state   *dataplane.State
	claims  *dataplane.ClaimCheck
	metrics *pipelineMetrics
	log     *slog.Logger
	// backoff is Backoff unless a test shortens it.
	backoff func(int) time.Duration
	// infraBackoff is InfraBackoff unless a test shortens it.
	infraBackoff func(int) time.Duration
	// failed counts the pipeline's failed attempts (retried or
	// dead-lettered) in the counts bucket; nil counts nothing.
	failed *stageCount
}

// verdict is what the failure policy decided for a failed message: a
// redelivery after delay, or the DLQ with reason.
type verdict struct {
	// deadLetter sends the message to the DLQ; otherwise it comes back
	// after delay.
	deadLetter bool
	delay      time.Duration
	reason     error
	// attempts is the failed-attempt count the dead letter records (0
	// when the infrastructure failed, not the message).
	attempts int
	// last says the message gets no other delivery: its dead letter keeps
	// the claim-checked body's own reference rather than fail.
	last bool
	// counted says the failure was the message's own (an attempt, or a
	// permanent error), as opposed to VRSky's infrastructure failing.
	counted bool
}

// decide returns the verdict for message m (ID id) that failed at stage
// with cause. It counts the attempt of a retryable failure.
func (f *failures) decide(ctx context.Context, p dataplane.Pipeline, stage string, m jetstream.Msg, id string, cause error) verdict {
	if isInfra(cause) {
		return f.infraVerdict(m, cause)
	}
	if sdk.IsPermanent(cause) {
		return verdict{deadLetter: true, reason: cause, attempts: 1, counted: true}
	}
	n, err := f.countAttempt(ctx, p.AttemptKey(stage, id))
	if err != nil {
		// Our own store failed: retry later without counting.
		f.log.Warn("cannot count the attempt; redelivering without counting", "stage", stage, "message_id", id, "error", err)
		return f.infraVerdict(m, fmt.Errorf("count the attempt: %w (after: %w)", err, cause))
	}
	if n >= MaxAttempts {
		return verdict{deadLetter: true, reason: cause, attempts: n, counted: true}
	}
	delay := f.backoff(n)
	if after := sdk.RetryAfterOf(cause); after > delay {
		delay = after
	}
	f.log.Debug("message failed; retrying", "stage", stage, "message_id", id, "attempt", n, "retry_in", delay.String(), "error", cause)
	return verdict{delay: delay, reason: cause, attempts: n, counted: true}
}

// infraVerdict is the verdict for a message the stage could not handle
// because of VRSky's own infrastructure: it comes back later, with a
// growing delay, and does not count as an attempt. Its last delivery
// before JetStream's backstop is not given back but dead-lettered, so that
// no message is ever left in a stream that no longer delivers it.
func (f *failures) infraVerdict(m jetstream.Msg, cause error) verdict {
	deliveries := deliveriesOf(m)
	if deliveries < maxDeliverBackstop {
		return verdict{delay: f.infraDelay(deliveries), reason: cause}
	}
	return verdict{deadLetter: true, last: true,
		reason: fmt.Errorf("VRSky's infrastructure failed on all %d deliveries: %w", deliveries, cause)}
}

func (f *failures) infraDelay(deliveries int) time.Duration {
	if f.infraBackoff != nil {
		return f.infraBackoff(deliveries)
	}
	return InfraBackoff(deliveries)
}

func (f *failures) countFailed() {
	if f.failed != nil {
		f.failed.add(1)
	}
}

// succeeded forgets a message's failed attempts once it got through; only
// redelivered messages can have any.
func (f *failures) succeeded(ctx context.Context, p dataplane.Pipeline, stage string, m jetstream.Msg, id string) {
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		_ = f.state.Attempts.Delete(ctx, p.AttemptKey(stage, id))
	}
}

// deliveriesOf is how often m was delivered, 1 when unknown.
func deliveriesOf(m jetstream.Msg) int {
	if md, err := m.Metadata(); err == nil {
		return int(md.NumDelivered)
	}
	return 1
}

// countAttempt increments and returns the failed-attempt count under key.
func (f *failures) countAttempt(ctx context.Context, key string) (int, error) {
	for range 5 {
		entry, err := f.state.Attempts.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := f.state.Attempts.Create(ctx, key, []byte("1")); err == nil {
				return 1, nil
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		n, _ := strconv.Atoi(string(entry.Value()))
		n++
		if _, err := f.state.Attempts.Update(ctx, key, []byte(strconv.Itoa(n)), entry.Revision()); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("count attempt %s: too much contention", key)
}

// deadLetter publishes the message to the tenant's DLQ with why, where and
// after how many attempts it failed, keeping a claim-checked body for as long
// as the DLQ keeps the message. It returns the body reference the dead
// letter holds ("" when none).
func (f *failures) deadLetter(ctx context.Context, p dataplane.Pipeline, stage string, m jetstream.Msg, env dataplane.Envelope, id string, v verdict) (string, error) {
	return f.deadLetterData(ctx, p, stage, m.Data(), seqOf(m), env, id, v.attempts, v.reason, v.last)
}

// seqOf is m's stream sequence, 0 when unknown.
func seqOf(m jetstream.Msg) uint64 {
	if md, err := m.Metadata(); err == nil {
		return md.Sequence.Stream
	}
	return 0
}

// deadLetterData is deadLetter for a stored message given by its data and
// stream sequence (0 when unknown). last says that the message gets no
// other chance: when its claim-checked body cannot be copied for the DLQ,
// the dead letter keeps the body's own reference (which expires with
// ClaimTTL, as long as the DLQ keeps dead letters) rather than fail. It
// returns the body reference the dead letter holds ("" when none).
func (f *failures) deadLetterData(ctx context.Context, p dataplane.Pipeline, stage string, data []byte, seq uint64, env dataplane.Envelope, id string, attempts int, cause error, last bool) (string, error) {
	out := dataplane.Envelope{Msg: env.Msg, BodyRef: env.BodyRef, Size: env.Size}
	out.Msg.ID = id
	if env.BodyRef == "" && env.Msg.Body == nil {
		out.Msg.Body = data // undecodable: keep the raw bytes
	}
	if env.BodyRef != "" && (errors.Is(cause, dataplane.ErrBodyGone) || errors.Is(cause, dataplane.ErrForeignRef)) {
		out.Msg.Body, out.BodyRef, out.Size = nil, "", 0 // nothing to keep
	}
	if out.BodyRef != "" {
		out.Msg.Body = nil
		ref, err := f.claims.KeepForDLQ(ctx, env.BodyRef, p.DLQClaimKey(id+"/"+stage))
		switch {
		case err == nil:
			out.BodyRef = ref
		case errors.Is(err, dataplane.ErrBodyGone):
			out.BodyRef, out.Size = "", 0 // nothing left to keep
		case last:
			f.log.Warn("dead letter keeps the claim-checked body's own reference", "stage", stage, "message_id", id, "error", err)
		default:
			return "", err
		}
	}
	// The dead letter's JetStream message ID is the same for a redelivery
	// of the same stored message (a runner that died between the DLQ
	// publish and the Term dead-letters it once), different for a replayed
	// copy, which is a new message in the stream and must reach the DLQ
	// again if it fails again.
	dedup := id + "/" + stage
	if seq != 0 {
		dedup += "/" + strconv.FormatUint(seq, 10)
	}
	nm := dataplane.Encode(p.DLQSubject(), dedup, out)
	nm.Header.Set(dataplane.HeaderDLQReason, cause.Error())
	nm.Header.Set(dataplane.HeaderDLQStage, stage)
	nm.Header.Set(dataplane.HeaderDLQAttempts, strconv.Itoa(attempts))
	nm.Header.Set(dataplane.HeaderDLQSubject, p.StageSubject(stage))
	nm.Header.Set(dataplane.HeaderDLQAt, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := f.js.PublishMsg(ctx, nm); err != nil {
		return "", fmt.Errorf("publish %s to the DLQ: %w", id, err)
	}
	return out.BodyRef, nil
}
