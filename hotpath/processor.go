package hotpath

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// processor is the process stage: decode → steps (the converter/filter
// chain) → sink. Its sink publishes the results to `out.<producer>` for
// each selected producer, or, when the pipeline has one producer, hands
// them to it directly (ADR 0009).
type processor struct {
	p         dataplane.Pipeline
	js        jetstream.JetStream
	chain     dataplane.Chain
	producers []string
	known     map[string]bool
	claims    *dataplane.ClaimCheck
	metrics   *pipelineMetrics
	settler   *settler
	// direct is the only producer's deliverer, nil when there are more;
	// directSettler settles (and counts) what it gets from here.
	direct        *deliverer
	directSettler *settler
	// taken counts the messages the stage takes (dataplane.TakenCount);
	// nil without a counts bucket.
	taken *stageCount
	// parts are decode and steps, wrapped by received and recovering.
	parts part
}

// newProcessor completes pr: its decode and steps parts.
func newProcessor(pr *processor) *processor {
	pr.parts = received(pr.metrics, recovering(func(ctx context.Context, d *delivery) outcome {
		if o := pr.decode(d); o.decided() {
			return o
		}
		return pr.runSteps(ctx, d)
	}))
	return pr
}

// handle processes one batch. Every message ends with one outcome, settled
// by settle.go: done once every output it produced is acknowledged by
// JetStream (or, delivered directly, once the producer confirmed its
// write), or at once when a filter dropped it.
func (pr *processor) handle(batch []jetstream.Msg) {
	ctx := context.Background()
	began := time.Now()
	ds, release := deliveries(len(batch))
	defer release()
	if pr.taken != nil {
		pr.taken.add(len(batch))
	}
	sink := processSink{pr: pr, pending: make([]*delivery, 0, len(batch))}
	if pr.direct != nil {
		sink.direct = pr.direct.batch()
	}
	for i, m := range batch {
		d := &ds[i]
		d.msg, d.settler = m, pr.settler
		if o := pr.parts(ctx, d); o.decided() {
			finish(ctx, d, o)
			continue
		}
		sink.put(ctx, d)
	}
	sink.awaitPublished(ctx)
	pr.metrics.latency.Observe(time.Since(began).Seconds() / float64(len(batch)))
	if sink.direct != nil {
		sink.direct.flush(ctx)
	}
}

// decode is the process stage's first part.
func (pr *processor) decode(d *delivery) outcome {
	env, err := dataplane.DecodeEnvelope(pr.p, d.msg.Headers(), d.msg.Data())
	d.env = env
	if err != nil {
		return failed(sdk.PermanentError(err))
	}
	return outcome{}
}

// runSteps is the steps part: it resolves a claim-checked body the steps
// read and runs the chain.
func (pr *processor) runSteps(ctx context.Context, d *delivery) outcome {
	// Without steps nothing reads the body: a claim-checked one stays in
	// the blob store, and its reference travels on.
	if pr.chain.Len() > 0 {
		if err := pr.claims.Resolve(ctx, &d.env); err != nil {
			if sdk.IsPermanent(err) { // the body is gone
				return failed(err)
			}
			return failed(infraFailure(err)) // blob store trouble: not the message's fault
		}
	}
	if reason := d.env.Msg.Header(sdk.HeaderRecordError); reason != "" {
		return failed(sdk.Permanentf("unreadable record: %s", reason))
	}
	out, routes, drop, err := pr.chain.Run(ctx, d.env.Msg)
	if err != nil {
		return failed(err)
	}
	if drop {
		pr.metrics.filtered.Inc()
		return filteredOut()
	}
	d.out, d.routes = out, routes
	return outcome{}
}

// processSink is the process stage's sink for one batch: it publishes
// outputs asynchronously and waits for their acknowledgements at the end
// of the batch, and hands what goes to the only producer to its deliverer.
type processSink struct {
	pr      *processor
	pending []*delivery
	direct  *producerBatch
}

// put takes d's output toward its producers.
func (s *processSink) put(ctx context.Context, d *delivery) {
	pr := s.pr
	if target, ok := pr.directEnvelope(d.env, d.out, d.routes); ok {
		pr.settler.handOver(ctx, d, pr.directSettler)
		pr.metrics.out.Inc()
		d.env = target
		s.direct.put(ctx, d)
		return
	}
	var futures []jetstream.PubAckFuture
	err := recovered(func() (err error) {
		futures, err = pr.publish(ctx, d.env, d.out, d.routes)
		return err
	})
	if err != nil {
		if !sdk.IsPermanent(err) && !isPanic(err) { // NATS or blob store trouble
			d.env, err = bodiless(d.env), infraFailure(err)
		}
		finish(ctx, d, failed(err))
		return
	}
	// A dead letter at its last delivery keeps the stored data.
	d.env, d.futures = bodiless(d.env), futures
	s.pending = append(s.pending, d)
}

// awaitPublished waits for the publish acknowledgements of the batch's
// outputs: a message is done once all of its outputs are durable.
func (s *processSink) awaitPublished(ctx context.Context) {
	for _, d := range s.pending {
		if err := dataplane.WaitAll(ctx, d.futures); err != nil {
			// NATS trouble: redeliver later without counting an attempt.
			finish(ctx, d, failed(infraFailure(err)))
			continue
		}
		finish(ctx, d, done())
		s.pr.metrics.out.Inc()
	}
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
