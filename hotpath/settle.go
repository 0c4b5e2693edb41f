package hotpath

import (
	"context"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vrsky/vrsky/dataplane"
)

// settler settles the messages of one stage: it turns each message's
// outcome into its one JetStream call. This file is the only place in the
// runtime that acks, naks, terms or restarts an ack timer.
//
// INVARIANT (DESIGN.md, "Ack discipline"): a message is acked only when its
// outcome is done, and a stage decides done only after every output of the
// message is durable: acknowledged by JetStream, or written by the producer.
// Nothing is acked on receipt. A failed message is redelivered with a delay
// or, after its last attempt or on a permanent error, published to the DLQ
// and then terminated with the reason; a dead letter that cannot be
// published leaves the message to be redelivered.
type settler struct {
	p        dataplane.Pipeline
	stage    string
	failures *failures
	claims   *dataplane.ClaimCheck
	metrics  *pipelineMetrics
	log      *slog.Logger
	// finished counts the messages it finished (acked or dead-lettered)
	// in the counts bucket, for deliveries JetStream's consumer counters
	// cannot see (ADR 0009); nil counts nothing.
	finished *stageCount
}

// settle carries out d's outcome. It reports whether d is finished: acked
// or dead-lettered rather than coming back.
func (s *settler) settle(ctx context.Context, d *delivery) bool {
	o := d.outcome
	switch o.kind {
	case outcomeDone:
		s.ack(ctx, d)
		s.count(1)
		return true
	case outcomeRetry:
		s.nak(d, o.delay)
		return false
	case outcomeFailed:
		v := s.failures.decide(ctx, s.p, s.stage, d.msg, d.id(), o.err)
		if !v.deadLetter {
			if v.counted {
				s.metrics.retries.Inc()
				s.failures.countFailed()
			}
			s.nak(d, v.delay)
			return false
		}
		if !s.deadLetter(ctx, d, v) {
			return false
		}
		s.count(1)
		return true
	default:
		// A stage that forgot a message would leave it to its ack timer:
		// say so, and bring it back at once.
		s.log.Error("a message reached the settler without an outcome; redelivering it", "stage", s.stage, "message_id", d.id())
		s.nak(d, 0)
		return false
	}
}

// ack acknowledges a finished message and forgets its failed attempts. A
// message that owns a claim-checked body is acked with a confirmation (a
// large body makes the round trip cheap), and only then is its body
// released: a lost ack would bring the message back without its body.
func (s *settler) ack(ctx context.Context, d *delivery) {
	s.failures.succeeded(ctx, s.p, s.stage, d.msg, d.id())
	owned := d.env.Owned
	if owned == "" {
		s.counted(ackOp, d.msg.Ack())
		return
	}
	if err := d.msg.DoubleAck(ctx); err != nil {
		s.counted(ackOp, err)
		return
	}
	s.claims.Release(ctx, owned)
}

// deadLetter publishes d to the DLQ as v says, then terminates it with the
// reason. When the DLQ publish fails, d comes back later instead (at its
// last delivery, JetStream's max-deliveries advisory dead-letters it:
// advisory.go). It reports whether d was dead-lettered.
func (s *settler) deadLetter(ctx context.Context, d *delivery, v verdict) bool {
	id := d.id()
	ref, err := s.failures.deadLetter(ctx, s.p, s.stage, d.msg, d.env, id, v)
	if err != nil {
		if v.last {
			s.log.Error("cannot dead-letter a message at its last delivery", "stage", s.stage, "message_id", id, "error", err)
		} else {
			s.log.Warn("cannot dead-letter the message; redelivering", "stage", s.stage, "message_id", id, "error", err)
		}
		s.nak(d, s.failures.infraDelay(deliveriesOf(d.msg)))
		return false
	}
	s.metrics.dlq.Inc()
	if v.counted {
		s.failures.countFailed()
		_ = s.failures.state.Attempts.Delete(ctx, s.p.AttemptKey(s.stage, id))
	}
	s.log.Warn("message dead-lettered", "stage", s.stage, "message_id", id, "attempts", v.attempts, "deliveries", deliveriesOf(d.msg), "reason", v.reason)
	s.counted(termOp, d.msg.TermWithReason(termReason(v.reason)))
	// The dead letter keeps its own copy of a claim-checked body, unless
	// it had to keep the body's own reference; a reference outside the
	// tenant is never the message's to release.
	if owned := d.env.Owned; owned != "" && ref != owned && !errors.Is(v.reason, dataplane.ErrForeignRef) {
		s.claims.Release(ctx, owned)
	}
	return true
}

// nak brings d back after delay.
func (s *settler) nak(d *delivery, delay time.Duration) {
	s.counted(nakOp, d.msg.NakWithDelay(delay))
}

// extend restarts the ack timers of msgs, which waited for the producer
// while another writer held it (deliverer.go): the write then has its whole
// writeTimeout before JetStream would deliver them again.
func (s *settler) extend(msgs []*delivery) {
	for _, d := range msgs {
		s.counted(progressOp, d.msg.InProgress())
	}
}

// handOver gives d to the stage next that settles it from now on (the only
// producer's deliverer, ADR 0009): this stage's part is done, so its
// failed attempts of d are forgotten.
func (s *settler) handOver(ctx context.Context, d *delivery, next *settler) {
	s.failures.succeeded(ctx, s.p, s.stage, d.msg, d.id())
	d.settler = next
}

func (s *settler) count(n int) {
	if s.finished != nil {
		s.finished.add(n)
	}
}

// counted counts err, the answer of an ack call, in
// vrsky_ack_errors_total. The message is not touched again: JetStream
// redelivers it when its ack timer runs out, and the stage handles the
// redelivery as any other (an output already published is dropped as a
// duplicate by its Nats-Msg-Id).
func (s *settler) counted(op int, err error) {
	if err != nil {
		s.metrics.ackErrors[op].Inc()
		s.log.Debug("ack call failed", "stage", s.stage, "op", ackOps[op], "error", err)
	}
}

// The ack calls counted by vrsky_ack_errors_total, by its op label.
const (
	ackOp = iota
	nakOp
	termOp
	progressOp
)

var ackOps = [...]string{ackOp: "ack", nakOp: "nak", termOp: "term", progressOp: "progress"}

// newAckErrors is vrsky_ack_errors_total{stage,op}: the ack calls JetStream
// did not take, by stage kind ("process" or "deliver") and call. Every
// series exists from the start, at 0.
func newAckErrors() *prometheus.CounterVec {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vrsky_ack_errors_total",
		Help: "Ack calls (ack, nak, term, progress) that failed, by stage kind; the message is redelivered when its ack timer runs out.",
	}, []string{"stage", "op"})
	for _, stage := range []string{dataplane.StageProcess, stageKind(dataplane.StageDeliverPrefix)} {
		for _, op := range ackOps {
			vec.WithLabelValues(stage, op)
		}
	}
	return vec
}

// ackErrorsOf resolves the counters of stage's kind, one per op.
func ackErrorsOf(vec *prometheus.CounterVec, stage string) (c [len(ackOps)]prometheus.Counter) {
	for op, name := range ackOps {
		c[op] = vec.WithLabelValues(stageKind(stage), name)
	}
	return c
}

// maxTermReason bounds the reason sent with a Term (and so carried by
// JetStream's terminated advisory); the dead letter keeps the whole reason.
const maxTermReason = 512

// termReason is err's text cut to maxTermReason bytes on a rune boundary.
func termReason(err error) string {
	r := err.Error()
	if len(r) <= maxTermReason {
		return r
	}
	r = r[:maxTermReason]
	for len(r) > 0 && !utf8.ValidString(r) {
		r = r[:len(r)-1]
	}
	return r
}
