package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/natsmetrics"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/ui"
)

// roleShutdownTimeout bounds a production role's drain on SIGTERM.
const roleShutdownTimeout = 30 * time.Second

// runRole runs one production role (api, worker or runner) against the
// infrastructure named by VRSKY_… environment variables, or with --dev
// against a running `vrsky dev`, until ctx ends.
func runRole(ctx context.Context, role string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultAddr := "127.0.0.1:9090"
	if role == "api" {
		defaultAddr = "0.0.0.0:8080"
	}
	httpAddr := fs.String("http-addr", cmp.Or(os.Getenv("VRSKY_HTTP_ADDR"), defaultAddr), "HTTP listen address (the API, webhooks, /healthz and a plain /readyz on api; /metrics, /healthz, /readyz on worker and runner) [VRSKY_HTTP_ADDR]")
	adminAddr := fs.String("admin-addr", cmp.Or(os.Getenv("VRSKY_ADMIN_ADDR"), "127.0.0.1:9090"), "api only: admin listen address for /metrics, /healthz and /readyz with each dependency's state; keep it off the public network [VRSKY_ADMIN_ADDR]")
	webhookRate, err := strconv.ParseFloat(cmp.Or(os.Getenv("VRSKY_WEBHOOK_TENANT_RATE"), "0"), 64)
	if err != nil {
		return fmt.Errorf("%w: VRSKY_WEBHOOK_TENANT_RATE: %v", errUsage, err)
	}
	keyTTL, err := time.ParseDuration(cmp.Or(os.Getenv("VRSKY_WEBHOOK_KEY_TTL"), dataplane.DefaultIdempotencyTTL.String()))
	if err != nil {
		return fmt.Errorf("%w: VRSKY_WEBHOOK_KEY_TTL: %v", errUsage, err)
	}
	tenantKeys, err := strconv.ParseInt(cmp.Or(os.Getenv("VRSKY_WEBHOOK_TENANT_KEYS"), "0"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: VRSKY_WEBHOOK_TENANT_KEYS: %v", errUsage, err)
	}
	fs.Int64Var(&tenantKeys, "webhook-tenant-keys", tenantKeys, fmt.Sprintf("api only: delivery keys each tenant has remembered at once, over all its integrations; past it new keys are remembered for 2 minutes, not a day; 0 = default (%d), -1 = unlimited [VRSKY_WEBHOOK_TENANT_KEYS]",
		dataplane.DefaultTenantKeys))
	fs.DurationVar(&keyTTL, "webhook-key-ttl", keyTTL, "api only: how long a webhook's Idempotency-Key or delivery ID is remembered with its body's digest; at least 24h [VRSKY_WEBHOOK_KEY_TTL]")
	fs.Float64Var(&webhookRate, "webhook-tenant-rate", webhookRate, fmt.Sprintf("api only: webhook requests per second per tenant; 0 = default (%d, bursts of %d), -1 = unlimited [VRSKY_WEBHOOK_TENANT_RATE]",
		api.DefaultWebhookTenantRate, api.DefaultWebhookTenantBurst))
	trustedProxies := fs.String("trusted-proxies", os.Getenv("VRSKY_TRUSTED_PROXIES"), "api only: comma-separated addresses or CIDR prefixes of the proxies in front of the API (a gateway); their X-Forwarded-For names the client, for the per-address limits [VRSKY_TRUSTED_PROXIES]")
	logLevel := fs.String("log-level", cmp.Or(os.Getenv("VRSKY_LOG_LEVEL"), "info"), "debug, info, warn or error [VRSKY_LOG_LEVEL]")
	name := fs.String("name", cmp.Or(os.Getenv("VRSKY_RUNNER_NAME"), ""), "runner name in status reports; default the host name [VRSKY_RUNNER_NAME]")
	natsMonitor := fs.String("nats-monitor-urls", os.Getenv("VRSKY_NATS_MONITOR_URLS"), "worker only: comma-separated NATS monitoring URLs (http://nats-0:8222,…) whose health becomes the vrsky_nats_* metrics [VRSKY_NATS_MONITOR_URLS]")
	devDir := fs.String("dev", "", "attach to the vrsky dev running on this data directory (start it with --runner=false for a runner) instead of reading the VRSKY_… infrastructure variables")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	integrationLatency, err := roles.IntegrationLatencyFromEnv()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	monitorURLs := natsmetrics.ParseURLs(*natsMonitor)
	if _, err := natsmetrics.New(monitorURLs); err != nil {
		return fmt.Errorf("%w: --nats-monitor-urls: %v", errUsage, err)
	}
	if keyTTL < dataplane.DefaultIdempotencyTTL {
		return fmt.Errorf("%w: --webhook-key-ttl %s: at least %s, so that a sender's retries and redeliveries stay one message", errUsage, keyTTL, dataplane.DefaultIdempotencyTTL)
	}
	var cfg roles.Config
	if *devDir != "" {
		if cfg, err = devRoleConfig(*devDir); err != nil {
			return fmt.Errorf("attach to vrsky dev: %w", err)
		}
		if err := tenancyFromEnv(&cfg.TenantEnvAllow, &cfg.SecretKeys); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	} else if cfg, err = roles.FromEnv(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log := logging.Component(logging.New(stderr, *logLevel), role)

	needs := map[string]roles.Needs{
		"api":    {DB: true, NATS: true, Temporal: true, S3: true, Tenancy: true},
		"worker": {DB: true, NATS: true, Temporal: true, S3: true},
		"runner": {NATS: true, S3: true, Tenancy: true},
	}[role]
	deps, closeAll, err := roles.Connect(ctx, cfg, needs, log)
	if err != nil {
		return err
	}
	defer closeAll()
	roles.RegisterBuildInfo(deps.Registry, version, role)
	deps.IntegrationLatency, deps.NATSMonitorURLs = integrationLatency, monitorURLs

	var started []*roles.Role
	handler := roles.HealthHandler(deps)
	var admin string
	switch role {
	case "api":
		// The public listener serves the API and webhooks; metrics and
		// dependency details go on the admin listener.
		bound, adminRole, err := roles.Serve(ctx, *adminAddr, handler)
		if err != nil {
			return err
		}
		started = append(started, adminRole)
		admin = bound
		deps.AdminElsewhere, deps.WebhookKeyTTL, deps.WebhookTenantKeys = true, keyTTL, tenantKeys
		if deps.TrustedProxies, err = api.ParseTrustedProxies(*trustedProxies); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		srv, ingress, err := roles.NewAPI(ctx, deps, version, webhookRate)
		if err != nil {
			return err
		}
		started = append(started, ingress)
		handler = ui.Mount(srv.Handler())
	case "worker":
		if deps.Placement, err = roles.PlacementPolicyFromEnv(os.Getenv); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		prov, closeProv, err := roles.ProvisionerFromEnv(os.Getenv, logging.Component(log, "tenant-nats"))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		defer closeProv()
		deps.Provisioner = prov
		w, err := roles.StartWorker(ctx, deps)
		if err != nil {
			return err
		}
		started = append(started, w)
	case "runner":
		started = append(started, roles.StartRunner(deps, *name))
	}
	addr, httpRole, err := roles.Serve(ctx, *httpAddr, handler)
	if err != nil {
		return err
	}
	started = append(started, httpRole)
	if admin != "" {
		log.Info("ready", "http", addr, "admin", admin)
	} else {
		log.Info("ready", "http", addr)
	}

	failed := make(chan error, len(started))
	for _, r := range started {
		if r.Failed != nil {
			go func() {
				if err, ok := <-r.Failed; ok && err != nil {
					failed <- err
				}
			}()
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("signal received, draining", "deadline", roleShutdownTimeout.String())
	case runErr = <-failed:
		log.Error("role failed, shutting down", "error", runErr)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), roleShutdownTimeout)
	defer cancel()
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(stopCtx); err != nil && runErr == nil {
			runErr = err
		}
	}
	log.Info("stopped")
	return runErr
}

// tenancyFromEnv replaces a dev stack's tenant settings with the ones set
// in the environment: VRSKY_TENANT_ENV_ALLOW (even empty) and
// VRSKY_SECRETS_KEY or VRSKY_SECRETS_KEY_FILE.
func tenancyFromEnv(envAllow *[]string, keys **secretbox.KeyRing) error {
	if v, ok := os.LookupEnv(tenancy.EnvAllowVar); ok {
		patterns, err := tenancy.ParseEnvAllow(v)
		if err != nil {
			return err
		}
		*envAllow = patterns
	}
	k, err := secretbox.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if k != nil {
		*keys = k
	}
	return nil
}
