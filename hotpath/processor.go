package hotpath

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// step is one converter or filter of the chain.
type step struct {
	name      string
	converter sdk.Converter
	filter    sdk.Filter
}

// Chain is an integration's converters and filters, built, in order: what
// the process stage runs on every message. It is safe for concurrent use.
type Chain struct {
	steps []step
}

// Len is the number of steps.
func (c Chain) Len() int { return len(c.steps) }

// BuildChain builds the steps of a spec from catalog, each with the Env
// env returns for its name (steps[i]). It builds converters and filters
// only, which connect nowhere: the API's dry run uses it as the runner
// does.
func BuildChain(ctx context.Context, catalog *sdk.Catalog, steps []spec.Step, env func(name string) sdk.Env) (Chain, error) {
	c := Chain{steps: make([]step, 0, len(steps))}
	for i, s := range steps {
		name := fmt.Sprintf("steps[%d]", i)
		conn, ok := catalog.Lookup(s.Connector, sdk.KindConverter, sdk.KindFilter)
		if !ok {
			return Chain{}, fmt.Errorf("%s: unknown converter or filter %q", name, s.Connector)
		}
		built, err := conn.Build(ctx, env(name), s.Config)
		if err != nil {
			return Chain{}, fmt.Errorf("%s (%s): %w", name, s.Connector, err)
		}
		st := step{name: name + ":" + s.Connector}
		switch v := built.(type) {
		case sdk.Converter:
			st.converter = v
		case sdk.Filter:
			st.filter = v
		default:
			return Chain{}, fmt.Errorf("%s: connector %q is neither a converter nor a filter", name, s.Connector)
		}
		c.steps = append(c.steps, st)
	}
	return c, nil
}

// Run applies the chain to msg as the process stage does. routes is nil
// when no filter chose producers (every producer gets out); drop means the
// message is filtered out (a filter dropped it or routed it nowhere). An
// error names the step that failed.
func (c Chain) Run(ctx context.Context, msg sdk.Message) (out sdk.Message, routes []string, drop bool, err error) {
	for _, s := range c.steps {
		if s.converter != nil {
			if msg, err = s.converter.Convert(ctx, msg); err != nil {
				return msg, nil, false, fmt.Errorf("step %s: %w", s.name, err)
			}
			continue
		}
		d, err := s.filter.Filter(ctx, msg)
		if err != nil {
			return msg, nil, false, fmt.Errorf("step %s: %w", s.name, err)
		}
		if d.Drop {
			return msg, nil, true, nil
		}
		if d.Routes != nil {
			routes = d.Routes
		}
	}
	if routes != nil && len(routes) == 0 {
		return msg, nil, true, nil
	}
	return msg, routes, false, nil
}

// processor is the process stage: decode → steps (the converter/filter
// chain) → sink. Its sink publishes the results to `out.<producer>` for
// each selected producer, or, when the pipeline has one producer, hands
// them to it directly (ADR 0009).
type processor struct {
	p         Pipeline
	js        jetstream.JetStream
	chain     Chain
	producers []string
	known     map[string]bool
	claims    *ClaimCheck
	metrics   *pipelineMetrics
	settler   *settler
	// direct is the only producer's deliverer, nil when there are more;
	// directSettler settles (and counts) what it gets from here.
	direct        *deliverer
	directSettler *settler
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
	env, err := decode(pr.p, d.msg.Headers(), d.msg.Data())
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
		if err := pr.claims.resolve(ctx, &d.env); err != nil {
			if sdk.IsPermanent(err) { // the body is gone
				return failed(err)
			}
			return failed(infraFailure(err)) // blob store trouble: not the message's fault
		}
	}
	if reason := d.env.msg.Header(sdk.HeaderRecordError); reason != "" {
		return failed(sdk.Permanentf("unreadable record: %s", reason))
	}
	out, routes, drop, err := pr.chain.Run(ctx, d.env.msg)
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
		if err := waitAll(ctx, d.futures); err != nil {
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
func bodiless(env envelope) envelope {
	env.msg.Body = nil
	return env
}

// directEnvelope returns what out becomes for the only producer when it
// goes there without a second hop, and false when it takes the
// `out.<producer>` hop: when there are other producers, or when out is a new
// body too large to be dead-lettered inline (that hop claim-checks it). An
// unchanged claim-checked body keeps its reference: the deliverer fetches or
// streams it.
func (pr *processor) directEnvelope(in envelope, out sdk.Message, routes []string) (envelope, bool) {
	if pr.direct == nil || routes != nil && (len(routes) != 1 || routes[0] != pr.producers[0]) {
		return envelope{}, false
	}
	// The input's claim-checked body is the direct output's alone: it is
	// released once the output is delivered or dead-lettered.
	if in.bodyRef != "" && sameBytes(in.msg.Body, out.Body) {
		return envelope{msg: out, bodyRef: in.bodyRef, size: in.size, owned: in.bodyRef}, true
	}
	if len(out.Body) > pr.claims.threshold() {
		return envelope{}, false
	}
	return envelope{msg: out, owned: in.bodyRef}, true
}

// publish sends out to each selected producer's subject, asynchronously.
func (pr *processor) publish(ctx context.Context, in envelope, out sdk.Message, routes []string) ([]jetstream.PubAckFuture, error) {
	if routes == nil {
		routes = pr.producers
	}
	env := envelope{msg: out}
	if in.bodyRef != "" && sameBytes(in.msg.Body, out.Body) {
		env.bodyRef, env.size = in.bodyRef, in.size // unchanged body: reuse its object
	} else if len(out.Body) > pr.claims.threshold() {
		if err := pr.claims.offload(ctx, pr.p.ClaimKey(out.ID+"/out"), &env); err != nil {
			return nil, err
		}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(routes))
	for _, producer := range routes {
		if !pr.known[producer] {
			return nil, sdk.Permanentf("route to unknown producer %q", producer)
		}
		f, err := pr.js.PublishMsgAsync(encode(pr.p.OutSubject(producer), out.ID+"/"+producer, env))
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
