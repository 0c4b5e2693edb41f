// Package api serves VRSky's REST API with Huma v2: one file per resource,
// each with a Register function, problem-details errors, and the OpenAPI 3.1
// document at /openapi.json with its docs at /docs.
//
// Handlers validate input, check the caller's tenant, write metadata and
// start workflows; they never wait on a workflow inside a request and never
// touch message bodies beyond the webhook ingress hand-off to the hot path
// and showing a dead letter to its tenant.
package api

import (
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
)

// Options are the dependencies of the API.
type Options struct {
	// Version is reported in the OpenAPI document.
	Version string
	// Checks are the dependencies /readyz reports on.
	Checks []Check
	// Gatherer is exposed on /metrics; default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer, when set, gets the HTTP metrics (HTTPMetrics) of every
	// request this API and its webhook ingress answer; nil records none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	// Auth authenticates tenants' API keys; nil means none authenticates.
	Auth Authenticator
	// AdminKeyHash is the SHA-256 of the platform admin key, which manages
	// tenants; empty means there is no admin key.
	AdminKeyHash []byte
	// KeyRate and TenantRate bound the authenticated requests per second
	// of each API key and of all of a tenant's keys together (the platform
	// admin key has a key rate only); KeyBurst and TenantBurst are how many
	// may come at once (0: the rate). A rate of 0 means unlimited. Requests
	// over either answer 429 with Retry-After and do nothing.
	KeyRate     float64
	KeyBurst    int
	TenantRate  float64
	TenantBurst int
	// Store, when set, adds the tenant, API-key and integration operations.
	Store *store.Store
	// Control asks the control plane for lifecycles: tenants' provisioning,
	// decommissioning and limits, integrations' changes, schedules and DLQ
	// replays; nil makes those operations answer 503.
	Control *control.Client
	// State, when set with Accounts, adds the runners' live report and the
	// stages' counters to an integration's status.
	State *dataplane.State
	// Accounts, when set with Store, adds the DLQ operations, which read
	// each tenant's DLQ stream in its account; Claims fetches claim-checked
	// bodies of dead letters.
	Accounts dataplane.Accounts
	Claims   *dataplane.ClaimCheck
	// TenantEnvAllowed reports whether tenants may read an environment
	// variable with {"env": NAME}: the operator's allow-list
	// (VRSKY_TENANT_ENV_ALLOW, the runners' too). A spec holding any other
	// {"env": NAME} is refused with 422. nil allows none.
	TenantEnvAllowed func(name string) bool
	// SecretKeys seals the tenant secrets written with put-secret, and
	// SecretMirror hands them to the runners; without both, put-secret
	// answers 503 (listing and deleting still work).
	SecretKeys   *secretbox.KeyRing
	SecretMirror *tenancy.SecretsKV
	// Tenancy gives the dry run's converters and filters their tenant's
	// secrets; nil resolves none.
	Tenancy sdk.Tenancy
	// Profiling serves Go's profiles at /debug/pprof/ (for vrsky dev and
	// benchmarks; never on a public listener).
	Profiling bool
	// Public leaves out what belongs on an admin listener (AdminHandler):
	// /metrics, /debug/pprof and the dependencies' details of /readyz,
	// which then answers only ready or not. The production api role sets
	// it; vrsky dev serves everything on one port.
	Public bool
}

// egress is where the runners' copy of egress policies is written.
func (o Options) egress() *dataplane.EgressPolicies {
	if o.State == nil {
		return nil
	}
	return o.State.Egress
}

// ingressQuotas is where the ingress's copy of tenants' quotas is written.
func (o Options) ingressQuotas() *dataplane.IngressQuotas {
	if o.State == nil {
		return nil
	}
	return o.State.IngressQuotas
}

// Server is the API's HTTP handler and its Huma API, to which resources add
// their operations.
type Server struct {
	mux     *http.ServeMux
	api     huma.API
	log     *slog.Logger
	metrics *HTTPMetrics
	handler http.Handler
}

// New builds the API with its built-in operations (health, readiness,
// metrics, OpenAPI, docs) and, when opts.Store is set, the tenant, API-key
// and integration operations behind bearer authentication.
func New(opts Options) *Server {
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("VRSky API", opts.Version)
	cfg.Info.Description = "VRSky is a multi-tenant integration platform: consumers take data in, " +
		"converters and filters shape it, producers deliver it."
	// Relative: the API is at the address that serves this document.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "the address that serves this document"}}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{BearerScheme: bearerSecurityScheme()}
	useProblems()
	// First, so that the schema link transformer copies the request ID.
	cfg.Transformers = append([]huma.Transformer{problemRequestID}, cfg.Transformers...)
	humaAPI := humago.New(mux, cfg)
	log := logging.Component(logging.WithContextAttrs(opts.Logger), "api")
	// Before any operation is registered: Huma binds middlewares at
	// registration. Operations that declare no Security pass through.
	humaAPI.UseMiddleware((&auth{
		api: humaAPI, keys: opts.Auth, adminHash: opts.AdminKeyHash, log: log,
		keyLimits:    newLimiters(opts.KeyRate, opts.KeyBurst),
		tenantLimits: newLimiters(opts.TenantRate, opts.TenantBurst),
	}).middleware)

	gatherer := opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	if !opts.Public {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	if opts.Profiling && !opts.Public {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	s := &Server{mux: mux, api: humaAPI, log: log}
	if opts.Registerer != nil {
		s.metrics = NewHTTPMetrics(opts.Registerer)
	}
	s.handler = instrument(mux, s.metrics)
	if opts.Public {
		registerHealth(humaAPI, opts.Checks, false)
	} else {
		RegisterHealth(humaAPI, opts.Checks)
	}
	if opts.Store != nil {
		RegisterTenants(humaAPI, opts.Store, opts.Control, opts.Accounts, opts.ingressQuotas(), log)
		RegisterTenantPatch(humaAPI, opts.Store, opts.Control, opts.egress(), opts.ingressQuotas(), log)
		RegisterAPIKeys(humaAPI, opts.Store, log)
		RegisterIntegrations(humaAPI, opts.Store, opts.Control, opts.State, opts.Accounts, log, opts.TenantEnvAllowed, opts.Tenancy)
		RegisterSecrets(humaAPI, opts.Store, opts.SecretKeys, opts.SecretMirror, log)
		RegisterSchedules(humaAPI, opts.Store, opts.Control, opts.State, log)
	}
	if opts.Store != nil && opts.Accounts != nil {
		RegisterDLQ(humaAPI, opts.Accounts, opts.Claims, opts.Control, log)
	}
	registerConsole(humaAPI, opts, log)
	return s
}

// Handler is the root HTTP handler: every request gets a request ID
// (RequestIDHeader) and, with Options.Registerer, its HTTP metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// API is the Huma API that resources register their operations on.
func (s *Server) API() huma.API { return s.api }
