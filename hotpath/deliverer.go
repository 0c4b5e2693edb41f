package hotpath

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// writeTimeout bounds one producer write; it stays below the consumer's ack
// wait so a slow write is not redelivered while it is still running.
const writeTimeout = 25 * time.Second

// deliverer feeds one producer from its `out.<producer>` subject.
type deliverer struct {
	p        Pipeline
	stage    string
	producer sdk.Producer
	claims   *ClaimCheck
	failures *failures
	metrics  *pipelineMetrics
	log      *slog.Logger
}

// handle writes one batch. INVARIANT: a message is acked only after the
// producer confirmed its write; this is the only place the deliver stage
// acks.
func (d *deliverer) handle(batch []jetstream.Msg) {
	ctx := context.Background()
	began := time.Now()
	msgs := make([]jetstream.Msg, 0, len(batch))
	envs := make([]envelope, 0, len(batch))
	for _, m := range batch {
		d.metrics.in.Inc()
		env, err := decode(d.p, m.Headers(), m.Data())
		if err != nil {
			d.failures.fail(ctx, d.p, d.stage, m, env, sdk.PermanentError(err))
			continue
		}
		if env.bodyRef != "" {
			if err := d.claims.resolve(ctx, &env); err != nil {
				_ = m.NakWithDelay(time.Second) // blob store trouble: not counted
				continue
			}
			d.metrics.claimBytes.Add(float64(len(env.msg.Body)))
		}
		d.metrics.bytes.Add(float64(len(env.msg.Body)))
		msgs = append(msgs, m)
		envs = append(envs, env)
	}
	if len(msgs) == 0 {
		return
	}
	out := make([]sdk.Message, len(envs))
	for i := range envs {
		out[i] = envs[i].msg
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err := d.producer.Write(wctx, out)
	cancel()

	var batchErr *sdk.BatchError
	switch {
	case err == nil:
	case errors.As(err, &batchErr):
	default:
		d.log.Warn("producer write failed", "stage", d.stage, "messages", len(msgs), "err", err)
	}
	now := time.Now()
	for i, m := range msgs {
		failure := err
		if batchErr != nil {
			failure = batchErr.Failed[i]
		}
		if failure != nil {
			d.failures.fail(ctx, d.p, d.stage, m, envs[i], failure)
			continue
		}
		d.failures.succeeded(ctx, d.p, d.stage, m, envs[i].msg.ID)
		_ = m.Ack()
		d.metrics.out.Inc()
		if !envs[i].msg.Received.IsZero() {
			d.metrics.endToEnd.Observe(now.Sub(envs[i].msg.Received).Seconds())
		}
	}
	d.metrics.latency.Observe(time.Since(began).Seconds() / float64(len(msgs)))
}
