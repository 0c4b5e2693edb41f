// Package roles builds VRSky's three roles — the API, the control-plane
// worker and the hot-path runner — from connections to their
// infrastructure. Production runs each role in its own process against real
// servers (`vrsky api|worker|runner`); `vrsky dev` runs all three in one
// process against embedded servers. Both wire roles through this package so
// they cannot drift apart.
//
// It only wires and starts; it holds no business logic, and it never starts
// infrastructure (that is cmd/vrsky/internal/devstack's job).
package roles

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/history"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natsmetrics"
	"github.com/vrsky/vrsky/internal/provision"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/workflows"
)

// Deps are the connections roles use; each role needs only some of them.
type Deps struct {
	DB *pgxpool.Pool
	// NATS and JS are the platform account's connection.
	NATS *nats.Conn
	JS   jetstream.JetStream
	// Accounts gives each tenant's JetStream; nil means every tenant
	// shares JS's account.
	Accounts dataplane.Accounts
	// NATSAdmin creates and deletes tenant accounts; nil when tenants share
	// one account.
	NATSAdmin *natsauth.Admin
	Temporal  client.Client
	Blobs     *blobstore.Store
	// Registry collects every role's metrics for /metrics.
	Registry *prometheus.Registry
	// FileRoot holds each tenant's directory for file connectors.
	FileRoot string
	// AdminKeyHash is the SHA-256 of the platform admin key; empty means
	// no admin key.
	AdminKeyHash []byte
	// Profiling serves Go's /debug/pprof on the API (vrsky dev only).
	Profiling bool
	// Tenancy gives connectors their tenant's secrets, allowed environment
	// variables and egress policy; nil gives them none. WireTenancy sets it
	// with the fields below.
	Tenancy sdk.Tenancy
	// TenantEnvAllowed is the operator's allow-list of environment
	// variables tenants may read; the API refuses specs with others.
	TenantEnvAllowed func(name string) bool
	// SecretKeys seals and opens tenant secrets; nil: none can be written.
	SecretKeys *secretbox.KeyRing
	// Secrets is the mirror of tenants' sealed secrets the runners read.
	Secrets *tenancy.SecretsKV
	// AdminElsewhere keeps /metrics, pprof and /readyz's details off the
	// API's listener: the production api role serves them on its admin
	// listener (HealthHandler). vrsky dev leaves it unset: one port.
	AdminElsewhere bool
	// TrustedProxies are the proxies in front of the webhook ingress whose
	// X-Forwarded-For is believed (api.Webhooks.TrustedProxies).
	TrustedProxies []netip.Prefix
	// WebhookKeyTTL is how long the webhook ingress remembers a message ID
	// and its body's digest; 0 means dataplane.DefaultIdempotencyTTL (24 h).
	WebhookKeyTTL time.Duration
	// WebhookTenantKeys bounds the delivery keys each tenant has
	// remembered at once (dataplane.Idempotency.MaxTenantKeys): 0 means
	// dataplane.DefaultTenantKeys, less than 0 no bound.
	WebhookTenantKeys int64
	// IntegrationLatency labels the runner's latency histograms by
	// integration too (VRSKY_METRICS_INTEGRATION_LATENCY).
	IntegrationLatency bool
	// NATSMonitorURLs are the NATS servers' monitoring URLs whose health
	// the worker exposes as vrsky_nats_* metrics (VRSKY_NATS_MONITOR_URLS);
	// none: no NATS metrics.
	NATSMonitorURLs []string
	// Provisioner makes tenants' dedicated NATS instances (the worker);
	// nil: tenants stay on the shared cluster.
	Provisioner provision.Provisioner
	// Placement decides when tenants move by themselves; the zero value
	// is activities.DefaultPlacementPolicy.
	Placement activities.PlacementPolicy
	Logger    *slog.Logger
}

// Checks returns a readiness probe for each connection that is set.
func (d Deps) Checks() []api.Check {
	var checks []api.Check
	if d.DB != nil {
		checks = append(checks, api.Check{Name: "postgres", Probe: d.DB.Ping})
	}
	if d.NATS != nil {
		checks = append(checks, api.Check{Name: "nats", Probe: func(ctx context.Context) error {
			if st := d.NATS.Status(); st != nats.CONNECTED {
				return fmt.Errorf("connection %s", st)
			}
			_, err := d.JS.AccountInfo(ctx)
			return err
		}})
	}
	if d.Temporal != nil {
		checks = append(checks, api.Check{Name: "temporal", Probe: func(ctx context.Context) error {
			_, err := d.Temporal.CheckHealth(ctx, nil)
			return err
		}})
	}
	if d.Blobs != nil {
		checks = append(checks, api.Check{Name: "s3", Probe: d.Blobs.Ping})
	}
	return checks
}

func (d Deps) claims() *dataplane.ClaimCheck {
	c := &dataplane.ClaimCheck{Store: d.Blobs}
	if d.Registry != nil {
		c.Errors = hotpath.NewClaimErrors(d.Registry)
	}
	return c
}

func (d Deps) accounts() dataplane.Accounts {
	if d.Accounts != nil {
		return d.Accounts
	}
	return dataplane.SharedAccount{JS: d.JS}
}

// Role is a started role.
type Role struct {
	// Stop drains the role within ctx's deadline.
	Stop func(ctx context.Context) error
	// Failed delivers an error if the role stops on its own, and is closed
	// when the role has stopped; nil for roles that cannot fail on their own.
	Failed <-chan error
}

// control is the control-plane client on d.Temporal; nil without it.
func (d Deps) control() *control.Client {
	if d.Temporal == nil {
		return nil
	}
	return control.New(d.Temporal)
}

// stickyWorkflowCacheSize bounds the workflows a worker keeps in memory
// between their tasks. Each integration's lifecycle workflow waits for
// signals for the integration's whole life; the SDK's default (10,000)
// kept one goroutine and its state per deployed integration. A workflow
// evicted from the cache is replayed from its history at its next signal
// (a deploy, a stop), which is rare and short.
//
// The SDK reads the size once, when the process's first worker is made,
// and `vrsky dev`'s embedded Temporal server makes its own workers before
// the worker role starts: the size is set when this package is loaded, so
// that it holds whoever makes the first worker.
const stickyWorkflowCacheSize = 128

func init() { worker.SetStickyWorkflowCacheSize(stickyWorkflowCacheSize) }

// StartWorker starts the control-plane Temporal worker and makes sure the
// platform's schedules exist.
func StartWorker(ctx context.Context, d Deps) (*Role, error) {
	state, err := dataplane.OpenState(ctx, d.JS)
	if err != nil {
		return nil, err
	}
	var opts worker.Options
	if d.Registry != nil {
		opts.Interceptors = append(opts.Interceptors, newProvisioningMetrics(d.Registry))
		if len(d.NATSMonitorURLs) > 0 {
			nats, err := natsmetrics.New(d.NATSMonitorURLs)
			if err != nil {
				return nil, err
			}
			if err := d.Registry.Register(nats); err != nil {
				return nil, fmt.Errorf("register NATS metrics: %w", err)
			}
		}
	}
	w := worker.New(d.Temporal, wire.ControlTaskQueue, opts)
	w.RegisterWorkflow(workflows.BlobJanitor)
	w.RegisterActivity(&activities.Blobs{Store: d.Blobs})
	w.RegisterWorkflow(workflows.IntegrationLifecycle)
	ctl := control.New(d.Temporal)
	st := store.New(d.DB)
	w.RegisterActivity(&activities.Integrations{Store: st, State: state})
	w.RegisterWorkflow(workflows.IntegrationRun)
	w.RegisterActivity(&activities.Schedules{Store: st, Control: ctl})
	w.RegisterWorkflow(workflows.DLQReplay)
	w.RegisterActivity(&activities.DLQ{Accounts: d.accounts(), Claims: d.claims(), Counts: state.Counts})
	w.RegisterWorkflow(workflows.TenantProvision)
	w.RegisterWorkflow(workflows.TenantDecommission)
	w.RegisterWorkflow(workflows.TenantLimits)
	secrets := d.Secrets
	if secrets == nil {
		// Decommissioning removes a tenant's secrets; it needs no key.
		if secrets, err = tenancy.OpenSecretsKV(ctx, d.JS, nil); err != nil {
			return nil, err
		}
	}
	w.RegisterActivity(&activities.Tenants{
		Store: st, NATS: d.NATSAdmin, Accounts: d.accounts(), Blobs: d.Blobs, State: state, Control: ctl,
		Secrets: secrets,
	})
	located, closeLocated, err := d.located(ctx)
	if err != nil {
		return nil, err
	}
	policy := d.placementPolicy()
	w.RegisterWorkflow(workflows.TenantPlacement)
	w.RegisterWorkflow(workflows.PlacementSweep)
	w.RegisterActivity(&activities.Placement{Store: st, JS: d.JS, Accounts: located, Provisioner: d.Provisioner,
		Keys: d.SecretKeys, Policy: policy, Request: ctl.RequestPlacement})
	if err := w.Start(); err != nil {
		closeLocated()
		return nil, fmt.Errorf("start control-plane worker: %w", err)
	}
	if err := ctl.EnsureBlobJanitorSchedule(ctx); err != nil {
		w.Stop()
		closeLocated()
		return nil, err
	}
	if err := ctl.EnsurePlacementSweepSchedule(ctx, policy.SweepEvery); err != nil {
		w.Stop()
		closeLocated()
		return nil, err
	}
	// The metrics history the API serves: samples of running integrations.
	sampler := &history.Sampler{State: state, Accounts: d.accounts(), Store: store.New(d.DB), Logger: d.Logger}
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if err := sampler.Run(sampling); err != nil && d.Logger != nil {
			d.Logger.Error("metrics history sampler stopped", "error", err)
		}
	}()
	return &Role{Stop: func(context.Context) error { stopSampling(); <-sampled; w.Stop(); closeLocated(); return nil }}, nil
}

// located returns d's accounts as LocatedAccounts, following the
// placements bucket itself when d.Accounts does not (close stops that).
func (d Deps) located(ctx context.Context) (_ dataplane.LocatedAccounts, close func(), err error) {
	if located, ok := d.accounts().(dataplane.LocatedAccounts); ok {
		return located, func() {}, nil
	}
	kv, err := dataplane.OpenPlacements(ctx, d.JS)
	if err != nil {
		return nil, nil, err
	}
	placed, err := dataplane.NewPlacedAccounts(ctx, kv, d.accounts(), "worker")
	if err != nil {
		return nil, nil, err
	}
	return placed, placed.Close, nil
}

// placementPolicy is d.Placement with the defaults filled in.
func (d Deps) placementPolicy() activities.PlacementPolicy {
	p, def := d.Placement, activities.DefaultPlacementPolicy
	if p == (activities.PlacementPolicy{}) {
		return def
	}
	p.Window = cmp.Or(p.Window, def.Window)
	p.DemoteAfter = cmp.Or(p.DemoteAfter, def.DemoteAfter)
	p.CheckEvery = cmp.Or(p.CheckEvery, def.CheckEvery)
	p.SweepEvery = cmp.Or(p.SweepEvery, def.SweepEvery)
	return p
}

// StartRunner starts a hot-path runner named name.
func StartRunner(d Deps, name string) *Role {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	failed := make(chan error, 1)
	hotRate, hotErr := HotRatePerRunnerFromEnv()
	runner := &hotpath.Runner{
		JS: d.JS, Accounts: d.accounts(), Catalog: connectors.Catalog(), Tenancy: d.Tenancy, Claims: d.claims(),
		Metrics:  hotpath.NewMetricsWithOptions(d.Registry, hotpath.MetricsOptions{IntegrationLatency: d.IntegrationLatency}),
		FileRoot: d.FileRoot, Name: name, Logger: d.Logger, HotRatePerRunner: hotRate,
	}
	go func() {
		defer close(done)
		defer close(failed)
		if hotErr != nil {
			failed <- hotErr
			return
		}
		if err := runner.Run(ctx); err != nil {
			failed <- fmt.Errorf("hot-path runner: %w", err)
		}
	}()
	return &Role{Failed: failed, Stop: func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// NewAPI builds the API with the webhook ingress; Stop releases what the
// ingress follows. webhookTenantRate bounds each tenant's webhook requests
// per second: 0 means api.DefaultWebhookTenantRate (with its burst), a
// negative rate means unlimited.
func NewAPI(ctx context.Context, d Deps, version string, webhookTenantRate float64) (*api.Server, *Role, error) {
	state, err := dataplane.OpenState(ctx, d.JS)
	if err != nil {
		return nil, nil, err
	}
	cache, err := dataplane.WatchDesired(ctx, state)
	if err != nil {
		return nil, nil, err
	}
	followCtx, stopFollowing := context.WithCancel(context.WithoutCancel(ctx))
	if err := state.IngressQuotas.Follow(followCtx); err != nil {
		stopFollowing()
		cache.Stop()
		return nil, nil, err
	}
	opts := api.Options{Version: version, Checks: d.Checks(), Gatherer: d.Registry, Registerer: d.Registry, Logger: d.Logger, AdminKeyHash: d.AdminKeyHash,
		Control: d.control(), State: state, Accounts: d.accounts(), Claims: d.claims(), Profiling: d.Profiling, Public: d.AdminElsewhere,
		TenantEnvAllowed: d.TenantEnvAllowed, SecretKeys: d.SecretKeys, SecretMirror: d.Secrets, Tenancy: d.Tenancy,
		KeyRate: api.DefaultKeyRate, KeyBurst: api.DefaultKeyBurst, TenantRate: api.DefaultTenantRate, TenantBurst: api.DefaultTenantBurst}
	if d.DB != nil {
		st := store.New(d.DB)
		opts.Auth, opts.Store = st, st
	}
	srv := api.New(opts)
	publisher := &dataplane.Publisher{Accounts: d.accounts(), Claims: d.claims()}
	idempotency := &dataplane.Idempotency{Publisher: publisher, TTL: d.WebhookKeyTTL, MaxTenantKeys: tenantKeys(d.WebhookTenantKeys),
		TenantKeys: state.IngressQuotas, Logger: d.Logger}
	go idempotency.CountKeys(followCtx)
	registerKeyLimitMetric(d.Registry, idempotency)
	hooks := &api.Webhooks{
		Pipelines: cache, Publisher: publisher,
		Idempotency: idempotency,
		Tenancy:     d.Tenancy, Logger: d.Logger, Rates: state.IngressQuotas, TrustedProxies: d.TrustedProxies,
	}
	switch {
	case webhookTenantRate == 0:
		hooks.TenantRate, hooks.TenantBurst = api.DefaultWebhookTenantRate, api.DefaultWebhookTenantBurst
	case webhookTenantRate > 0:
		hooks.TenantRate = webhookTenantRate
	}
	srv.RegisterWebhooks(hooks)
	return srv, &Role{Stop: func(context.Context) error { cache.Stop(); stopFollowing(); return nil }}, nil
}

// registerKeyLimitMetric exposes how many tenants idempotency holds at
// their limit of remembered keys. A registry that has the metric already
// (a second api on it, in tests) keeps the first api's.
func registerKeyLimitMetric(reg *prometheus.Registry, idempotency *dataplane.Idempotency) {
	if reg == nil {
		return
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vrsky_webhook_tenants_at_key_limit",
		Help: "Tenants at or past their limit of remembered delivery keys at this api process's last count: their new keys are remembered for 2 minutes, not a day (docs/adr/0035).",
	}, func() float64 { return float64(idempotency.TenantsAtKeyLimit()) })
	if err := reg.Register(gauge); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			panic(err)
		}
	}
}

// tenantKeys is the limit of remembered keys per tenant that configured
// means: 0 the default, less than 0 none.
func tenantKeys(configured int64) int64 {
	switch {
	case configured == 0:
		return dataplane.DefaultTenantKeys
	case configured < 0:
		return 0
	}
	return configured
}

// Serve serves handler on addr and returns the bound address.
func Serve(ctx context.Context, addr string, handler http.Handler) (string, *Role, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen for HTTP on %s: %w", addr, err)
	}
	srv := newHTTPServer(handler)
	done := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(done)
		defer close(failed)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("http server: %w", err)
		}
	}()
	return ln.Addr().String(), &Role{Failed: failed, Stop: func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		<-done
		return err
	}}, nil
}

// Timeouts of every role's HTTP server, so that no client holds a
// connection, or the memory behind it, for ever.
const (
	// ReadHeaderTimeout bounds the time to send a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds the time to send a whole request; the webhook
	// ingress sets a shorter body deadline of its own (30 s).
	ReadTimeout = 60 * time.Second
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// newHTTPServer is the HTTP server of every listener.
func newHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler: handler, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes,
	}
}

// HealthHandler serves /healthz, /readyz (with each dependency's state) and
// /metrics: the whole HTTP surface of the roles that have no API of their
// own, and the api role's admin listener.
func HealthHandler(d Deps) http.Handler {
	return api.New(api.Options{Checks: d.Checks(), Gatherer: d.Registry, Logger: d.Logger}).Handler()
}
