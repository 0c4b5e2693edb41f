package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/connectors/file"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/spec"
)

// Scenarios.
const (
	// ScenarioPipeline is webhook → json-transform → router → file, with
	// the router dropping every tenth message.
	ScenarioPipeline = "pipeline"
	// ScenarioClaimCheck is webhook → file with bodies large enough to
	// travel through the claim-check.
	ScenarioClaimCheck = "claimcheck"
	// ScenarioCDC is postgres-cdc on a source table → postgres producer
	// upserting into a target table, in the stack's own database.
	ScenarioCDC = "cdc"
	// ScenarioScale deploys many small webhook → json-transform → file
	// integrations over many tenants through the API, measures what they
	// cost idle, then loads some of them (see scale.go).
	ScenarioScale = "scale"
)

// Tenant is the tenant every benchmark integration belongs to.
const Tenant = "bench"

// Defaults.
const (
	DefaultRate           = 1000
	DefaultDuration       = 10 * time.Second
	DefaultWarmup         = 3 * time.Second
	DefaultSize           = 1024
	DefaultClaimCheckSize = 1 << 20
	DefaultWorkers        = 256
)

// Timeouts of a step.
const (
	readyTimeout    = 30 * time.Second
	drainTimeout    = 30 * time.Second
	drainStall      = 5 * time.Second
	stopTimeout     = 10 * time.Second
	sampleStream    = 200 * time.Millisecond
	startDelay      = 20 * time.Millisecond
	producerName    = "sink"
	sinkRotateBytes = 1 << 40
)

// Config configures a run. The zero value of a field means its default.
type Config struct {
	Scenario string
	// Rate is the offered rate in messages per second; with FindMax the
	// first step's.
	Rate     float64
	Duration time.Duration
	Warmup   time.Duration
	Size     int
	Workers  int
	// Batch, above 1, lets each request carry up to Batch messages already
	// due, as an NDJSON batch; 0 or 1 sends one message per request.
	Batch int
	// TxInterval is how often the CDC scenario commits a transaction of
	// the rows then due (default DefaultTxInterval); other scenarios
	// ignore it.
	TxInterval time.Duration
	// FindMax raises the rate ×1.5 per step until a step does not hold.
	FindMax bool
	// NoBaseline skips the raw JetStream baseline and the latency floor.
	NoBaseline bool
	// DataDir attaches to the `vrsky dev` running there; empty starts a
	// child stack from Binary with Env added to the environment.
	DataDir string
	Binary  string
	Env     []string
	// SplitRunner runs the hot-path runner in a process of its own,
	// `Binary runner --dev DATA_DIR`, measured apart from the stack: a
	// child stack is started with --runner=false, and an attached one
	// must have been.
	SplitRunner bool
	// NATSNodes, above 1, starts the child stack with that many embedded
	// NATS nodes (`vrsky dev --nats-nodes`), whose streams keep three
	// replicas; it needs a child stack.
	NATSNodes int
	// SinkNoFsync makes the file sink leave each batch to the page cache
	// instead of fsyncing it before its acknowledgement: a diagnostic that
	// tells the disk's fsync apart from the platform's latency. The cdc
	// scenario, whose sink is PostgreSQL, refuses it.
	SinkNoFsync bool
	// NoIdempotencyKey sends the webhook requests without an
	// Idempotency-Key, so the ingress keeps no ID memory for them: a
	// diagnostic of what that memory costs. The cdc scenario sends none
	// anyway and refuses it.
	NoIdempotencyKey bool
	// KeyMemory is the webhook consumer's keyMemory; "" leaves the
	// connector's default, remember. Keyed requests only, and not the cdc
	// scenario.
	KeyMemory sdk.KeyMemory
	// Scale holds the scale scenario's settings; other scenarios refuse
	// any of them set.
	Scale ScaleConfig
	// Progress receives a line per phase; nil discards them.
	Progress io.Writer
}

func (c *Config) applyDefaults() error {
	if c.Scenario == "" {
		c.Scenario = ScenarioPipeline
	}
	if c.Scenario != ScenarioPipeline && c.Scenario != ScenarioClaimCheck && c.Scenario != ScenarioCDC && c.Scenario != ScenarioScale {
		return fmt.Errorf("scenario %q: want %q, %q, %q or %q", c.Scenario, ScenarioPipeline, ScenarioClaimCheck, ScenarioCDC, ScenarioScale)
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Size == 0 {
		c.Size = DefaultSize
		if c.Scenario == ScenarioClaimCheck {
			c.Size = DefaultClaimCheckSize
		}
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Scenario == ScenarioCDC && c.TxInterval == 0 {
		c.TxInterval = DefaultTxInterval
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	var errs []error
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must be positive", c.Rate))
	}
	if c.Duration < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("duration and warm-up must not be negative"))
	}
	switch {
	case c.Scenario == ScenarioCDC && c.Size < 1:
		errs = append(errs, fmt.Errorf("size %d: at least 1 byte", c.Size))
	case c.Scenario != ScenarioCDC && c.Size < MinBodySize:
		errs = append(errs, fmt.Errorf("size %d: at least %d bytes", c.Size, MinBodySize))
	}
	if c.Scenario == ScenarioCDC && c.SinkNoFsync {
		errs = append(errs, fmt.Errorf("sink without fsync: the %s scenario's sink is PostgreSQL", ScenarioCDC))
	}
	if c.Scenario == ScenarioCDC && c.NoIdempotencyKey {
		errs = append(errs, fmt.Errorf("no idempotency key: the %s scenario sends no webhook requests", ScenarioCDC))
	}
	switch {
	case c.KeyMemory.Validate() != nil:
		errs = append(errs, c.KeyMemory.Validate())
	case c.KeyMemory != "" && c.Scenario == ScenarioCDC:
		errs = append(errs, fmt.Errorf("key memory: the %s scenario sends no webhook requests", ScenarioCDC))
	case c.KeyMemory != "" && c.NoIdempotencyKey:
		errs = append(errs, errors.New("key memory: the requests carry no Idempotency-Key to remember"))
	}
	if c.Scenario == ScenarioCDC && c.Batch > 0 {
		errs = append(errs, fmt.Errorf("batch %d: the %s scenario inserts rows, it sends no webhook batches", c.Batch, ScenarioCDC))
	}
	if c.TxInterval < 0 {
		errs = append(errs, fmt.Errorf("transaction interval %s: must not be negative", c.TxInterval))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d: must be positive", c.Workers))
	}
	if c.Batch < 0 || c.Batch > api.MaxBatchRecords {
		errs = append(errs, fmt.Errorf("batch %d: want 0 to %d", c.Batch, api.MaxBatchRecords))
	}
	if c.DataDir == "" && c.Binary == "" {
		errs = append(errs, errors.New("no stack: give a data directory or a binary to start"))
	}
	if c.NATSNodes != 0 && c.NATSNodes != 1 && c.NATSNodes != 3 && c.NATSNodes != 5 {
		errs = append(errs, fmt.Errorf("nats nodes %d: want 1, 3 or 5", c.NATSNodes))
	}
	if c.NATSNodes > 1 && c.DataDir != "" {
		errs = append(errs, errors.New("nats nodes: the bench starts the stack's NATS cluster; an attached stack keeps its own"))
	}
	if c.SplitRunner && c.Binary == "" {
		errs = append(errs, errors.New("split runner: give a binary to start it"))
	}
	if int64((c.Duration+c.Warmup).Seconds()*c.Rate) < 1 {
		errs = append(errs, errors.New("duration × rate sends no message"))
	}
	errs = append(errs, c.applyScaleDefaults())
	return errors.Join(errs...)
}

// Run benchmarks the stack described by cfg and returns the report: one run,
// or with FindMax every step and the best one that held. With SplitRunner
// the runner process is started after the stack, measured beside it, and
// stopped before it. The baseline runs after the pipeline, on the same NATS
// server, for cfg.Duration. When the measurements succeeded but stopping
// what the run started did not (a stack or runner that outlived its stop
// timeout), the report is returned together with that error.
func Run(ctx context.Context, cfg Config) (report *Report, err error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	stack, err := openStack(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stack.Close()) }()
	if cfg.Scenario == ScenarioScale {
		return runScale(ctx, cfg, stack)
	}
	var split *RunnerProcess
	if cfg.SplitRunner {
		if split, err = startSplitRunner(ctx, cfg, stack); err != nil {
			return nil, err
		}
		// Deferred after the stack's Close, so it runs first.
		defer func() { err = errors.Join(err, split.Close()) }()
	}

	nc, err := nats.Connect(stack.Endpoints.NATS, append(stack.Endpoints.NATSOptions(), nats.Name("vrsky-bench"))...)
	if err != nil {
		return nil, fmt.Errorf("connect to the stack's nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// Opening the state may create or update its buckets: at the
	// stack's replica count, never fewer.
	js = natscluster.WithReplicas(js, stack.Endpoints.NATSReplicas)
	state, err := dataplane.OpenState(ctx, js)
	if err != nil {
		return nil, err
	}
	tenant, tenantClients, err := stack.tenantConn(ctx, nc)
	if err != nil {
		return nil, err
	}
	if tenant != nc {
		defer tenant.Close()
	}
	tenantJS, err := jetstream.New(tenant)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r := &runner{cfg: cfg, stack: stack, split: split, js: tenantJS, state: state, client: NewClient(cfg.Workers)}
	if cfg.Scenario == ScenarioCDC {
		if stack.Endpoints.Postgres == "" {
			return nil, fmt.Errorf("the stack on %s names no PostgreSQL in %s", stack.DataDir, devstack.EndpointsFile)
		}
		r.postgresPID = postgresPID(stack.DataDir)
		if err := tenantClients.provisionDatabase(ctx, stack.Endpoints.Postgres); err != nil {
			return nil, err
		}
	}
	defer r.client.CloseIdleConnections()
	idle, err := idleCores(ctx, stack.PID)
	if err != nil {
		return nil, err
	}

	if cfg.FindMax {
		report, err = r.findMax(ctx)
	} else {
		report, err = r.step(ctx, cfg.Rate)
	}
	if err != nil {
		return nil, err
	}
	report.StackIdleCores = idle
	for i := range report.Steps {
		report.Steps[i].StackIdleCores = idle
	}
	if !cfg.NoBaseline {
		fmt.Fprintf(cfg.Progress, "baseline: raw JetStream publish+consume for %s…\n", cfg.Duration)
		b, err := Baseline(ctx, stack.Endpoints.NATS, cfg.Size, cfg.Duration, stack.Endpoints.NATSReplicas, stack.Endpoints.NATSOptions()...)
		if err != nil {
			return nil, err
		}
		report.setBaseline(b)
		for i := range report.Steps {
			report.Steps[i].setBaseline(b)
		}
		if r.floorApplies() {
			fmt.Fprintf(cfg.Progress, "floor: the same load through a bare HTTP handler, raw JetStream and a fsynced file for %s…\n", cfg.Duration)
			f, err := Floor(ctx, FloorConfig{
				URL: stack.Endpoints.NATS, Options: stack.Endpoints.NATSOptions(), Replicas: stack.Endpoints.NATSReplicas, StackPID: stack.PID,
				Dir: stack.DataDir, Sched: r.schedule(cfg.Rate), Size: cfg.Size, Workers: cfg.Workers, NoFsync: cfg.SinkNoFsync,
			})
			if err != nil {
				return nil, err
			}
			report.setFloor(f)
		}
	}
	return report, nil
}

// floorApplies reports whether a run gets a floor (see Floor): one rate,
// one message per request, the pipeline or claim-check scenario.
func (r *runner) floorApplies() bool {
	c := r.cfg
	return !c.FindMax && c.Batch <= 1 && (c.Scenario == ScenarioPipeline || c.Scenario == ScenarioClaimCheck)
}

// schedule is a step's load at rate, starting now.
func (r *runner) schedule(rate float64) Schedule {
	return Schedule{
		T0:       time.Now().Add(startDelay),
		Rate:     rate,
		Warmup:   int64(r.cfg.Warmup.Seconds() * rate),
		Measured: max(int64(r.cfg.Duration.Seconds()*rate), 1),
	}
}

// openStack attaches to the stack on cfg.DataDir or starts a child stack,
// without a runner of its own when runner processes will run beside it.
func openStack(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.DataDir != "" {
		return AttachStack(cfg.DataDir)
	}
	began := time.Now()
	fmt.Fprintf(cfg.Progress, "starting a dev stack (%s dev)…\n", cfg.Binary)
	var args []string
	if cfg.SplitRunner || cfg.Scale.Runners > 0 {
		args = append(args, "--runner=false")
	}
	if cfg.NATSNodes > 1 {
		args = append(args, "--nats-nodes", fmt.Sprint(cfg.NATSNodes))
	}
	stack, err := StartStack(ctx, cfg.Binary, cfg.Env, args...)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "stack ready in %s (pid %d)\n", time.Since(began).Round(time.Millisecond), stack.PID)
	return stack, nil
}

// startSplitRunner starts the runner process beside a stack that has no
// runner of its own.
func startSplitRunner(ctx context.Context, cfg Config, stack *Stack) (*RunnerProcess, error) {
	if stack.Endpoints.Runner {
		return nil, fmt.Errorf("the stack on %s runs its own runner, which would share the work with the split runner: start it with vrsky dev --runner=false", stack.DataDir)
	}
	began := time.Now()
	fmt.Fprintf(cfg.Progress, "starting a runner (%s runner --dev %s)…\n", cfg.Binary, stack.DataDir)
	split, err := StartRunner(ctx, cfg.Binary, stack.DataDir, cfg.Env)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "runner ready in %s (pid %d)\n", time.Since(began).Round(time.Millisecond), split.PID)
	return split, nil
}

// runner runs the steps of one Run against one stack.
type runner struct {
	cfg    Config
	stack  *Stack
	split  *RunnerProcess      // nil when the stack runs the runner
	js     jetstream.JetStream // the benchmark tenant's
	state  *dataplane.State
	client *http.Client
	// postgresPID is the stack's PostgreSQL server, measured in the CDC
	// scenario; 0 when not measured.
	postgresPID int
}

// findMax runs steps at ×1.5 the previous rate, each with its own new
// integration (an empty stream, a new sink file, its own warm-up), until a
// step does not hold. The report is the best step that held (or the first
// step when none did) with every step attached.
func (r *runner) findMax(ctx context.Context) (*Report, error) {
	var steps []Report
	var best *Report
	rate := r.cfg.Rate
	for range findMaxSteps {
		step, err := r.step(ctx, rate)
		if err != nil {
			return nil, err
		}
		steps = append(steps, *step)
		if !step.Held() {
			break
		}
		best = step
		rate *= findMaxFactor
	}
	out := steps[0]
	if best != nil {
		out = *best
		out.MaxSustainedRate = &best.SustainedRate
		out.MaxOfferedRateHeld = &best.OfferedRate
	}
	out.Steps = steps
	return &out, nil
}

// step creates a new benchmark integration, runs warm-up and measured load
// at rate through it, and removes it.
func (r *runner) step(ctx context.Context, rate float64) (_ *Report, err error) {
	if r.cfg.Scenario == ScenarioCDC {
		return r.cdcStep(ctx, rate)
	}
	cfg := r.cfg
	name := "bench-" + randomID()
	p := dataplane.Pipeline{Tenant: Tenant, Integration: name}
	sinkDir := filepath.Join(r.stack.DataDir, "files", Tenant, Tenant, name)
	desired := dataplane.Desired{
		Tenant: Tenant, Integration: name, Version: 1, Status: dataplane.DesiredRunning,
		Spec: IntegrationSpec(cfg, name),
	}
	if cfg.Size > api.DefaultWebhookMaxBytes {
		desired.WebhookMaxBytes = int64(cfg.Size) + 64<<10
	}
	if err := r.state.PutDesired(ctx, desired); err != nil {
		return nil, fmt.Errorf("create benchmark integration: %w", err)
	}
	defer func() { err = errors.Join(err, r.remove(ctx, p, sinkDir)) }()
	if err := r.waitRunning(ctx, p); err != nil {
		return nil, err
	}
	url := "http://" + r.stack.Endpoints.HTTP + "/v1/hooks/" + Tenant + "/" + name
	if err := r.waitIngress(ctx, url); err != nil {
		return nil, err
	}

	sched := r.schedule(rate)
	var dropped func(int64) bool
	if cfg.Scenario == ScenarioPipeline {
		dropped = func(seq int64) bool { return seq%10 == 0 }
	}
	sink := NewCollector(sched, dropped)
	fmt.Fprintf(cfg.Progress, "%s: %.0f msgs/s offered, %s warm-up + %s measured, %d-byte messages…\n",
		name, rate, cfg.Warmup, cfg.Duration, cfg.Size)

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var tailErr error
	tail := NewTail(sinkDir, sink)
	wg.Go(func() { tailErr = tail.Run(bg) })
	sampler := &streamSampler{js: r.js, stream: p.Stream()}
	wg.Go(func() { sampler.run(bg) })
	defer func() { stopBG(); wg.Wait() }()

	load := &Load{URL: url, KeyPrefix: keyPrefix(cfg, name+"-"), Size: cfg.Size, Workers: cfg.Workers, Batch: cfg.Batch}
	before, after, drain, err := r.measure(ctx, sched, sink, func() error { return load.Run(ctx, sched, sink) })
	if err != nil {
		return nil, err
	}
	stopBG()
	wg.Wait()
	if tailErr != nil {
		return nil, tailErr
	}

	rep := &Report{
		Scenario: cfg.Scenario, Integration: name, OfferedRate: rate,
		DrainSeconds: drain.Seconds(), MessageSize: cfg.Size,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), Workers: cfg.Workers, Batch: cfg.Batch,
		Durability: durabilityOf(r.stack.Endpoints.NATSReplicas, cfg.SinkNoFsync), NoIdempotencyKey: cfg.NoIdempotencyKey, KeyMemory: cfg.KeyMemory, StackOwned: r.stack.Owned(), Machine: ThisMachine(),
	}
	fillCounts(rep, sink)
	fillProcesses(rep, before, after)
	if cfg.Scenario == ScenarioClaimCheck {
		rep.MBPerS = rep.SustainedRate * float64(cfg.Size) / 1e6
		peak, perMsg := sampler.result()
		rep.NATSStreamBytes, rep.NATSStreamMaxMsgBytes = &peak, &perMsg
	}
	fmt.Fprintf(cfg.Progress, "%s: sustained %.0f/s, p99 %.2f ms, lost %d, errors %d\n", name, rep.SustainedRate, rep.P99, rep.Lost, rep.Errors)
	if rep.Lost > 0 {
		r.explainMissing(ctx, rep, p)
	}
	return rep, nil
}

// explainMissing adds the pipeline's stage counters to a report with
// messages missing after the drain, and prints them.
func (r *runner) explainMissing(ctx context.Context, rep *Report, p dataplane.Pipeline) {
	stages, dead, err := dataplane.Counters(ctx, r.js, r.state.Counts, p)
	if err != nil {
		fmt.Fprintf(r.cfg.Progress, "%s: stage counters unreadable: %v\n", p.Integration, err)
		return
	}
	rep.StagesAfterDrain = stages
	for _, s := range stages {
		fmt.Fprintf(r.cfg.Progress, "%s: after the drain %s acked %d, pending %d, in flight %d, redelivered %d\n",
			p.Integration, s.Stage, s.Acked, s.Pending, s.InFlight, s.Redelivered)
	}
	fmt.Fprintf(r.cfg.Progress, "%s: after the drain %d dead letters\n", p.Integration, dead)
}

// measure runs send (the load of sched) and samples the processes at the
// start of the measured window — the first measured intended send time —
// and after the drain that follows the load.
func (r *runner) measure(ctx context.Context, sched Schedule, sink *Collector, send func() error) (before, after procSample, drain time.Duration, err error) {
	return measureWindow(ctx, sched, sink, r.sampleProcesses, send)
}

// measureWindow runs send (the load of sched), takes sample at the start
// of the measured window and again after sink's drain, which follows the
// load.
func measureWindow(ctx context.Context, sched Schedule, sink *Collector, sample func() (procSample, error), send func() error) (before, after procSample, drain time.Duration, err error) {
	loadDone := make(chan error, 1)
	go func() { loadDone <- send() }()
	select {
	case <-time.After(time.Until(sched.MeasuredStart())):
	case err := <-loadDone:
		return before, after, 0, fmt.Errorf("load ended before the measured window: %w", err)
	}
	if before, err = sample(); err != nil {
		return before, after, 0, err
	}
	if err := <-loadDone; err != nil {
		return before, after, 0, fmt.Errorf("send load: %w", err)
	}
	drain = drainMissing(ctx, sink.Missing)
	after, err = sample()
	return before, after, drain, err
}

// IntegrationSpec is the benchmark integration of cfg's scenario. For the
// pipeline, claim-check and scale scenarios: webhook in (with
// cfg.KeyMemory), a file producer "sink" writing ndjson to bench/<name> of
// the tenant's file root (one file for the whole run, fsynced per batch
// unless cfg.SinkNoFsync), for the pipeline and scale scenarios a
// json-transform that totals the order's items, and for the pipeline
// scenario then a router that keeps messages whose seq is not a multiple of
// ten. For the CDC scenario: the postgres-cdc consumer on the step's source
// table and a postgres producer "sink" upserting into its target table
// (see cdcSpec).
func IntegrationSpec(cfg Config, name string) spec.Integration {
	scenario := cfg.Scenario
	if scenario == ScenarioCDC {
		return cdcSpec(name)
	}
	sync := !cfg.SinkNoFsync
	consumer := spec.Step{Connector: dataplane.WebhookConnector}
	if cfg.KeyMemory != "" {
		consumer.Config = mustJSON(webhook.Config{KeyMemory: cfg.KeyMemory})
	}
	in := spec.Integration{
		Name:     name,
		Consumer: consumer,
		Producers: map[string]spec.Step{producerName: {Connector: file.ProducerConnector.Name, Config: mustJSON(file.Config{
			Dir: "bench/" + name, Format: file.FormatNDJSON,
			RotateBytes: sinkRotateBytes, RotateInterval: "24h", Sync: &sync,
		})}},
	}
	if scenario == ScenarioPipeline || scenario == ScenarioScale {
		in.Steps = []spec.Step{
			{Connector: jsontransform.Connector.Name, Config: mustJSON(jsontransform.Config{
				Set: map[string]string{"total": "sum(map(items, #.qty * #.price))"},
			})},
		}
	}
	if scenario == ScenarioPipeline {
		in.Steps = append(in.Steps, spec.Step{Connector: router.Connector.Name, Config: mustJSON(router.Config{
			Routes: []router.Route{{When: "seq % 10 != 0", To: []string{producerName}}},
		})})
	}
	return in
}

// keyPrefix is prefix, or "" (no Idempotency-Key) with
// cfg.NoIdempotencyKey.
func keyPrefix(cfg Config, prefix string) string {
	if cfg.NoIdempotencyKey {
		return ""
	}
	return prefix
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode benchmark config: %v", err)) // static configs only
	}
	return b
}

// waitRunning waits until a runner — with a split runner, that one —
// reports the integration running.
func (r *runner) waitRunning(ctx context.Context, p dataplane.Pipeline) error {
	deadline := time.Now().Add(readyTimeout)
	var last dataplane.Status
	for time.Now().Before(deadline) {
		if r.split != nil {
			if err := r.split.proc.exitErr(); err != nil {
				return err
			}
		}
		st, ok, err := r.state.GetStatus(ctx, p)
		if err != nil {
			return err
		}
		if ok {
			last = st
			switch {
			case st.Status == dataplane.StatusDegraded:
				return fmt.Errorf("benchmark integration %s is degraded: %s", p, st.LastError)
			case st.Status == dataplane.StatusRunning && (r.split == nil || st.Runner == SplitRunnerName):
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if r.split != nil && last.Status == dataplane.StatusRunning {
		return fmt.Errorf("benchmark integration %s runs on runner %q, not on the split runner: start the attached stack with vrsky dev --runner=false", p, last.Runner)
	}
	return fmt.Errorf("benchmark integration %s not running after %s (last status %q: %s)", p, readyTimeout, last.Status, last.LastError)
}

// waitIngress waits until the webhook ingress knows the integration. It
// sends an invalid Idempotency-Key, which the ingress rejects with 400 only
// once it has found the integration (404 before), so nothing is stored.
func (r *runner) waitIngress(ctx context.Context, url string) error {
	deadline := time.Now().Add(readyTimeout)
	last := 0
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
		if err != nil {
			return fmt.Errorf("probe webhook ingress: %w", err)
		}
		req.Header.Set("Idempotency-Key", "not a valid key")
		resp, err := r.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			last = resp.StatusCode
			if last == http.StatusBadRequest {
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("webhook ingress does not know %s after %s (last status %d)", url, readyTimeout, last)
}

// drainMissing waits until missing reports nothing missing, its count
// stopped changing for drainStall, or drainTimeout passed. It returns how
// long it waited.
func drainMissing(ctx context.Context, missing func() int64) time.Duration {
	began := time.Now()
	left, changed := missing(), began
	for left > 0 && time.Since(began) < drainTimeout && time.Since(changed) < drainStall {
		if sleep(ctx, 20*time.Millisecond) != nil {
			break
		}
		if m := missing(); m != left {
			left, changed = m, time.Now()
		}
	}
	return time.Since(began)
}

// remove deletes the benchmark integration, waits for the runner to stop
// it, and removes its sink files (none when sinkDir is "").
func (r *runner) remove(ctx context.Context, p dataplane.Pipeline, sinkDir string) error {
	ctx = context.WithoutCancel(ctx)
	if err := r.state.DeleteDesired(ctx, p); err != nil {
		return fmt.Errorf("remove benchmark integration: %w", err)
	}
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		st, ok, err := r.state.GetStatus(ctx, p)
		if err != nil || !ok || st.Status != dataplane.StatusRunning {
			break
		}
		_ = sleep(ctx, 50*time.Millisecond)
	}
	if sinkDir == "" {
		return nil
	}
	if err := os.RemoveAll(sinkDir); err != nil {
		return fmt.Errorf("remove benchmark sink files: %w", err)
	}
	return nil
}

// fillCounts copies a step's counts, latencies and rates into rep.
func fillCounts(rep *Report, sink *Collector) {
	n := sink.Counts()
	rep.Sent, rep.Errors, rep.Expected, rep.Delivered = n.Sent, n.Errors, n.Expected, n.Delivered
	rep.Lost, rep.Duplicates, rep.Unexpected, rep.Malformed, rep.Unknown = n.Lost, n.Duplicates, n.Unexpected, n.Malformed, n.Unknown
	if len(n.ErrorsByStatus) > 0 {
		rep.ErrorsByStatus = n.ErrorsByStatus
	}
	lat := sink.ArrivalLatencies()
	rep.P50, rep.P99, rep.P999, rep.Max, rep.Mean = lat.P50, lat.P99, lat.P999, lat.Max, lat.Mean
	ack := sink.AckLatencies()
	rep.AckP50, rep.AckP99 = ack.P50, ack.P99
	rep.SustainedRate = sink.SustainedRate()
	rep.InputRate = rep.SustainedRate
	if n.Expected > 0 {
		rep.InputRate = rep.SustainedRate * float64(n.Sent) / float64(n.Expected)
	}
}

// idleWindow is how long the stack's CPU use is sampled before any load.
const idleWindow = time.Second

// idleCores is the CPU the stack uses with no load (Temporal polling,
// timers, …), in cores, over idleWindow.
func idleCores(ctx context.Context, pid int) (float64, error) {
	before, err := ProcCPU(pid)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	if err := sleep(ctx, idleWindow); err != nil {
		return 0, err
	}
	after, err := ProcCPU(pid)
	if err != nil {
		return 0, err
	}
	return (after - before).Seconds() / time.Since(began).Seconds(), nil
}

// procSample is the stack's, the split runner's, PostgreSQL's and the
// bench's resource use at one moment.
type procSample struct {
	stackCPU time.Duration
	stackMem Memory
	selfCPU  time.Duration
	// split tells whether the runner's figures are set.
	split     bool
	runnerCPU time.Duration
	runnerMem Memory
	// postgres tells whether postgresCPU is set: the server's and its
	// sessions' CPU.
	postgres    bool
	postgresCPU time.Duration
}

func (r *runner) sampleProcesses() (procSample, error) {
	runnerPID := 0
	if r.split != nil {
		runnerPID = r.split.PID
	}
	s, err := sampleProcesses(r.stack.PID, runnerPID)
	if err != nil || r.postgresPID == 0 {
		return s, err
	}
	if s.postgresCPU, err = TreeCPU(r.postgresPID); err != nil {
		return s, err
	}
	s.postgres = true
	return s, nil
}

// sampleProcesses samples the stack, the runner (unless runnerPID is 0)
// and this process.
func sampleProcesses(stackPID, runnerPID int) (procSample, error) {
	var s procSample
	var err error
	if s.stackCPU, err = ProcCPU(stackPID); err != nil {
		return s, err
	}
	if s.stackMem, err = ProcMemory(stackPID); err != nil {
		return s, err
	}
	if runnerPID != 0 {
		s.split = true
		if s.runnerCPU, err = ProcCPU(runnerPID); err != nil {
			return s, err
		}
		if s.runnerMem, err = ProcMemory(runnerPID); err != nil {
			return s, err
		}
	}
	if s.selfCPU, err = SelfCPU(); err != nil {
		return s, err
	}
	return s, nil
}

// fillProcesses sets the resource figures of the measured window.
func fillProcesses(rep *Report, before, after procSample) {
	const mb = 1 << 20
	cpu := (after.stackCPU - before.stackCPU).Seconds()
	rep.StackCPUSeconds = cpu
	if rep.Delivered > 0 {
		rep.CPUSecondsPerMillion = cpu / float64(rep.Delivered) * 1e6
	}
	rep.RSSBeforeMB = float64(before.stackMem.RSS) / mb
	rep.PeakRSSMB = float64(after.stackMem.Peak) / mb
	rep.LoadgenCPUSeconds = (after.selfCPU - before.selfCPU).Seconds()
	if before.postgres && after.postgres {
		pg := (after.postgresCPU - before.postgresCPU).Seconds()
		var perMillion float64
		if rep.Delivered > 0 {
			perMillion = pg / float64(rep.Delivered) * 1e6
		}
		rep.PostgresCPUSeconds, rep.PostgresCPUSecondsPerMillion = &pg, &perMillion
	}
	if !before.split || !after.split {
		return
	}
	runnerCPU := (after.runnerCPU - before.runnerCPU).Seconds()
	var perMillion float64
	if rep.Delivered > 0 {
		perMillion = runnerCPU / float64(rep.Delivered) * 1e6
	}
	rssBefore := float64(before.runnerMem.RSS) / mb
	peak := float64(after.runnerMem.Peak) / mb
	rep.RunnerCPUSeconds, rep.RunnerCPUSecondsPerMillion = &runnerCPU, &perMillion
	rep.RunnerRSSBeforeMB, rep.RunnerPeakRSSMB = &rssBefore, &peak
}

// streamSampler follows the pipeline stream's size: the most bytes it held
// at once and the most bytes per message it held.
type streamSampler struct {
	js     jetstream.JetStream
	stream string

	mu     sync.Mutex
	peak   uint64
	perMsg uint64
}

func (s *streamSampler) run(ctx context.Context) {
	t := time.NewTicker(sampleStream)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := s.js.Stream(ctx, s.stream)
		if err != nil {
			continue // the next sample tries again
		}
		info, err := st.Info(ctx)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.peak = max(s.peak, info.State.Bytes)
		if info.State.Msgs > 0 {
			s.perMsg = max(s.perMsg, info.State.Bytes/info.State.Msgs)
		}
		s.mu.Unlock()
	}
}

func (s *streamSampler) result() (peak, perMsg uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.perMsg
}

// randomID returns 8 random lowercase hex digits.
func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
