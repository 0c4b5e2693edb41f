package hotpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Backoff returns the redelivery delay before attempt n+1 after n failed
// attempts: 1 s, 2 s, 4 s, …
func Backoff(failedAttempts int) time.Duration {
	if failedAttempts < 1 {
		failedAttempts = 1
	}
	return time.Second << (failedAttempts - 1)
}

// failures decides, for a message a stage could not handle, between a
// delayed redelivery and the DLQ. It is the one place that naks and terms.
//
// Attempts are counted in the message-state bucket, not from JetStream's
// delivery count, so redeliveries caused by VRSky itself (a runner killed
// before acking, a lost ack) never burn a message's retries. Nothing is
// written for messages that never fail.
type failures struct {
	js      jetstream.JetStream
	state   *State
	claims  *ClaimCheck
	metrics *pipelineMetrics
	log     *slog.Logger
	// backoff is Backoff unless a test shortens it.
	backoff func(int) time.Duration
}

// fail handles one failed message at stage. m is the JetStream message, env
// its decoded form (env.msg.ID may be empty when decoding failed). It reports
// whether the message is finished: dead-lettered rather than redelivered.
func (f *failures) fail(ctx context.Context, p Pipeline, stage string, m jetstream.Msg, env envelope, cause error) (deadLettered bool) {
	id := env.msg.ID
	if id == "" {
		id = "undecodable-" + m.Headers().Get("Nats-Msg-Id")
	}
	attempts := 1
	if !sdk.IsPermanent(cause) {
		n, err := f.countAttempt(ctx, p.AttemptKey(stage, id))
		if err != nil {
			// Our own store failed: retry later without counting.
			f.log.Warn("cannot count the attempt; redelivering without counting", "stage", stage, "message_id", id, "err", err)
			_ = m.NakWithDelay(time.Second)
			return false
		}
		attempts = n
		if attempts < MaxAttempts {
			delay := f.backoff(attempts)
			if after := sdk.RetryAfterOf(cause); after > delay {
				delay = after
			}
			f.metrics.retries.Inc()
			f.log.Debug("message failed; retrying", "stage", stage, "message_id", id, "attempt", attempts, "retry_in", delay.String(), "err", cause)
			_ = m.NakWithDelay(delay)
			return false
		}
	}
	if err := f.deadLetter(ctx, p, stage, m, env, id, attempts, cause); err != nil {
		f.log.Warn("cannot dead-letter the message; redelivering", "stage", stage, "message_id", id, "err", err)
		_ = m.NakWithDelay(time.Second)
		return false
	}
	f.metrics.dlq.Inc()
	f.log.Warn("message dead-lettered", "stage", stage, "message_id", id, "attempts", attempts, "reason", cause)
	_ = f.state.Attempts.Delete(ctx, p.AttemptKey(stage, id))
	_ = m.Term()
	return true
}

// succeeded forgets a message's failed attempts once it got through; only
// redelivered messages can have any.
func (f *failures) succeeded(ctx context.Context, p Pipeline, stage string, m jetstream.Msg, id string) {
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		_ = f.state.Attempts.Delete(ctx, p.AttemptKey(stage, id))
	}
}

// dlqDedupID is the dead letter's JetStream message ID: the same for a
// redelivery of the same stored message (a runner that died between the DLQ
// publish and the Term dead-letters it once), different for a replayed copy,
// which is a new message in the stream and must reach the DLQ again if it
// fails again.
func dlqDedupID(m jetstream.Msg, id, stage string) string {
	dedup := id + "/" + stage
	if md, err := m.Metadata(); err == nil {
		dedup += "/" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return dedup
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
// as the DLQ keeps the message.
func (f *failures) deadLetter(ctx context.Context, p Pipeline, stage string, m jetstream.Msg, env envelope, id string, attempts int, cause error) error {
	out := envelope{msg: env.msg, bodyRef: env.bodyRef, size: env.size}
	out.msg.ID = id
	if env.bodyRef == "" && env.msg.Body == nil {
		out.msg.Body = m.Data() // undecodable: keep the raw bytes
	}
	if env.bodyRef != "" {
		ref, err := f.claims.keepForDLQ(ctx, env.bodyRef, p.DLQClaimKey(id+"/"+stage))
		if err != nil {
			return err
		}
		out.bodyRef = ref
		out.msg.Body = nil
	}
	nm := encode(p.DLQSubject(), dlqDedupID(m, id, stage), out)
	nm.Header.Set(HeaderDLQReason, cause.Error())
	nm.Header.Set(HeaderDLQStage, stage)
	nm.Header.Set(HeaderDLQAttempts, strconv.Itoa(attempts))
	nm.Header.Set(HeaderDLQSubject, p.StageSubject(stage))
	nm.Header.Set(HeaderDLQAt, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := f.js.PublishMsg(ctx, nm); err != nil {
		return fmt.Errorf("publish %s to the DLQ: %w", id, err)
	}
	return nil
}
