package hotpath

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

// idleRunner starts pipelines the way a runner does (startPipeline with the
// runner's shared work), on a private JetStream, without the reconcile
// loop, so that a test sees exactly what one pipeline costs.
type idleRunner struct {
	t      *testing.T
	nc     *nats.Conn
	js     jetstream.JetStream
	d      deps
	tenant string
	out    *recorder
	// stopped are the pipelines the test stopped itself.
	stopped map[*pipeline]bool
}

func newIdleRunner(t *testing.T) *idleRunner {
	t.Helper()
	nc, js := testenv.JetStream(t)
	ctx := context.Background()
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	out := newRecorder()
	catalog := sdk.NewCatalog(ingressStub,
		sdk.Connector{Name: "upper", Kind: sdk.KindConverter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return upper{}, nil }},
		sdk.Connector{Name: "rec-out", Kind: sdk.KindProducer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return out, nil }},
	)
	// The runner's shared work, but for the lag loop's ticker: the tests
	// make its passes themselves.
	flushing, stopFlushing := context.WithCancel(ctx)
	shared := &runnerWork{
		lag:        newLagLoop(NewMetrics(prometheus.NewPedanticRegistry())),
		counts:     newCountsFlusher(countsFlushInterval),
		advisories: newAdvisoryWatch(),
		wakes:      newWakeWatch(),
		cancel:     stopFlushing,
	}
	shared.done.Go(func() { shared.counts.run(flushing) })
	shared.done.Go(func() { shared.wakes.run(flushing) })
	t.Cleanup(shared.stop)
	d := deps{
		js: js, state: state, catalog: catalog, metrics: shared.lag.metrics, shared: shared,
		backoff: func(int) time.Duration { return 100 * time.Millisecond },
		log:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	return &idleRunner{t: t, nc: nc, js: js, d: d, tenant: "t" + testenv.RandomID(6), out: out, stopped: map[*pipeline]bool{}}
}

// start starts an integration webhook → upper → out and returns it.
func (r *idleRunner) start(name string) (*pipeline, dataplane.Pipeline) {
	r.t.Helper()
	want := dataplane.Desired{Tenant: r.tenant, Integration: name, Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: name, Consumer: spec.Step{Connector: dataplane.WebhookConnector},
			Steps: []spec.Step{{Connector: "upper"}}, Producers: map[string]spec.Step{"out": {Connector: "rec-out"}}}}
	pl, err := startPipeline(context.Background(), r.d, want, true)
	require.NoError(r.t, err)
	r.t.Cleanup(func() {
		if !r.stopped[pl] {
			pl.stop()
		}
	})
	return pl, want.Pipeline()
}

// stop stops pl, once.
func (r *idleRunner) stop(pl *pipeline) {
	r.stopped[pl] = true
	pl.stop()
}

// steadyGoroutines is the number of the runner's goroutines (the NATS
// server running in the test process has its own, per stream and per
// consumer) once the transient ones (a lag pass's readers, a flush) are
// gone: the least of a few samples.
func steadyGoroutines() int {
	least := runnerGoroutines()
	for range 20 {
		time.Sleep(25 * time.Millisecond)
		least = min(least, runnerGoroutines())
	}
	return least
}

// runnerGoroutines counts the goroutines but the NATS server's.
func runnerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "nats-server/v2/server.") {
			count++
		}
	}
	return count
}

// TestIdlePipelinesHaveNoBackgroundGoroutines: a deployed integration
// costs its stages' goroutines and nothing more. Lag reading, counts
// flushing and max-deliveries watching are the runner's, shared by all
// its pipelines; a goroutine per pipeline for any of them shows here.
func TestIdlePipelinesHaveNoBackgroundGoroutines(t *testing.T) {
	r := newIdleRunner(t)
	r.start("warm-up") // the tenant's shared subscription, the connection's own
	const n = 20
	before := steadyGoroutines()
	pls := make([]*pipeline, n)
	for i := range n {
		pls[i], _ = r.start(fmt.Sprintf("idle-%d", i))
	}
	after := steadyGoroutines()
	perPipeline := float64(after-before) / n
	// What the stages of one pipeline cost (a process and a deliver stage):
	// their workers, and each stage's pull consumer (its subscription, its
	// pulls).
	stages := stageGoroutines(t, pls[0])
	t.Logf("goroutines: %d before, %d after %d pipelines: %.2f per pipeline, of which %d its stages'", before, after, n, perPipeline, stages)
	require.LessOrEqual(t, perPipeline, float64(stages)+0.5, "an idle pipeline runs no goroutine besides its stages'")

	for _, pl := range pls {
		r.stop(pl)
	}
	require.LessOrEqual(t, steadyGoroutines(), before, "stopped pipelines leave no goroutine behind")
}

// TestParkedStagesHoldNoGoroutine: the stages of new integrations start
// parked; once woken they pull, and once they park again their pulls'
// goroutines are gone.
func TestParkedStagesHoldNoGoroutine(t *testing.T) {
	shortIdle(t, 200*time.Millisecond)
	r := newIdleRunner(t)
	r.start("warm-up")
	const n = 20
	pls := make([]*pipeline, n)
	for i := range n {
		pls[i], _ = r.start(fmt.Sprintf("parking-%d", i))
	}
	for _, pl := range pls {
		for _, s := range pl.stages {
			require.True(t, s.src.parked(), "a new integration's stages start parked")
			s.src.unpark()
		}
	}
	require.Eventually(t, func() bool {
		for _, pl := range pls {
			for _, s := range pl.stages {
				if s.src.parked() {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "woken, they make their consumers and pull")
	pulling := steadyGoroutines()
	time.Sleep(250 * time.Millisecond)
	idleStages.restIdle(time.Now())
	for _, pl := range pls {
		require.True(t, pl.stages[0].src.parked(), "the deliver stage parks")
		require.True(t, pl.stages[1].src.parked(), "the process stage parks")
	}
	parked := steadyGoroutines()
	perPull := float64(pulling-parked) / (2 * n)
	t.Logf("goroutines: %d with every stage pulling, %d with every stage parked: %.2f per parked stage", pulling, parked, perPull)
	require.GreaterOrEqual(t, perPull, 2.5, "a parked stage's pull and its goroutines are gone")
}

// stageGoroutines counts the goroutines pl's stages run: stopping them ends
// exactly those.
func stageGoroutines(t *testing.T, pl *pipeline) int {
	t.Helper()
	before := steadyGoroutines()
	for i := len(pl.stages) - 1; i >= 0; i-- {
		pl.stages[i].stop()
	}
	pl.stages = nil
	return before - steadyGoroutines()
}

// deadLetters returns the tenant's dead letters by message ID.
func (r *idleRunner) deadLetters() map[string]dataplane.DeadLetter {
	r.t.Helper()
	ctx := context.Background()
	stream, err := r.js.Stream(ctx, dataplane.DLQStream(r.tenant))
	require.NoError(r.t, err)
	info, err := stream.Info(ctx)
	require.NoError(r.t, err)
	out := map[string]dataplane.DeadLetter{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if raw, err := stream.GetMsg(ctx, seq); err == nil {
			d := dataplane.DeadLetterOf(r.tenant, raw)
			out[d.MessageID] = d
		}
	}
	return out
}

// strand makes JetStream give up on a message of p: a stage whose
// deliveries are never settled, with a MaxDeliver of 2, takes it three
// times, as runners dying each time would.
func (r *idleRunner) strand(p dataplane.Pipeline, id string) {
	r.t.Helper()
	ctx := context.Background()
	stream, err := r.js.Stream(ctx, p.Stream())
	require.NoError(r.t, err)
	c, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: dataplane.DeliverStage("crashes"), FilterSubject: p.OutSubject("crashes"),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxDeliver: 2,
	})
	require.NoError(r.t, err)
	_, err = r.js.PublishMsg(ctx, dataplane.Encode(p.OutSubject("crashes"), id, dataplane.Envelope{Msg: sdk.Message{ID: id, Body: []byte("x")}}))
	require.NoError(r.t, err)
	for range 3 {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
		require.NoError(r.t, err)
		for range batch.Messages() {
		}
	}
}

func (r *idleRunner) streamMsgs(p dataplane.Pipeline) uint64 {
	stream, err := r.js.Stream(context.Background(), p.Stream())
	require.NoError(r.t, err)
	info, err := stream.Info(context.Background())
	require.NoError(r.t, err)
	return info.State.Msgs
}

// TestPipelinesOfATenantShareOneAdvisorySubscription: the pipelines of a
// tenant on one connection share one subscription to the max-deliveries
// advisories; each stranded message is dead-lettered by its own pipeline
// (its stream, its stage, its subject), and the subscription goes with the
// last pipeline.
func TestPipelinesOfATenantShareOneAdvisorySubscription(t *testing.T) {
	r := newIdleRunner(t)
	advisories := r.d.shared.advisories
	subsBefore := r.nc.NumSubscriptions()
	a, pa := r.start("a")
	require.Equal(t, 1, advisories.subscriptions())
	b, pb := r.start("b")
	require.Equal(t, 1, advisories.subscriptions(), "one subscription for the tenant's connection")

	r.strand(pb, "lost-b")
	r.strand(pa, "lost-a")
	var dead map[string]dataplane.DeadLetter
	require.Eventually(t, func() bool {
		dead = r.deadLetters()
		return len(dead) == 2
	}, 10*time.Second, 20*time.Millisecond)
	for p, id := range map[dataplane.Pipeline]string{pa: "lost-a", pb: "lost-b"} {
		d := dead[id]
		require.Equal(t, p.Integration, d.Integration, id)
		require.Equal(t, p.OutSubject("crashes"), d.Subject, id)
		require.Equal(t, dataplane.DeliverStage("crashes"), d.Stage, id)
		require.Contains(t, d.Reason, "JetStream stopped delivering the message after 2 deliveries", id)
		require.Eventually(t, func() bool { return r.streamMsgs(p) == 0 }, 5*time.Second, 20*time.Millisecond, "removed from %s's work queue", p)
	}

	r.stop(a)
	require.Equal(t, 1, advisories.subscriptions(), "b still watches")
	r.strand(pb, "lost-b2")
	require.Eventually(t, func() bool { _, ok := r.deadLetters()["lost-b2"]; return ok }, 10*time.Second, 20*time.Millisecond)
	r.stop(b)
	require.Zero(t, advisories.subscriptions(), "the last pipeline takes the subscription with it")
	require.Equal(t, subsBefore, r.nc.NumSubscriptions(), "nothing subscribed is left on the connection")
}

// TestAdvisorySubscriptionsAreKeyedByConnection: a tenant consumed at two
// locations (a move) has a subscription on each connection, and each
// hands an advisory to the pipeline watching its stream on that
// connection only. Malformed, oversize and foreign advisories are ignored.
func TestAdvisorySubscriptionsAreKeyedByConnection(t *testing.T) {
	url := testenv.NATS(t)
	connect := func() *nats.Conn {
		nc, err := nats.Connect(url)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	shared, dedicated, publisher := connect(), connect(), connect()
	w := newAdvisoryWatch()
	var mu sync.Mutex
	got := map[string][]uint64{}
	handler := func(where string) func(maxDeliveriesAdvisory) {
		return func(adv maxDeliveriesAdvisory) {
			mu.Lock()
			defer mu.Unlock()
			got[where] = append(got[where], adv.StreamSeq)
		}
	}
	stopShared, err := w.watch(shared, "VRSKY_acme_orders", handler("shared"))
	require.NoError(t, err)
	stopDedicated, err := w.watch(dedicated, "VRSKY_acme_orders", handler("dedicated"))
	require.NoError(t, err)
	stopOther, err := w.watch(dedicated, "VRSKY_acme_invoices", handler("invoices"))
	require.NoError(t, err)
	require.Equal(t, 2, w.subscriptions(), "one per connection")
	require.NoError(t, shared.Flush())
	require.NoError(t, dedicated.Flush())

	advisory := func(stream string, seq uint64) []byte {
		b, _ := json.Marshal(maxDeliveriesAdvisory{Stream: stream, Consumer: "deliver-out", StreamSeq: seq, Deliveries: 4})
		return b
	}
	// The subject JetStream publishes a stream's advisories on.
	subject := func(stream string) string {
		tenant, integration, _ := strings.Cut(strings.TrimPrefix(stream, "VRSKY_"), "_")
		p := dataplane.Pipeline{Tenant: tenant, Integration: integration}
		require.Equal(t, stream, p.Stream())
		return strings.TrimSuffix(p.MaxDeliveriesAdvisories(), "*") + "deliver-out"
	}
	for _, m := range []struct {
		stream string
		data   []byte
	}{
		{"VRSKY_acme_orders", advisory("VRSKY_acme_orders", 7)},
		{"VRSKY_acme_invoices", advisory("VRSKY_acme_invoices", 9)},
		{"VRSKY_acme_orders", []byte("{not json")},
		{"VRSKY_acme_orders", advisory("VRSKY_acme_orders", 0)},                                           // no message named
		{"VRSKY_acme_orders", advisory("VRSKY_beta_orders", 11)},                                          // a stream no pipeline here runs
		{"VRSKY_acme_orders", append(advisory("VRSKY_acme_orders", 12), strings.Repeat(" ", 900<<10)...)}, // oversize, still valid JSON
	} {
		require.NoError(t, publisher.Publish(subject(m.stream), m.data))
	}
	require.NoError(t, publisher.Flush())
	want := map[string][]uint64{"shared": {7, 12}, "dedicated": {7, 12}, "invoices": {9}}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(got) == fmt.Sprint(want)
	}, 5*time.Second, 10*time.Millisecond)

	stopDedicated()
	stopDedicated() // twice is once
	require.Equal(t, 2, w.subscriptions(), "invoices still watches on the dedicated connection")
	stopOther()
	stopShared()
	require.Zero(t, w.subscriptions())
	require.Zero(t, shared.NumSubscriptions())
	require.Zero(t, dedicated.NumSubscriptions())
}

// subscriptions is how many connections have an advisory subscription.
func (w *advisoryWatch) subscriptions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs)
}

// lagSeries reads the lag loop's gauges after forgetting them: the series
// present were set by the passes since.
func lagSeries(m *Metrics) int { return testutil.CollectAndCount(m.consumerLag) }

// TestLagLoopReadsWhatMovesOrWaitsAndIdleSeldom: a pipeline with
// messages waiting shows its lag on the first pass and is read once per
// lagInterval while they wait; an idle pipeline is read once, then once
// per lagIdleInterval. Both kinds of reads are spread over the passes of
// their interval, not made in bursts.
func TestLagLoopReadsWhatMovesOrWaitsAndIdleSeldom(t *testing.T) {
	// The stages start parked; once idleAfter has passed they no longer
	// count as parked recently, which would read them as often as moving
	// ones.
	shortIdle(t, time.Millisecond)
	r := newIdleRunner(t)
	m, loop := r.d.metrics, r.d.shared.lag
	ctx := context.Background()
	const n = 3 * activeSlots
	pls := make([]*pipeline, n)
	for i := range n {
		pls[i], _ = r.start(fmt.Sprintf("idle-%d", i))
	}
	time.Sleep(5 * time.Millisecond)
	// The shared loop runs every lagTick; this test makes the passes
	// itself.
	loop.readDue(ctx)
	require.Equal(t, 2*n, lagSeries(m), "every pipeline is read on its first pass: two stages each")

	readsPerPass := func(passes int, moving bool) []int {
		reads := make([]int, passes)
		for i := range passes {
			if moving {
				for _, pl := range pls {
					pl.stages[1].src.moved.Store(true)
				}
			}
			m.consumerLag.Reset()
			loop.readDue(ctx)
			reads[i] = lagSeries(m) / 2
		}
		return reads
	}
	idle := readsPerPass(idleSlots, false)
	require.Equal(t, n, sum(idle), "each idle pipeline once per lagIdleInterval")
	require.LessOrEqual(t, slices.Max(idle), 1, "the idle reads are spread")
	moving := readsPerPass(activeSlots, true)
	require.Equal(t, slicesRepeat(n/activeSlots, activeSlots), moving, "each moving pipeline once per lagInterval, spread over its passes")
	for _, pl := range pls {
		pl.moved() // they stop moving
	}

	// Their tenant's DLQ size: a read older than lagInterval is not read
	// again by idle pipelines, only by an active one.
	stale := time.Now().Add(-2 * lagInterval)
	m.dlqRead.Store(r.tenant, stale)
	for range idleSlots {
		loop.readDue(ctx)
	}
	last, _ := m.dlqRead.Load(r.tenant)
	require.Equal(t, stale, last, "idle pipelines leave a 10 s old DLQ size alone")

	// Waiting messages: a stage that does not take them (a producer that
	// failed before the spec dropped it) keeps the pipeline read on
	// every pass.
	_, waiting := r.start("waiting")
	stream, err := r.js.Stream(ctx, waiting.Stream())
	require.NoError(t, err)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: dataplane.DeliverStage("gone"), FilterSubject: waiting.OutSubject("gone"), AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for i := range 3 {
		_, err := r.js.Publish(ctx, waiting.OutSubject("gone"), fmt.Appendf(nil, "%d", i))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { // the server counts them pending
		info, err := stream.Consumer(ctx, dataplane.DeliverStage("gone"))
		return err == nil && info.CachedInfo().NumPending == 3
	}, 5*time.Second, 20*time.Millisecond)
	gauge := m.consumerLag.WithLabelValues(waiting.Tenant, waiting.Integration, dataplane.DeliverStage("gone"))
	loop.readDue(ctx)
	require.Equal(t, 3.0, testutil.ToFloat64(gauge), "shown on the first pass")
	last, _ = m.dlqRead.Load(r.tenant)
	require.True(t, last.(time.Time).After(stale), "a pipeline with messages waiting reads the DLQ size too")
	for range 3 {
		m.consumerLag.DeleteLabelValues(waiting.Tenant, waiting.Integration, dataplane.DeliverStage("gone"))
		for range activeSlots {
			loop.readDue(ctx)
		}
		require.Equal(t, 3.0, testutil.ToFloat64(gauge), "read again every lagInterval while messages wait")
	}

	// Within one interval, from the loop's own ticker.
	_, later := r.start("later")
	ticking, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); loop.run(ticking, 50*time.Millisecond) }()
	require.Eventually(t, func() bool {
		return m.consumerLag.DeleteLabelValues(later.Tenant, later.Integration, dataplane.StageProcess)
	}, 2*time.Second, 10*time.Millisecond, "a new pipeline's lag shows within one interval")
	stop()
	<-done
}

// TestEachLagPassAsksItsOwnSlotOnly: over a lagInterval's passes each
// source is asked once whether it moved; a pass does not go through every
// source of the runner.
func TestEachLagPassAsksItsOwnSlotOnly(t *testing.T) {
	loop := newLagLoop(NewMetrics(prometheus.NewPedanticRegistry()))
	const n = 3 * activeSlots
	asked := make([]int, n)
	for i := range n {
		loop.add(nil, nil, dataplane.Pipeline{}, nil, func() bool { asked[i]++; return false }, func(string) {})
	}
	clear(loop.fresh) // as if read once
	loop.pass = 2 * n // no source's idle read falls in these passes
	for pass := range activeSlots {
		loop.readDue(context.Background())
		require.Equal(t, n/activeSlots, sum(asked)-pass*n/activeSlots, "pass %d asks its slot's sources only", pass)
	}
	require.Equal(t, slicesRepeat(1, n), asked, "each source once per lagInterval")
}

func sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}

func slicesRepeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestStoppedPipelinesLagIsLeftAsItWas: a stopped pipeline is read no
// more and its gauges stay as the last read left them, even with passes
// running while it stops, until the runner forgets the pipeline.
func TestStoppedPipelinesLagIsLeftAsItWas(t *testing.T) {
	r := newIdleRunner(t)
	m, loop := r.d.metrics, r.d.shared.lag
	ctx := context.Background()
	pl, p := r.start("leaving")
	loop.readDue(ctx)
	require.Equal(t, 2, lagSeries(m))

	var passes sync.WaitGroup
	var stopped atomic.Bool
	passes.Go(func() {
		for !stopped.Load() {
			loop.readDue(ctx)
		}
	})
	time.Sleep(50 * time.Millisecond)
	r.stop(pl)
	m.consumerLag.Reset()
	time.Sleep(100 * time.Millisecond) // passes go on
	stopped.Store(true)
	passes.Wait()
	require.Zero(t, lagSeries(m), "not read once stopped")

	// Left as they were: the last read's gauges stay until forget.
	pl2, p2 := r.start("staying")
	loop.readDue(ctx)
	r.stop(pl2)
	loop.readDue(ctx)
	require.Equal(t, 2, lagSeries(m), "the gauges stay after stop")
	m.forget(p2)
	m.forget(p)
	require.Zero(t, lagSeries(m))
}

// recordingKV records when counts are written.
type recordingKV struct {
	jetstream.KeyValue
	mu     sync.Mutex
	writes []time.Time
	// fail makes every read fail while set.
	fail atomic.Bool
}

func (kv *recordingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if kv.fail.Load() {
		return nil, fmt.Errorf("nats: timeout")
	}
	return kv.KeyValue.Get(ctx, key)
}

func (kv *recordingKV) record() {
	kv.mu.Lock()
	kv.writes = append(kv.writes, time.Now())
	kv.mu.Unlock()
}

func (kv *recordingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	kv.record()
	return kv.KeyValue.Create(ctx, key, value, opts...)
}

func (kv *recordingKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	kv.record()
	return kv.KeyValue.Update(ctx, key, value, revision)
}

// TestCountsFlusherFlushesEachTallyAtMostOncePerInterval: many tallies
// counting all the time share one flusher; each is written at most once
// per interval, a failed flush is tried again after the next interval,
// and a detached tally is no longer written by the flusher.
func TestCountsFlusherFlushesEachTallyAtMostOncePerInterval(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	const interval = 50 * time.Millisecond
	flusher := newCountsFlusher(interval)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); flusher.run(runCtx) }()

	const n = 20
	kvs := make([]*recordingKV, n)
	counts := make([]*stageCount, n)
	for i := range n {
		kvs[i] = &recordingKV{KeyValue: state.Counts}
		counts[i] = newTally(kvs[i], flusher).stage(fmt.Sprintf("t1.i%d.process", i))
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, c := range counts {
			c.add(1)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * interval)
	for i, kv := range kvs {
		kv.mu.Lock()
		writes := kv.writes
		kv.mu.Unlock()
		require.GreaterOrEqual(t, len(writes), 3, "tally %d is flushed while it counts", i)
		for j := 1; j < len(writes); j++ {
			require.GreaterOrEqual(t, writes[j].Sub(writes[j-1]), interval-5*time.Millisecond, "tally %d: at most once per interval", i)
		}
		total, err := dataplane.ReadCount(ctx, state.Counts, fmt.Sprintf("t1.i%d.process", i))
		require.NoError(t, err)
		require.Positive(t, total)
		require.Zero(t, counts[i].pending.Load(), "all flushed")
	}

	// A failing bucket: what is pending is tried again after the next
	// interval, and written once the bucket answers.
	kvs[0].fail.Store(true)
	counts[0].add(5)
	time.Sleep(3 * interval)
	require.Equal(t, uint64(5), counts[0].pending.Load(), "kept while the bucket fails")
	kvs[0].fail.Store(false)
	require.Eventually(t, func() bool { return counts[0].pending.Load() == 0 }, 2*time.Second, 10*time.Millisecond, "retried")

	// Detached (its pipeline stopped): the flusher leaves it alone.
	t1 := counts[1].owner
	t1.detach()
	counts[1].add(1)
	time.Sleep(3 * interval)
	require.Equal(t, uint64(1), counts[1].pending.Load())
	require.NoError(t, t1.flush(ctx), "its pipeline flushes it itself")
	require.Zero(t, counts[1].pending.Load())

	// Stopping the runner flushes what is left.
	counts[2].add(7)
	stop()
	<-done
	require.Zero(t, counts[2].pending.Load(), "the final flush")
}
