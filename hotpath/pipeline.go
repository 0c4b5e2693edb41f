package hotpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// Stage sizing.
const (
	processWorkers = 2
	maxBatch       = 256
	stageBuffer    = 2048
)

// pipeline is one running integration in this runner.
type pipeline struct {
	desired   dataplane.Desired
	stages    []*stage
	producers []sdk.Producer
	// counts are the pipeline's counts kept in the counts bucket.
	counts *tally
	// source is true when the pipeline runs its consumer: only at the
	// location its tenant's messages are written to.
	source bool
	// lag is the pipeline's place in its runner's lag loop, stopWatching
	// ends its share of the max-deliveries advisories.
	lag          *lagSource
	stopWatching func()
	// cancel stops the background work: the consumer.
	cancel     context.CancelFunc
	background sync.WaitGroup
}

// deps are what a pipeline needs from its runner.
type deps struct {
	// js is the pipeline's tenant's JetStream; state is the platform's.
	js      jetstream.JetStream
	state   *dataplane.State
	catalog *sdk.Catalog
	tenancy sdk.Tenancy
	claims  *dataplane.ClaimCheck
	metrics *Metrics
	backoff func(failedAttempts int) time.Duration
	// infraBackoff is InfraBackoff unless a test shortens it.
	infraBackoff func(deliveries int) time.Duration
	fileRoot     string
	log          *slog.Logger
	pub          *dataplane.Publisher
	// leases holds singleton-consumer leases; runnerName is the holder.
	leases       jetstream.KeyValue
	runnerName   string
	leaseRefresh time.Duration
	// shared is the runner's background work for all its pipelines: the
	// lag loop, the counts flusher, the advisory subscriptions.
	shared *runnerWork
}

// failures returns the failure handling of a stage with metrics m.
func (d deps) failures(m *pipelineMetrics, log *slog.Logger) *failures {
	return &failures{js: d.js, state: d.state, claims: d.claims, metrics: m, log: log, backoff: d.backoff, infraBackoff: d.infraBackoff}
}

// tenantEnv is the connector environment of p's tenant, completed by the
// platform's Tenancy.
func (d deps) tenantEnv(ctx context.Context, p dataplane.Pipeline, root string) (sdk.Env, error) {
	env := sdk.Env{Tenant: p.Tenant, Integration: p.Integration, FileRoot: root}
	if d.tenancy != nil {
		if err := d.tenancy.Complete(ctx, &env); err != nil {
			return sdk.Env{}, fmt.Errorf("tenant %s: %w", p.Tenant, err)
		}
	}
	return env, nil
}

// startPipeline creates the streams and consumers, builds every connector and
// starts the stages; the integration's consumer only with source (not at a
// location its tenant is moving away from). On error nothing is left
// running.
func startPipeline(ctx context.Context, d deps, want dataplane.Desired, source bool) (_ *pipeline, err error) {
	p := want.Pipeline()
	log := d.log.With("tenant", p.Tenant, "integration", p.Integration)
	pl := &pipeline{desired: want, source: source}
	defer func() {
		if err != nil {
			pl.stop()
		}
	}()
	stream, err := dataplane.EnsureStreams(ctx, d.js, p)
	if err != nil {
		return nil, err
	}
	root := ""
	if d.fileRoot != "" {
		root = filepath.Join(d.fileRoot, p.Tenant)
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, fmt.Errorf("create the tenant's file root: %w", err)
		}
	}
	base, err := d.tenantEnv(ctx, p, root)
	if err != nil {
		return nil, err
	}
	env := func(name string) sdk.Env {
		e := base
		e.Name, e.Logger = name, log.With("stage", name)
		return e
	}

	chain, err := dataplane.BuildChain(ctx, d.catalog, want.Spec.Steps, env)
	if err != nil {
		return nil, err
	}

	producerNames := want.Spec.ProducerNames()
	type builtProducer struct {
		name string
		prod sdk.Producer
	}
	producers := make([]builtProducer, 0, len(producerNames))
	for _, name := range producerNames {
		s := want.Spec.Producers[name]
		conn, ok := d.catalog.Lookup(s.Connector, sdk.KindProducer)
		if !ok {
			return nil, fmt.Errorf("producers.%s: unknown producer %q", name, s.Connector)
		}
		built, err := conn.Build(ctx, env(name), s.Config)
		if err != nil {
			return nil, fmt.Errorf("producers.%s (%s): %w", name, s.Connector, err)
		}
		prod, ok := built.(sdk.Producer)
		if !ok {
			return nil, fmt.Errorf("producers.%s: connector %q is not a producer", name, s.Connector)
		}
		pl.producers = append(pl.producers, prod)
		producers = append(producers, builtProducer{name, prod})
	}

	var consumer sdk.Consumer
	if c := want.Spec.Consumer.Connector; source && !isIngress(d.catalog, c) { // the API's ingress serves those, not a runner
		conn, ok := d.catalog.Lookup(c, sdk.KindConsumer)
		if !ok {
			return nil, fmt.Errorf("consumer: unknown consumer %q", c)
		}
		built, err := conn.Build(ctx, env("consumer"), want.Spec.Consumer.Config)
		if err != nil {
			return nil, fmt.Errorf("consumer (%s): %w", c, err)
		}
		if consumer, ok = built.(sdk.Consumer); !ok {
			return nil, fmt.Errorf("consumer: connector %q is not a consumer", c)
		}
	}

	// failed counts the pipeline's failed attempts, latencies its
	// deliveries' end-to-end latencies, for the metrics history.
	var counts jetstream.KeyValue
	if d.state != nil {
		counts = d.state.Counts
	}
	if counts != nil {
		pl.counts = newTally(counts, d.shared.counts)
	}
	failed := pl.counts.stage(p.CountKey(dataplane.FailuresCount))
	latencies := pl.counts.latency(p.CountKey(dataplane.LatencyCount))
	stageFailures := func(m *pipelineMetrics) *failures {
		f := d.failures(m, log)
		f.failed = failed
		return f
	}

	stageSettler := func(stage string, m *pipelineMetrics) *settler {
		return &settler{p: p, stage: stage, failures: stageFailures(m), claims: d.claims, metrics: m, log: log}
	}

	// Every stage parks when idle, and a message published to its subject
	// wakes it (park.go, ADR 0029); its consumer then rests, with what it
	// finished recorded (ADR 0032).
	wakeOn := func(subject string) *stageWake {
		w := &stageWake{watch: d.shared.wakes, nc: d.js.Conn(), subject: subject}
		if counts != nil {
			w.record = func(ctx context.Context, info *jetstream.ConsumerInfo) error {
				return dataplane.RecordRest(ctx, counts, p, info)
			}
		}
		return w
	}

	// Delivery first, so processed messages find their consumers.
	var deliverers []*deliverer
	for _, bp := range producers {
		stageName := dataplane.DeliverStage(bp.name)
		src, err := openStage(ctx, stream, stageName, p.OutSubject(bp.name), stageBuffer, wakeOn(p.OutSubject(bp.name)), log.With("stage", stageName))
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", stageName, err)
		}
		m := d.metrics.forStage(p, stageName)
		m.latencies = latencies
		dl := &deliverer{p: p, stage: stageName, producer: bp.prod, claims: d.claims, metrics: m, log: log, settler: stageSettler(stageName, m)}
		pl.stages = append(pl.stages, runStage(src, 1, maxBatch, dl.handle))
		deliverers = append(deliverers, dl)
	}
	known := make(map[string]bool, len(producerNames))
	for _, n := range producerNames {
		known[n] = true
	}
	if err := deleteStaleConsumers(ctx, stream, counts, p, producerNames); err != nil {
		return nil, err
	}
	src, err := openStage(ctx, stream, dataplane.StageProcess, p.InSubject(), stageBuffer, wakeOn(p.InSubject()), log.With("stage", dataplane.StageProcess))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", dataplane.StageProcess, err)
	}
	m := d.metrics.forStage(p, dataplane.StageProcess)
	pr := newProcessor(&processor{p: p, js: d.js, chain: chain, producers: producerNames, known: known,
		claims: d.claims, metrics: m, settler: stageSettler(dataplane.StageProcess, m),
		taken: pl.counts.stage(p.CountKey(dataplane.TakenCount))})
	if len(deliverers) == 1 {
		// What the process stage delivers directly is settled by the
		// deliver stage's rules and counted in the counts bucket.
		direct := *deliverers[0].settler
		direct.finished = pl.counts.stage(p.CountKey(deliverers[0].stage))
		pr.direct, pr.directSettler = deliverers[0], &direct
	}
	pl.stages = append(pl.stages, runStage(src, processWorkers, maxBatch, pr.handle))

	if pl.stopWatching, err = watchMaxDeliveries(d, p, stream, log); err != nil {
		return nil, err
	}
	pl.lag = d.shared.lag.add(d.js, stream, p, pl.stageNames(), pl.moved, pl.unpark)
	bg, cancel := context.WithCancel(context.Background())
	pl.cancel = cancel
	if consumer != nil {
		// A consumer reads a singleton source: only the lease holder runs it
		// (continuously, or once per run request when it is scheduled).
		work, err := consumerWork(d, want, consumer, log)
		if err != nil {
			return nil, fmt.Errorf("consumer: %w", err)
		}
		pl.background.Go(func() {
			holdLease(bg, d.leases, p.Key(), d.runnerName, d.leaseRefresh, work)
		})
	}
	return pl, nil
}

// stop stops taking messages in, lets every stage finish and ack what it
// holds, and closes the producers.
func (pl *pipeline) stop() {
	if pl.cancel != nil {
		pl.cancel()
	}
	pl.lag.stop()
	if pl.stopWatching != nil {
		pl.stopWatching()
	}
	pl.background.Wait()
	// The process stage is last in the list: stop it first so that what
	// it publishes is still delivered by the running delivery stages.
	for i := len(pl.stages) - 1; i >= 0; i-- {
		pl.stages[i].stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pl.counts.detach()
	_ = pl.counts.flush(ctx) // what the stages finished while stopping
	for _, prod := range pl.producers {
		_ = prod.Close(ctx)
	}
}

// deleteStaleConsumers removes delivery consumers of producers no longer in
// the spec, so their subjects stop holding messages, and forgets their
// stages' rests in counts (nil: none are recorded).
func deleteStaleConsumers(ctx context.Context, stream jetstream.Stream, counts jetstream.KeyValue, p dataplane.Pipeline, producers []string) error {
	keep := map[string]bool{dataplane.StageProcess: true}
	for _, n := range producers {
		keep[dataplane.DeliverStage(n)] = true
	}
	if counts != nil {
		if err := dataplane.ForgetRests(ctx, counts, p, func(stage string) bool { return keep[stage] }); err != nil {
			return err
		}
	}
	names := stream.ConsumerNames(ctx)
	var stale []string
	for name := range names.Name() {
		if !keep[name] {
			stale = append(stale, name)
		}
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return fmt.Errorf("list consumers: %w", err)
	}
	for _, name := range stale {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s: %w", name, err)
		}
	}
	return nil
}

// runConsumer runs a consumer connector until ctx ends, restarting it with
// backoff when it fails.
func runConsumer(ctx context.Context, c sdk.Consumer, sink sdk.Sink, log *slog.Logger) {
	delay := time.Second
	for ctx.Err() == nil {
		err := c.Run(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		log.Warn("consumer stopped; restarting", "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Minute)
	}
}

// pipelineSink is the sdk.Sink handed to a pipeline's consumer.
type pipelineSink struct {
	pub *dataplane.Publisher
	p   dataplane.Pipeline
}

func sinkFor(pub *dataplane.Publisher, p dataplane.Pipeline) sdk.Sink {
	return pipelineSink{pub: pub, p: p}
}

func (s pipelineSink) Publish(ctx context.Context, msgs []sdk.Message) error {
	for i := range msgs {
		msgs[i].Tenant, msgs[i].Integration = s.p.Tenant, s.p.Integration
	}
	return s.pub.Publish(ctx, s.p, msgs)
}

// sourceLagInterval is how often a consumer's own lag (sdk.LagReporter) is
// read: each read may cost the source a query.
const sourceLagInterval = 15 * time.Second

// sourceLagRetry is how soon a failed read of a consumer's lag is tried
// again.
const sourceLagRetry = 2 * time.Second

// reportSourceLag keeps p's vrsky_cdc_slot_lag_bytes current until ctx ends,
// then removes it: another runner may take the consumer over.
func reportSourceLag(ctx context.Context, c sdk.LagReporter, metrics *Metrics, p dataplane.Pipeline) {
	gauge := metrics.sourceLag.WithLabelValues(p.Tenant, p.Integration)
	defer metrics.sourceLag.DeleteLabelValues(p.Tenant, p.Integration)
	for {
		readCtx, cancel := context.WithTimeout(ctx, sourceLagInterval)
		lag, err := c.Lag(readCtx)
		cancel()
		next := sourceLagInterval
		if err == nil {
			gauge.Set(float64(lag))
		} else {
			// Not there yet (a slot being created) or a hiccup: soon again.
			next = sourceLagRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// moved reports whether any of pl's stages received a message since the
// last call, or parked recently: a wake-up it missed is then found on the
// lag loop's next pass for moving pipelines, not its next idle one.
func (pl *pipeline) moved() bool {
	any, now := false, time.Now()
	for _, s := range pl.stages {
		any = s.src.moved.Swap(false) || s.src.parkedRecently(now) || any
	}
	return any
}

// stageNames returns the names of pl's stages, which are their consumers'.
func (pl *pipeline) stageNames() []string {
	names := make([]string, len(pl.stages))
	for i, s := range pl.stages {
		names[i] = s.src.revive.config.Durable
	}
	return names
}

// unpark makes the parked stage pulling from consumer pull again.
func (pl *pipeline) unpark(consumer string) {
	for _, s := range pl.stages {
		if s.src.revive.config.Durable == consumer && s.src.parked() {
			s.src.unpark()
		}
	}
}
