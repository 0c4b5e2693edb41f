// Package devstack assembles `vrsky dev`: every VRSky role and every
// dependency in one process, with zero configuration and all state under one
// data directory, so that a newcomer gets a working platform with one command.
//
// It wires components together and owns their start and stop order; it
// contains no business logic of its own, and it must never be used for
// production, where each role runs separately against real infrastructure.
package devstack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/dbmigrate"
	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/pgcluster"
	"github.com/vrsky/vrsky/internal/provision/local"
	"github.com/vrsky/vrsky/internal/s3dev"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/temporaldev"
	"github.com/vrsky/vrsky/ui"
)

// Defaults for the listen addresses; port 0 anywhere picks a free port.
const (
	DefaultHTTPAddr       = "127.0.0.1:8080"
	DefaultNATSAddr       = "127.0.0.1:4222"
	DefaultTemporalAddr   = "127.0.0.1:7233"
	DefaultTemporalUIAddr = "127.0.0.1:8233"
	DefaultS3Addr         = "127.0.0.1:9000"
	DefaultPostgresPort   = 5433
	// DefaultWebhookTenantRate is each tenant's webhook rate limit (requests
	// per second) until tenants get their own quotas.
	DefaultWebhookTenantRate = 50000

	// Bucket is the blob-store bucket that holds claim-checked payloads.
	Bucket = "vrsky"
	// DatabaseName is the metadata database created in the private cluster.
	DatabaseName = "vrsky"
	// ShutdownTimeout is how long Shutdown may take in all.
	ShutdownTimeout = 15 * time.Second

	s3AccessKey = "vrsky-dev"
	s3SecretKey = "vrsky-dev-secret"
)

// Config configures the dev stack. Empty addresses take the defaults above.
type Config struct {
	DataDir        string
	HTTPAddr       string
	NATSAddr       string
	TemporalAddr   string
	TemporalUIAddr string
	S3Addr         string
	// NATSNodes is how many embedded NATS servers run: 0 or 1 for one,
	// 3 for a cluster in this process (the first node on NATSAddr, the
	// others on free ports) whose streams and KV buckets keep three
	// replicas, so that a node loss can be tried on a laptop.
	NATSNodes int
	// NATSURL, when set, is a NATS server or cluster (comma-separated
	// URLs) to use instead of embedded ones. It must trust the keys in
	// DATA_DIR/nats-keys.json (`vrsky nats-config -keys …`); NATSReplicas
	// says how many replicas its streams and KV buckets get.
	NATSURL string
	// NATSReplicas is the replica count of every stream and KV bucket;
	// 0 means NATSNodes (embedded) or 1 (NATSURL).
	NATSReplicas int
	// NATSMonitorURLs are an external NATS's monitoring URLs, for the
	// worker's vrsky_nats_* metrics; none: no NATS metrics.
	NATSMonitorURLs []string
	// PostgresPort is the private cluster's port; -1 means the default.
	PostgresPort int
	// DatabaseURL, when set, is used instead of a private cluster.
	DatabaseURL string
	// WebhookTenantRate bounds each tenant's webhook requests per second
	// (0 = DefaultWebhookTenantRate, negative = unlimited).
	WebhookTenantRate float64
	// WebhookTenantKeys bounds the delivery keys each tenant has
	// remembered at once (0 = dataplane.DefaultTenantKeys, negative =
	// unlimited; docs/adr/0035).
	WebhookTenantKeys int64
	// NoRunner leaves the hot-path runner out: deployed integrations wait,
	// not running, until a runner attaches (`vrsky runner --dev DATA_DIR`,
	// configured by RoleConfig), so that it can run and be measured in a
	// process of its own.
	NoRunner bool
	// TenantEnvAllow lists the environment variables tenants may read with
	// {"env": NAME} (glob patterns); nil allows none, as in production.
	// Tenants keep their settings in tenant secrets ({"secret": NAME}).
	TenantEnvAllow []string
	// SecretKeys seals and opens tenant secrets; nil means the key ring
	// kept in DATA_DIR/secrets-key, created on first start.
	SecretKeys *secretbox.KeyRing
	// IntegrationLatency labels the runner's latency histograms by
	// integration too (VRSKY_METRICS_INTEGRATION_LATENCY).
	IntegrationLatency bool
	// Placement decides when tenants move to a dedicated NATS instance of
	// their own (a `vrsky nats-server` process under DATA_DIR/tenant-nats);
	// the zero value is activities.DefaultPlacementPolicy.
	Placement activities.PlacementPolicy
	// TenantNATSCommand builds the process of a tenant's dedicated
	// instance from its configuration file; nil runs this executable's
	// `nats-server` command (tests re-run their own binary).
	TenantNATSCommand func(configFile string) *exec.Cmd
	Version           string
	Logger            *slog.Logger
}

func (c *Config) applyDefaults() {
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	set(&c.DataDir, ".vrsky")
	set(&c.HTTPAddr, DefaultHTTPAddr)
	set(&c.NATSAddr, DefaultNATSAddr)
	set(&c.TemporalAddr, DefaultTemporalAddr)
	set(&c.TemporalUIAddr, DefaultTemporalUIAddr)
	set(&c.S3Addr, DefaultS3Addr)
	if c.PostgresPort < 0 {
		c.PostgresPort = DefaultPostgresPort
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WebhookTenantRate == 0 {
		c.WebhookTenantRate = DefaultWebhookTenantRate
	}
}

// Stack is a running dev stack.
type Stack struct {
	cfg       Config
	log       *slog.Logger
	endpoints Endpoints
	errs      chan error
	// natsMonitors are the NATS servers' monitoring URLs.
	natsMonitors []string
	// natsCluster is the embedded cluster under Config.NATSNodes > 1.
	natsCluster *natsserver.Cluster
	// natsServer is the embedded standalone server, nil otherwise.
	natsServer *natsserver.Server

	// stops run in reverse order of starting.
	stops    []namedStop
	stopOnce sync.Once
	stopErr  error
}

// Start brings every component up in dependency order, writes
// DATA_DIR/endpoints.json and returns once all are ready. On failure it stops
// whatever it had started.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg.applyDefaults()
	log := logging.Component(cfg.Logger, "dev")
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dataDir
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, log: log, errs: make(chan error, 4)}
	s.onStop("data directory lock", func(context.Context) error { lock.release(); return nil })
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			defer cancel()
			_ = s.Shutdown(ctx)
		}
	}()
	began := time.Now()
	log.Info("starting VRSky dev stack", "data_dir", dataDir, "version", cfg.Version)

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	roles.RegisterBuildInfo(registry, cmp.Or(cfg.Version, "dev"), "dev")

	pool, err := s.startPostgres(ctx)
	if err != nil {
		return nil, err
	}
	natsConns, err := s.startNATS(ctx)
	if err != nil {
		return nil, err
	}
	tc, err := s.startTemporal(ctx, registry)
	if err != nil {
		return nil, err
	}
	blobs, err := s.startS3(ctx)
	if err != nil {
		return nil, err
	}
	admin, err := adminKey(dataDir)
	if err != nil {
		return nil, err
	}
	deps := roles.Deps{
		DB: pool, NATS: natsConns.Conn, JS: natsConns.JS, Accounts: natsConns.Accounts, NATSAdmin: natsConns.Admin, Temporal: tc, Blobs: blobs, Registry: registry,
		FileRoot: filepath.Join(dataDir, "files"), AdminKeyHash: store.HashSecret(admin), Logger: cfg.Logger, Profiling: true,
		IntegrationLatency: cfg.IntegrationLatency, NATSMonitorURLs: s.natsMonitors,
		Placement: cfg.Placement, Provisioner: s.tenantInstances(dataDir),
	}
	keys := cfg.SecretKeys
	if keys == nil {
		if keys, err = secretbox.LoadOrCreateFile(filepath.Join(dataDir, SecretsKeyFile)); err != nil {
			return nil, err
		}
	}
	if err := roles.WireTenancy(ctx, &deps, cfg.TenantEnvAllow, keys); err != nil {
		return nil, err
	}
	if err := s.startRoles(ctx, deps); err != nil {
		return nil, err
	}

	if err := writeEndpoints(dataDir, s.endpoints); err != nil {
		return nil, err
	}
	ep := s.endpoints
	log.Info("VRSky dev stack ready",
		"took", time.Since(began).Round(time.Millisecond).String(),
		"api", "http://"+ep.HTTP,
		"ui", "http://"+ep.HTTP+"/ui/",
		"docs", "http://"+ep.HTTP+"/docs",
		"readyz", "http://"+ep.HTTP+"/readyz",
		"metrics", "http://"+ep.HTTP+"/metrics",
		"temporal_ui", ep.TemporalUI,
		"temporal", ep.Temporal,
		"nats", ep.NATS,
		"s3", ep.S3,
		"postgres", ep.Postgres,
		"endpoints_file", filepath.Join(dataDir, EndpointsFile),
		"admin_key_file", filepath.Join(dataDir, AdminKeyFile),
		"secrets_key_file", filepath.Join(dataDir, SecretsKeyFile))
	return s, nil
}

// tenantInstances runs tenants' dedicated NATS instances as processes of
// their own under dataDir/tenant-nats, stopped with the stack.
func (s *Stack) tenantInstances(dataDir string) *local.Provisioner {
	p := &local.Provisioner{Dir: filepath.Join(dataDir, "tenant-nats"), Command: s.cfg.TenantNATSCommand,
		Logger: logging.Component(s.cfg.Logger, "tenant-nats")}
	s.onStop("tenant NATS instances", func(context.Context) error { p.Close(); return nil })
	return p
}

// Endpoints returns where each component listens.
func (s *Stack) Endpoints() Endpoints { return s.endpoints }

// NATSCluster is the embedded NATS cluster (Config.NATSNodes > 1), whose
// nodes can be stopped and restarted to try a node loss; nil otherwise.
func (s *Stack) NATSCluster() *natsserver.Cluster { return s.natsCluster }

// Errors delivers failures of components that stopped on their own while the
// stack was running; the caller should shut down on the first.
func (s *Stack) Errors() <-chan error { return s.errs }

// Shutdown drains and stops every component in reverse start order within
// ctx's deadline. It is idempotent.
func (s *Stack) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		for i := len(s.stops) - 1; i >= 0; i-- {
			if err := s.stops[i].stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
		s.log.Info("VRSky dev stack stopped")
	})
	return s.stopErr
}

// namedStop stops one started part of the stack.
type namedStop struct {
	name string
	stop func(context.Context) error
}

func (s *Stack) onStop(name string, stop func(context.Context) error) {
	s.stops = append(s.stops, namedStop{name: name, stop: func(ctx context.Context) error {
		if err := stop(ctx); err != nil {
			s.log.Warn("stop failed", "part", name, "error", err)
			return fmt.Errorf("stop %s: %w", name, err)
		}
		s.log.Info("stopped", "part", name)
		return nil
	}})
}

func (s *Stack) fail(err error) {
	select {
	case s.errs <- err:
	default:
	}
}

func (s *Stack) startPostgres(ctx context.Context) (*pgxpool.Pool, error) {
	url := s.cfg.DatabaseURL
	if url == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{
			Dir: filepath.Join(s.cfg.DataDir, "postgres"), Port: s.cfg.PostgresPort, Logger: s.cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		s.onStop("postgres", cluster.Stop)
		if err := cluster.CreateDatabase(ctx, DatabaseName); err != nil {
			return nil, err
		}
		url = cluster.URL(DatabaseName)
		s.log.Info("postgres ready", "url", url, "dir", filepath.Join(s.cfg.DataDir, "postgres"))
	} else {
		s.log.Info("using external postgres from VRSKY_DATABASE_URL")
	}
	if err := dbmigrate.Up(ctx, url); err != nil {
		return nil, err
	}
	version, _, err := dbmigrate.Version(ctx, url)
	if err != nil {
		return nil, err
	}
	s.log.Info("migrations applied", "version", version)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s.onStop("postgres pool", func(context.Context) error { pool.Close(); return nil })
	s.endpoints.Postgres = url
	return pool, nil
}

// startNATS starts NATS in operator mode — an account per tenant — with
// the keys in DIR/nats-keys.json, and writes the platform account's
// credentials for scripts and benchmarks to DIR/platform.creds.
func (s *Stack) startNATS(ctx context.Context) (roles.NATS, error) {
	keys, err := natsauth.LoadOrCreateKeys(filepath.Join(s.cfg.DataDir, NATSKeysFile))
	if err != nil {
		return roles.NATS{}, err
	}
	replicas, err := s.startNATSServers(ctx, keys)
	if err != nil {
		return roles.NATS{}, err
	}
	s.endpoints.NATSReplicas = replicas
	creds, err := keys.PlatformUser("vrsky-dev-scripts")
	if err != nil {
		return roles.NATS{}, err
	}
	s.endpoints.NATSCreds = filepath.Join(s.cfg.DataDir, PlatformCredsFile)
	if err := creds.WriteFile(s.endpoints.NATSCreds); err != nil {
		return roles.NATS{}, err
	}
	conns, err := roles.ConnectNATS(s.endpoints.NATS, keys, "vrsky-dev", replicas, s.natsClientOptions()...)
	if err != nil {
		return roles.NATS{}, err
	}
	s.onStop("nats connections", func(context.Context) error { conns.Close(); return nil })
	return conns, nil
}

// natsClientOptions are the options of the stack's own connections on top
// of every role's (natscluster.ClientOptions). The embedded standalone
// server runs in this process and cannot go silent while the process
// lives, so the quick pings that notice a silent node
// (natscluster.PingInterval), one every 5 s on each of a connection per
// tenant, are left at nats.go's default (docs/adr/0028).
func (s *Stack) natsClientOptions() []nats.Option {
	if s.natsServer == nil {
		return nil
	}
	return []nats.Option{nats.PingInterval(nats.DefaultPingInterval)}
}

// startNATSServers starts the embedded NATS server or cluster, or takes
// Config.NATSURL's, sets the endpoints and returns the replica count.
func (s *Stack) startNATSServers(ctx context.Context, keys *natsauth.Keys) (int, error) {
	switch {
	case s.cfg.NATSURL != "":
		s.endpoints.NATS = s.cfg.NATSURL
		s.natsMonitors = s.cfg.NATSMonitorURLs
		if len(s.natsMonitors) > 0 {
			s.endpoints.NATSMonitor = s.natsMonitors[0]
		}
		s.log.Info("using external nats", "url", s.cfg.NATSURL)
		return max(s.cfg.NATSReplicas, 1), nil
	case s.cfg.NATSNodes > 1:
		cluster, err := natsserver.StartCluster(ctx, natsserver.ClusterOptions{
			Nodes: s.cfg.NATSNodes, Addr: s.cfg.NATSAddr, StoreDir: filepath.Join(s.cfg.DataDir, "nats-cluster"),
			Accounts: keys, Logger: s.cfg.Logger, Monitor: true,
		})
		if err != nil {
			return 0, err
		}
		s.onStop("nats cluster", func(context.Context) error { cluster.Shutdown(); return nil })
		s.natsCluster = cluster
		s.endpoints.NATS = cluster.ClientURLs()
		s.natsMonitors = cluster.MonitorURLs()
		s.endpoints.NATSMonitor = s.natsMonitors[0]
		s.log.Info("nats cluster ready", "urls", s.endpoints.NATS, "nodes", s.cfg.NATSNodes,
			"jetstream_dir", filepath.Join(s.cfg.DataDir, "nats-cluster"))
		return cmp.Or(s.cfg.NATSReplicas, min(s.cfg.NATSNodes, 3)), nil
	}
	storeDir := filepath.Join(s.cfg.DataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return 0, fmt.Errorf("create %s: %w", storeDir, err)
	}
	// A standalone server reserves every tenant's disk quota: overcommit
	// it, or the disk holds only a handful of tenants (docs/adr/0016).
	maxStore, err := natsauth.OvercommittedStore(storeDir)
	if err != nil {
		return 0, err
	}
	srv, err := natsserver.Start(ctx, natsserver.Options{
		Addr: s.cfg.NATSAddr, StoreDir: storeDir, MaxStore: maxStore, Logger: s.cfg.Logger, Accounts: keys,
		// Its monitoring endpoints feed the worker's vrsky_nats_* metrics.
		MonitorAddr: "127.0.0.1:0",
	})
	if err != nil {
		return 0, err
	}
	s.onStop("nats", func(context.Context) error { srv.Shutdown(); return nil })
	s.natsServer = srv
	s.endpoints.NATS = srv.ClientURL()
	s.endpoints.NATSMonitor = srv.MonitorURL()
	s.natsMonitors = []string{srv.MonitorURL()}
	s.log.Info("nats ready", "url", srv.ClientURL(), "monitor", srv.MonitorURL(), "jetstream_dir", storeDir)
	return cmp.Or(s.cfg.NATSReplicas, 1), nil
}

func (s *Stack) startTemporal(ctx context.Context, registry *prometheus.Registry) (client.Client, error) {
	srv, err := temporaldev.Start(ctx, temporaldev.Options{
		DBFile:       filepath.Join(s.cfg.DataDir, "temporal", "temporal.db"),
		FrontendAddr: s.cfg.TemporalAddr,
		UIAddr:       s.cfg.TemporalUIAddr,
		Logger:       s.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.onStop("temporal", func(context.Context) error { return srv.Stop() })
	s.endpoints.Temporal = srv.FrontendAddr()
	s.endpoints.TemporalUI = srv.UIURL()
	s.log.Info("temporal ready", "frontend", srv.FrontendAddr(), "ui", srv.UIURL(), "namespace", srv.Namespace())

	metrics, stopMetrics := roles.TemporalMetrics(registry, s.cfg.Logger)
	s.onStop("temporal metrics", func(context.Context) error { return stopMetrics.Close() })
	tc, err := client.Dial(client.Options{
		HostPort:       srv.FrontendAddr(),
		Namespace:      srv.Namespace(),
		Logger:         sdklog.NewStructuredLogger(roles.QuietLogger(s.cfg.Logger, "temporal-client")),
		MetricsHandler: metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to temporal: %w", err)
	}
	s.onStop("temporal client", func(context.Context) error { tc.Close(); return nil })
	return tc, nil
}

func (s *Stack) startS3(ctx context.Context) (*blobstore.Store, error) {
	srv, err := s3dev.Start(ctx, s3dev.Options{Dir: filepath.Join(s.cfg.DataDir, "s3"), Addr: s.cfg.S3Addr, Logger: s.cfg.Logger})
	if err != nil {
		return nil, err
	}
	s.onStop("s3", srv.Shutdown)
	store, err := blobstore.New(blobstore.Config{Endpoint: srv.Endpoint(), AccessKey: s3AccessKey, SecretKey: s3SecretKey, Bucket: Bucket})
	if err != nil {
		return nil, err
	}
	if err := store.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	s.endpoints.S3 = srv.URL()
	s.log.Info("s3 ready", "url", srv.URL(), "bucket", Bucket, "dir", filepath.Join(s.cfg.DataDir, "s3"))
	return store, nil
}

// startRoles starts the worker, the runner (unless NoRunner) and the API
// (with the webhook ingress) on the embedded servers.
func (s *Stack) startRoles(ctx context.Context, deps roles.Deps) error {
	worker, err := roles.StartWorker(ctx, deps)
	if err != nil {
		return err
	}
	s.addRole("control-plane worker", worker)
	s.log.Info("control-plane worker ready", "task_queue", wire.ControlTaskQueue)

	if s.cfg.NoRunner {
		s.log.Info("no hot-path runner: integrations wait for one to attach", "attach", "vrsky runner --dev "+s.cfg.DataDir)
	} else {
		s.addRole("hot-path runner", roles.StartRunner(deps, "dev"))
		s.endpoints.Runner = true
	}

	deps.WebhookTenantKeys = s.cfg.WebhookTenantKeys
	apiServer, ingress, err := roles.NewAPI(ctx, deps, s.cfg.Version, s.cfg.WebhookTenantRate)
	if err != nil {
		return err
	}
	s.addRole("webhook ingress", ingress)
	addr, httpRole, err := roles.Serve(ctx, s.cfg.HTTPAddr, ui.Mount(apiServer.Handler()))
	if err != nil {
		return err
	}
	s.addRole("http server", httpRole)
	s.endpoints.HTTP = addr
	s.log.Info("http server ready", "addr", addr)
	return nil
}

// addRole registers a role's stop and forwards its failure.
func (s *Stack) addRole(name string, r *roles.Role) {
	s.onStop(name, r.Stop)
	if r.Failed == nil {
		return
	}
	go func() {
		if err, ok := <-r.Failed; ok && err != nil {
			s.fail(err)
		}
	}()
}
