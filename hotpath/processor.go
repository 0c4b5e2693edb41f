package hotpath

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// processor runs the converter/filter chain on messages from `in` and
// publishes the results to `out.<producer>` for each selected producer, or,
// when the pipeline has one producer, hands them to it directly (ADR 0009).
type processor struct {
	p         dataplane.Pipeline
	js        jetstream.JetStream
	chain     dataplane.Chain
	producers []string
	known     map[string]bool
	claims    *dataplane.ClaimCheck
	failures  *failures
	metrics   *pipelineMetrics
	// direct is the only producer's deliverer, nil when there are more;
	// directCount counts what it finished.
	direct      *deliverer
	directCount *stageCount
}

// pendingInput is an input message waiting for its outputs' publish acks.
type pendingInput struct {
	m  jetstream.Msg
	id string
	// env is the input without its body, for a dead letter at its last
	// delivery (which then keeps the stored data).
	env     dataplane.Envelope
	futures []jetstream.PubAckFuture
}

// handle processes one batch. INVARIANT: an input is acked only after every
// output it produced is acknowledged by JetStream, or, delivered directly,
// once the producer confirmed its write (the deliverer acks it then); a
// filtered input (no outputs) is acked at once. This is the only place the
// process stage acks.
func (pr *processor) handle(batch []jetstream.Msg) {
	ctx := context.Background()
	began := time.Now()
	pending := make([]pendingInput, 0, len(batch))
	var (
		directMsgs []jetstream.Msg
		direct     []dataplane.Envelope
		// directBytes are the bodies direct holds: they are delivered
		// before they exceed maxBatchBytes, so that a batch of large
		// claim-checked bodies is never in memory all at once.
		directBytes int64
	)
	for _, m := range batch {
		pr.metrics.in.Inc()
		pr.metrics.bytes.Add(float64(len(m.Data())))
		env, err := dataplane.DecodeEnvelope(pr.p, m.Headers(), m.Data())
		if err != nil {
			pr.failures.fail(ctx, pr.p, dataplane.StageProcess, m, env, sdk.PermanentError(err))
			continue
		}
		// Without steps nothing reads the body: a claim-checked one stays
		// in the blob store, and its reference travels on.
		if pr.chain.Len() > 0 {
			if err := pr.claims.Resolve(ctx, &env); err != nil {
				if sdk.IsPermanent(err) { // the body is gone
					pr.failures.fail(ctx, pr.p, dataplane.StageProcess, m, env, err)
				} else { // blob store trouble: not the message's fault
					pr.failures.infraFailed(ctx, pr.p, dataplane.StageProcess, m, env, err)
				}
				continue
			}
		}
		if reason := env.Msg.Header(sdk.HeaderRecordError); reason != "" {
			pr.failures.fail(ctx, pr.p, dataplane.StageProcess, m, env, sdk.Permanentf("unreadable record: %s", reason))
			continue
		}
		out, routes, drop, err := pr.chain.Run(ctx, env.Msg)
		if err != nil {
			pr.failures.fail(ctx, pr.p, dataplane.StageProcess, m, env, err)
			continue
		}
		if drop {
			pr.metrics.filtered.Inc()
			pr.failures.succeeded(ctx, pr.p, dataplane.StageProcess, m, env.Msg.ID)
			_ = m.Ack()
			continue
		}
		if target, ok := pr.directEnvelope(env, out, routes); ok {
			size := int64(len(target.Msg.Body))
			if len(direct) > 0 && directBytes+size > maxBatchBytes {
				pr.deliverDirect(ctx, directMsgs, direct)
				directMsgs, direct, directBytes = directMsgs[:0], direct[:0], 0
			}
			directMsgs, direct = append(directMsgs, m), append(direct, target)
			directBytes += size
			continue
		}
		futures, err := pr.publish(ctx, env, out, routes)
		if err != nil {
			if sdk.IsPermanent(err) {
				pr.failures.fail(ctx, pr.p, dataplane.StageProcess, m, env, err)
			} else {
				pr.failures.infraFailed(ctx, pr.p, dataplane.StageProcess, m, bodiless(env), err)
			}
			continue
		}
		pending = append(pending, pendingInput{m: m, id: env.Msg.ID, env: bodiless(env), futures: futures})
	}
	for _, in := range pending {
		if err := dataplane.WaitAll(ctx, in.futures); err != nil {
			// NATS trouble: redeliver later without counting an attempt.
			pr.failures.infraFailed(ctx, pr.p, dataplane.StageProcess, in.m, in.env, err)
			continue
		}
		pr.failures.succeeded(ctx, pr.p, dataplane.StageProcess, in.m, in.id)
		_ = in.m.Ack()
		pr.metrics.out.Inc()
	}
	pr.metrics.latency.Observe(time.Since(began).Seconds() / float64(len(batch)))
	pr.deliverDirect(ctx, directMsgs, direct)
}

// deliverDirect hands processed inputs to the only producer's deliverer,
// which acks (or fails) them itself.
func (pr *processor) deliverDirect(ctx context.Context, msgs []jetstream.Msg, envs []dataplane.Envelope) {
	if len(msgs) == 0 {
		return
	}
	for i, m := range msgs {
		pr.failures.succeeded(ctx, pr.p, dataplane.StageProcess, m, envs[i].Msg.ID)
		pr.metrics.out.Inc()
	}
	pr.directCount.add(pr.direct.deliver(ctx, msgs, envs))
}

// bodiless is env without its body: what a dead letter needs besides the
// stored data.
func bodiless(env dataplane.Envelope) dataplane.Envelope {
	env.Msg.Body = nil
	return env
}

// directEnvelope returns what out becomes for the only producer when it
// goes there without a second hop, and false when it takes the
// `out.<producer>` hop: when there are other producers, or when out is a new
// body too large to be dead-lettered inline (that hop claim-checks it). An
// unchanged claim-checked body keeps its reference: the deliverer fetches or
// streams it.
func (pr *processor) directEnvelope(in dataplane.Envelope, out sdk.Message, routes []string) (dataplane.Envelope, bool) {
	if pr.direct == nil || routes != nil && (len(routes) != 1 || routes[0] != pr.producers[0]) {
		return dataplane.Envelope{}, false
	}
	// The input's claim-checked body is the direct output's alone: it is
	// released once the output is delivered or dead-lettered.
	if in.BodyRef != "" && sameBytes(in.Msg.Body, out.Body) {
		return dataplane.Envelope{Msg: out, BodyRef: in.BodyRef, Size: in.Size, Owned: in.BodyRef}, true
	}
	if len(out.Body) > pr.claims.ThresholdOrDefault() {
		return dataplane.Envelope{}, false
	}
	return dataplane.Envelope{Msg: out, Owned: in.BodyRef}, true
}

// publish sends out to each selected producer's subject, asynchronously.
func (pr *processor) publish(ctx context.Context, in dataplane.Envelope, out sdk.Message, routes []string) ([]jetstream.PubAckFuture, error) {
	if routes == nil {
		routes = pr.producers
	}
	env := dataplane.Envelope{Msg: out}
	if in.BodyRef != "" && sameBytes(in.Msg.Body, out.Body) {
		env.BodyRef, env.Size = in.BodyRef, in.Size // unchanged body: reuse its object
	} else if len(out.Body) > pr.claims.ThresholdOrDefault() {
		if err := pr.claims.Offload(ctx, pr.p.ClaimKey(out.ID+"/out"), &env); err != nil {
			return nil, err
		}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(routes))
	for _, producer := range routes {
		if !pr.known[producer] {
			return nil, sdk.Permanentf("route to unknown producer %q", producer)
		}
		f, err := pr.js.PublishMsgAsync(dataplane.Encode(pr.p.OutSubject(producer), out.ID+"/"+producer, env))
		if err != nil {
			return nil, fmt.Errorf("publish to %s: %w", producer, err)
		}
		futures = append(futures, f)
	}
	return futures, nil
}

// sameBytes reports whether a and b are the same slice (not just equal).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
