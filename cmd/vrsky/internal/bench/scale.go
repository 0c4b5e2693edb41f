package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/store"
)

// Scale scenario defaults.
const (
	DefaultScaleTenants      = 10
	DefaultScaleIntegrations = 100
	DefaultScaleActive       = 10
	// DefaultIdleWindow is how long the stack is measured idle, once with
	// no integration deployed and once with all of them.
	DefaultIdleWindow = 20 * time.Second
	// DefaultIdleSettle is the pause between the deployment and the idle
	// window with every integration deployed: a stage parks after a
	// minute without messages (looked at every 15 s) and the server
	// removes its consumer a minute after that (hotpath/park.go), so the
	// window measures the stages at rest.
	DefaultIdleSettle = 150 * time.Second
)

// Scale scenario bounds and timings.
const (
	maxScaleTenants      = 10_000
	maxScaleIntegrations = 100_000
	maxScaleRunners      = 64
	minIdleWindow        = time.Second
	// scaleAPIConcurrency is how many API requests the scenario has in
	// flight at once while it creates tenants and deploys integrations.
	scaleAPIConcurrency = 8
	// scaleLoadStart is how far ahead of now a load phase's first message
	// is due, so that every load's workers and the sink reader are up.
	scaleLoadStart = 200 * time.Millisecond
	// tenantRemoveTimeout bounds the wait for the run's tenants to be
	// deleted from an attached stack.
	tenantRemoveTimeout = time.Minute
	// scaleRunnerPrefix starts the names of the runner processes.
	scaleRunnerPrefix = "vrsky-bench-runner-"
)

// perTenantQuota is how many integrations a tenant created with the
// default quotas may hold.
var perTenantQuota = store.DefaultTenantLimits.Integrations

// ScaleConfig is the scale scenario's part of a Config. The zero value of a
// field means its default.
type ScaleConfig struct {
	// Tenants are created through the API; Integrations are spread evenly
	// over them (integration i belongs to tenant i mod Tenants).
	Tenants      int
	Integrations int
	// Active is how many of the integrations the load is spread over,
	// round-robin, the first Active ones (so spread over the tenants too).
	Active int
	// Runners, above 0, runs that many runner processes (`vrsky runner
	// --dev`) beside a stack without a runner of its own.
	Runners int
	// IdleWindow is how long the idle cost is measured; IdleSettle how
	// long the stack rests after the deployment before it is.
	IdleWindow time.Duration
	IdleSettle time.Duration
	// FloodTenantRate, above 0, adds a second load phase in which one more
	// tenant's integration is sent this many messages per second on top
	// of the scale load.
	FloodTenantRate float64
	// DeployTimeout bounds the deployment of all the integrations; 0 means
	// one minute plus 300 ms per integration. Those not running by then
	// are reported and left out of the load.
	DeployTimeout time.Duration
}

// applyScaleDefaults fills in and checks the scale settings; other
// scenarios must leave them all unset.
func (c *Config) applyScaleDefaults() error {
	s := &c.Scale
	if c.Scenario != ScenarioScale {
		if *s != (ScaleConfig{}) {
			return fmt.Errorf("tenants, integrations, active, runners, idle window and settle and flood rate are settings of the %s scenario only", ScenarioScale)
		}
		return nil
	}
	if s.Tenants == 0 {
		s.Tenants = DefaultScaleTenants
	}
	if s.Integrations == 0 {
		s.Integrations = max(DefaultScaleIntegrations, s.Tenants)
	}
	if s.Active == 0 {
		s.Active = min(DefaultScaleActive, s.Integrations)
	}
	if s.IdleWindow == 0 {
		s.IdleWindow = DefaultIdleWindow
	}
	if s.IdleSettle == 0 {
		s.IdleSettle = DefaultIdleSettle
	}
	if s.DeployTimeout == 0 {
		s.DeployTimeout = time.Minute + time.Duration(s.Integrations)*300*time.Millisecond
	}
	var errs []error
	if s.Tenants < 1 || s.Tenants > maxScaleTenants {
		errs = append(errs, fmt.Errorf("tenants %d: want 1 to %d", s.Tenants, maxScaleTenants))
	}
	if s.Integrations < 1 || s.Integrations > maxScaleIntegrations {
		errs = append(errs, fmt.Errorf("integrations %d: want 1 to %d", s.Integrations, maxScaleIntegrations))
	}
	if s.Integrations < s.Tenants {
		errs = append(errs, fmt.Errorf("integrations %d: at least one per tenant (%d tenants)", s.Integrations, s.Tenants))
	}
	if s.Tenants > 0 && (s.Integrations+s.Tenants-1)/s.Tenants > perTenantQuota {
		errs = append(errs, fmt.Errorf("integrations %d over %d tenants: a tenant holds at most %d under the default quota; add tenants",
			s.Integrations, s.Tenants, perTenantQuota))
	}
	if s.Active < 1 || s.Active > s.Integrations {
		errs = append(errs, fmt.Errorf("active %d: want 1 to the number of integrations (%d)", s.Active, s.Integrations))
	}
	if s.Runners < 0 || s.Runners > maxScaleRunners {
		errs = append(errs, fmt.Errorf("runners %d: want 0 to %d", s.Runners, maxScaleRunners))
	}
	if s.Runners > 0 && c.Binary == "" {
		errs = append(errs, errors.New("runners: give a binary to start them"))
	}
	if s.Runners > 0 && c.SplitRunner {
		errs = append(errs, fmt.Errorf("split runner: the %s scenario runs its runner processes with runners", ScenarioScale))
	}
	if s.IdleWindow < minIdleWindow {
		errs = append(errs, fmt.Errorf("idle window %s: at least %s", s.IdleWindow, minIdleWindow))
	}
	if s.IdleSettle < 0 {
		errs = append(errs, fmt.Errorf("idle settle %s: must not be negative", s.IdleSettle))
	}
	if s.FloodTenantRate < 0 {
		errs = append(errs, fmt.Errorf("flood tenant rate %v: must not be negative", s.FloodTenantRate))
	}
	if s.DeployTimeout < 0 {
		errs = append(errs, fmt.Errorf("deploy timeout %s: must not be negative", s.DeployTimeout))
	}
	if c.FindMax {
		errs = append(errs, fmt.Errorf("find-max: the %s scenario runs at one rate", ScenarioScale))
	}
	if s.Active > 0 && int64((c.Duration+c.Warmup).Seconds()*c.Rate/float64(s.Active)) < 1 {
		errs = append(errs, errors.New("duration × rate sends no message to each active integration"))
	}
	return errors.Join(errs...)
}

// scaleRun is one run of the scale scenario against one stack.
type scaleRun struct {
	cfg     Config
	stack   *Stack
	runners []*RunnerProcess
	admin   *client.API
	js      jetstream.JetStream // the platform account's
	http    *http.Client
	// runID makes the tenants' IDs unique to this run: a deleted tenant's
	// ID is never reused.
	runID string
	// postgresPID is the stack's PostgreSQL server (0: not measured).
	postgresPID int
	// idleStackCores is the stack process's CPU, in cores, in the last
	// idle window.
	idleStackCores float64
}

// runScale runs the scale scenario on stack: create the tenants, measure
// the stack idle, deploy the integrations, measure it idle again, load the
// active integrations, load the first of them alone at the same total rate
// (and, with a flood rate, load them all again beside the flooding
// tenant), run the baseline, and remove the tenants from an
// attached stack.
func runScale(ctx context.Context, cfg Config, stack *Stack) (_ *Report, err error) {
	sc := cfg.Scale
	key, err := os.ReadFile(filepath.Join(stack.DataDir, devstack.AdminKeyFile))
	if err != nil {
		return nil, fmt.Errorf("the %s scenario creates tenants through the API with the stack's admin key: %w", ScenarioScale, err)
	}
	if sc.Runners > 0 && stack.Endpoints.Runner {
		return nil, fmt.Errorf("the stack on %s runs its own runner, which would share the work with the bench's runners: start it with vrsky dev --runner=false", stack.DataDir)
	}
	s := &scaleRun{cfg: cfg, stack: stack, http: NewClient(scaleAPIConcurrency * 2), runID: randomID(), postgresPID: postgresPID(stack.DataDir)}
	defer s.http.CloseIdleConnections()
	if s.admin, err = client.New("http://"+stack.Endpoints.HTTP, string(key), client.WithHTTPClient(s.http)); err != nil {
		return nil, err
	}
	for i := range sc.Runners {
		began := time.Now()
		name := fmt.Sprintf("%s%d", scaleRunnerPrefix, i+1)
		fmt.Fprintf(cfg.Progress, "starting runner %s (%s runner --dev %s)…\n", name, cfg.Binary, stack.DataDir)
		rp, startErr := StartNamedRunner(ctx, cfg.Binary, stack.DataDir, name, cfg.Env)
		if startErr != nil {
			return nil, startErr
		}
		// Deferred after the stack's Close, so they stop first.
		defer func() { err = errors.Join(err, rp.Close()) }()
		s.runners = append(s.runners, rp)
		fmt.Fprintf(cfg.Progress, "runner %s ready in %s (pid %d)\n", name, time.Since(began).Round(time.Millisecond), rp.PID)
	}
	nc, err := nats.Connect(stack.Endpoints.NATS, append(stack.Endpoints.NATSOptions(), nats.Name("vrsky-bench"))...)
	if err != nil {
		return nil, fmt.Errorf("connect to the stack's nats: %w", err)
	}
	defer nc.Close()
	if s.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.js = natscluster.WithReplicas(s.js, stack.Endpoints.NATSReplicas)
	return s.run(ctx)
}

func (s *scaleRun) run(ctx context.Context) (_ *Report, err error) {
	cfg, sc := s.cfg, s.cfg.Scale
	out := &ScaleReport{Tenants: sc.Tenants, Integrations: sc.Integrations, Active: sc.Active, Runners: sc.Runners,
		FloodTenantRate: sc.FloodTenantRate}

	tenants := make([]string, sc.Tenants)
	for i := range tenants {
		tenants[i] = s.tenantID(fmt.Sprintf("%03d", i))
	}
	fmt.Fprintf(cfg.Progress, "creating %d tenants through the API…\n", len(tenants))
	began := time.Now()
	clients, err := s.createTenants(ctx, tenants)
	if !s.stack.Owned() {
		defer func() { err = errors.Join(err, s.removeTenants(ctx, tenants)) }()
	}
	if err != nil {
		return nil, err
	}
	out.TenantsSeconds = time.Since(began).Seconds()
	fmt.Fprintf(cfg.Progress, "%d tenants active in %s\n", len(tenants), time.Since(began).Round(time.Millisecond))

	fmt.Fprintf(cfg.Progress, "idle with no integration for %s…\n", sc.IdleWindow)
	if out.IdleNone, err = s.measureIdle(ctx, 0); err != nil {
		return nil, err
	}

	items := make([]*scaleIntegration, sc.Integrations)
	for i := range items {
		t := tenants[i%len(tenants)]
		items[i] = &scaleIntegration{tenant: t, name: fmt.Sprintf("scale-%05d", i), api: clients[t]}
	}
	fmt.Fprintf(cfg.Progress, "deploying %d integrations through the API…\n", len(items))
	out.Deploy = s.deploy(ctx, items, sc.DeployTimeout)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "%d of %d integrations running in %.1f s (%.1f deploys/s), %d failed\n",
		out.Deploy.Running, out.Deploy.Requested, out.Deploy.Seconds, out.Deploy.PerSecond, out.Deploy.Failed)
	out.StatusRunners = statusRunners(items)

	fmt.Fprintf(cfg.Progress, "resting %s, then idle with %d integrations for %s…\n", sc.IdleSettle, out.Deploy.Running, sc.IdleWindow)
	if err := sleep(ctx, sc.IdleSettle); err != nil {
		return nil, err
	}
	if out.IdleDeployed, err = s.measureIdle(ctx, out.Deploy.Running); err != nil {
		return nil, err
	}
	out.PerIntegrationRSSKB = perIntegrationKB(out.IdleNone, out.IdleDeployed)
	out.RunnerRegistry = readRunnerRegistry(ctx, s.js)

	var active []*scaleIntegration
	for _, it := range items {
		if len(active) < sc.Active && !it.running.IsZero() {
			active = append(active, it)
		}
	}
	if len(active) == 0 {
		return nil, fmt.Errorf("no integration running after %s: nothing to load (first errors: %s)", sc.DeployTimeout, strings.Join(out.Deploy.Errors, "; "))
	}
	if len(active) < sc.Active {
		fmt.Fprintf(cfg.Progress, "only %d integrations running: the load is spread over them\n", len(active))
	}
	quiet, err := s.loadPhase(ctx, phaseQuiet, active, nil)
	if err != nil {
		return nil, err
	}
	out.Phases = append(out.Phases, quiet.ScalePhase)
	rep := s.report(quiet)

	// The same total rate on one integration: what spread load is compared
	// with, in the same run on the same stack.
	one, err := s.loadPhase(ctx, phaseOne, active[:1], nil)
	if err != nil {
		return nil, err
	}
	out.Phases = append(out.Phases, one.ScalePhase)
	if one.P99 > 0 {
		spread, single, ratio := quiet.P99, one.P99, quiet.P99/one.P99
		out.SpreadP99Ms, out.OneIntegrationP99Ms, out.SpreadToOneP99 = &spread, &single, &ratio
	}

	if sc.FloodTenantRate > 0 {
		flood, floodErr := s.floodIntegration(ctx)
		if !s.stack.Owned() {
			defer func() { err = errors.Join(err, s.removeTenants(ctx, []string{s.tenantID("flood")})) }()
		}
		if floodErr != nil {
			return nil, floodErr
		}
		flooded, loadErr := s.loadPhase(ctx, phaseFlood, active, flood)
		if loadErr != nil {
			return nil, loadErr
		}
		out.Phases = append(out.Phases, flooded.ScalePhase)
		without, with := quiet.P99, flooded.P99
		out.QuietP99WithoutFloodMs, out.QuietP99WithFloodMs = &without, &with
	}
	rep.Scale = out
	if !cfg.NoBaseline {
		fmt.Fprintf(cfg.Progress, "baseline: raw JetStream publish+consume for %s…\n", cfg.Duration)
		b, err := Baseline(ctx, s.stack.Endpoints.NATS, cfg.Size, cfg.Duration, s.stack.Endpoints.NATSReplicas, s.stack.Endpoints.NATSOptions()...)
		if err != nil {
			return nil, err
		}
		rep.setBaseline(b)
	}
	return rep, nil
}

// tenantID is the ID of one of the run's tenants.
func (s *scaleRun) tenantID(suffix string) string { return "bs-" + s.runID + "-" + suffix }

// floodIntegration creates the flooding tenant and deploys its one
// integration.
func (s *scaleRun) floodIntegration(ctx context.Context) (*scaleIntegration, error) {
	tenant := s.tenantID("flood")
	fmt.Fprintf(s.cfg.Progress, "creating the flooding tenant %s…\n", tenant)
	clients, err := s.createTenants(ctx, []string{tenant})
	if err != nil {
		return nil, err
	}
	flood := &scaleIntegration{tenant: tenant, name: "flood", api: clients[tenant]}
	d := s.deploy(ctx, []*scaleIntegration{flood}, s.cfg.Scale.DeployTimeout)
	if d.Running != 1 {
		return nil, fmt.Errorf("flooding integration %s/%s not running: %s", tenant, flood.name, strings.Join(d.Errors, "; "))
	}
	return flood, nil
}

// report is the run's report with the quiet phase's figures as its own.
func (s *scaleRun) report(quiet *phaseResult) *Report {
	cfg := s.cfg
	p := quiet.ScalePhase
	rep := &Report{
		Scenario: ScenarioScale, Integration: fmt.Sprintf("%d of %d integrations", len(p.Integrations), cfg.Scale.Integrations),
		OfferedRate: p.OfferedRate, SustainedRate: p.SustainedRate, InputRate: p.SustainedRate,
		P50: p.P50, P99: p.P99, P999: p.P999, Max: p.Max, Mean: p.Mean, AckP50: quiet.ack.P50, AckP99: quiet.ack.P99,
		Sent: p.Sent, Errors: p.Errors, ErrorsByStatus: p.ErrorsByStatus, Expected: p.Expected, Delivered: p.Delivered,
		Lost: p.Lost, Duplicates: p.Duplicates, Unexpected: p.Unexpected, Malformed: p.Malformed, Unknown: p.Unknown,
		DrainSeconds: p.DrainSeconds, MessageSize: cfg.Size, DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		Workers: cfg.Workers, Batch: cfg.Batch, Durability: durabilityOf(s.stack.Endpoints.NATSReplicas, cfg.SinkNoFsync), NoIdempotencyKey: cfg.NoIdempotencyKey, KeyMemory: cfg.KeyMemory, StackOwned: s.stack.Owned(), Machine: ThisMachine(),
		StackIdleCores:    s.idleStackCores,
		LoadgenCPUSeconds: quiet.loadgenCPU.Seconds(),
	}
	for _, u := range p.Processes {
		if u.PID == s.stack.PID {
			rep.StackCPUSeconds, rep.RSSBeforeMB, rep.PeakRSSMB = u.CPUSeconds, u.RSSStartMB, u.PeakRSSMB
			continue
		}
		cpu, peak, before := u.CPUSeconds, u.PeakRSSMB, u.RSSStartMB
		if rep.RunnerCPUSeconds != nil {
			cpu += *rep.RunnerCPUSeconds
			peak = max(peak, *rep.RunnerPeakRSSMB)
			before += *rep.RunnerRSSBeforeMB
		}
		rep.RunnerCPUSeconds, rep.RunnerPeakRSSMB, rep.RunnerRSSBeforeMB = &cpu, &peak, &before
	}
	if rep.Delivered > 0 {
		rep.CPUSecondsPerMillion = rep.StackCPUSeconds / float64(rep.Delivered) * 1e6
		if rep.RunnerCPUSeconds != nil {
			perMillion := *rep.RunnerCPUSeconds / float64(rep.Delivered) * 1e6
			rep.RunnerCPUSecondsPerMillion = &perMillion
		}
	}
	return rep
}

// removeTenants deletes the run's tenants from an attached stack (their
// integrations, streams and accounts go with them), waits up to
// tenantRemoveTimeout until they are deleted — their runners stop
// writing — and removes their sink files and keys.
func (s *scaleRun) removeTenants(ctx context.Context, tenants []string) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, t := range tenants {
		r, err := s.admin.DeleteTenantWithResponse(ctx, t)
		if err := client.Check("remove benchmark tenant "+t, r, err, http.StatusAccepted, http.StatusNotFound); err != nil {
			errs = append(errs, err)
		}
	}
	deadline := time.Now().Add(tenantRemoveTimeout)
	for _, t := range tenants {
		for time.Now().Before(deadline) {
			r, err := s.admin.GetTenantWithResponse(ctx, t)
			if err == nil && (r.StatusCode() == http.StatusNotFound || (r.JSON200 != nil && r.JSON200.Status == client.TenantStatusDeleted)) {
				break
			}
			_ = sleep(ctx, 100*time.Millisecond)
		}
		if err := os.RemoveAll(filepath.Join(s.stack.DataDir, "files", t)); err != nil {
			errs = append(errs, fmt.Errorf("remove benchmark tenant %s's files: %w", t, err))
		}
		_ = os.Remove(s.keyFile(t))
	}
	return errors.Join(errs...)
}

// keyFile is where tenant's first API key is kept.
func (s *scaleRun) keyFile(tenant string) string {
	return filepath.Join(s.stack.DataDir, "keys", tenant+".key")
}
