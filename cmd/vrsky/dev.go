//go:build !vrsky_production

package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
	"github.com/vrsky/vrsky/internal/logging"
	"github.com/vrsky/vrsky/internal/natscluster"
)

func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := devstack.Config{Version: version}
	fs.StringVar(&cfg.DataDir, "data-dir", cmp.Or(os.Getenv("VRSKY_DATA_DIR"), ".vrsky"), "directory holding all state [VRSKY_DATA_DIR]")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cmp.Or(os.Getenv("VRSKY_HTTP_ADDR"), devstack.DefaultHTTPAddr), "API, webhooks and UI [VRSKY_HTTP_ADDR]")
	fs.StringVar(&cfg.NATSAddr, "nats-addr", cmp.Or(os.Getenv("VRSKY_NATS_ADDR"), devstack.DefaultNATSAddr), "embedded NATS [VRSKY_NATS_ADDR]")
	fs.StringVar(&cfg.TemporalAddr, "temporal-addr", cmp.Or(os.Getenv("VRSKY_TEMPORAL_ADDR"), devstack.DefaultTemporalAddr), "embedded Temporal frontend [VRSKY_TEMPORAL_ADDR]")
	fs.StringVar(&cfg.TemporalUIAddr, "temporal-ui-addr", cmp.Or(os.Getenv("VRSKY_TEMPORAL_UI_ADDR"), devstack.DefaultTemporalUIAddr), "Temporal Web UI [VRSKY_TEMPORAL_UI_ADDR]")
	fs.StringVar(&cfg.S3Addr, "s3-addr", cmp.Or(os.Getenv("VRSKY_S3_ADDR"), devstack.DefaultS3Addr), "embedded S3 store [VRSKY_S3_ADDR]")
	pgPort, err := strconv.Atoi(cmp.Or(os.Getenv("VRSKY_POSTGRES_PORT"), strconv.Itoa(devstack.DefaultPostgresPort)))
	if err != nil {
		return fmt.Errorf("%w: VRSKY_POSTGRES_PORT: %v", errUsage, err)
	}
	fs.IntVar(&cfg.PostgresPort, "postgres-port", pgPort, "private PostgreSQL port, unless VRSKY_DATABASE_URL is set [VRSKY_POSTGRES_PORT]")
	rate, err := strconv.ParseFloat(cmp.Or(os.Getenv("VRSKY_WEBHOOK_TENANT_RATE"), "0"), 64)
	if err != nil {
		return fmt.Errorf("%w: VRSKY_WEBHOOK_TENANT_RATE: %v", errUsage, err)
	}
	fs.Float64Var(&cfg.WebhookTenantRate, "webhook-tenant-rate", rate, "webhook requests per second per tenant; 0 = default, -1 = unlimited [VRSKY_WEBHOOK_TENANT_RATE]")
	keys, err := strconv.ParseInt(cmp.Or(os.Getenv("VRSKY_WEBHOOK_TENANT_KEYS"), "0"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: VRSKY_WEBHOOK_TENANT_KEYS: %v", errUsage, err)
	}
	fs.Int64Var(&cfg.WebhookTenantKeys, "webhook-tenant-keys", keys, "delivery keys each tenant has remembered at once; past it new keys are remembered for 2 minutes, not a day; 0 = default, -1 = unlimited [VRSKY_WEBHOOK_TENANT_KEYS]")
	withRunner, err := strconv.ParseBool(cmp.Or(os.Getenv("VRSKY_DEV_RUNNER"), "true"))
	if err != nil {
		return fmt.Errorf("%w: VRSKY_DEV_RUNNER: %v", errUsage, err)
	}
	fs.BoolVar(&withRunner, "runner", withRunner, "run the hot-path runner; with --runner=false integrations wait for a runner attached with vrsky runner --dev DATA_DIR [VRSKY_DEV_RUNNER]")
	natsNodes, err := strconv.Atoi(cmp.Or(os.Getenv("VRSKY_DEV_NATS_NODES"), "1"))
	if err != nil {
		return fmt.Errorf("%w: VRSKY_DEV_NATS_NODES: %v", errUsage, err)
	}
	fs.IntVar(&cfg.NATSNodes, "nats-nodes", natsNodes, "embedded NATS servers: 1, or 3 for a cluster whose streams keep three replicas [VRSKY_DEV_NATS_NODES]")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "use this NATS server or cluster (comma-separated URLs, trusting DATA_DIR/nats-keys.json) instead of embedded ones; "+
		natscluster.ReplicasEnv+" sets its replica count")
	logLevel := fs.String("log-level", cmp.Or(os.Getenv("VRSKY_LOG_LEVEL"), "info"), "debug, info, warn or error [VRSKY_LOG_LEVEL]")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg.NoRunner = !withRunner
	if cfg.NATSNodes != 1 && cfg.NATSNodes != 3 && cfg.NATSNodes != 5 {
		return fmt.Errorf("%w: --nats-nodes %d: want 1, 3 or 5", errUsage, cfg.NATSNodes)
	}
	if cfg.NATSURL != "" {
		if cfg.NATSNodes != 1 {
			return fmt.Errorf("%w: --nats-url and --nats-nodes exclude each other", errUsage)
		}
		if cfg.NATSReplicas, err = natscluster.ReplicasFromEnv(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if cfg.IntegrationLatency, err = roles.IntegrationLatencyFromEnv(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if cfg.Placement, err = roles.PlacementPolicyFromEnv(os.Getenv); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// nil keeps the dev stack's defaults: no environment variable for
	// tenants, as in production, and the key ring kept in its data
	// directory.
	if err := tenancyFromEnv(&cfg.TenantEnvAllow, &cfg.SecretKeys); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg.DatabaseURL = os.Getenv("VRSKY_DATABASE_URL")
	cfg.Logger = logging.New(stderr, *logLevel)

	stack, err := devstack.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start dev stack: %w", err)
	}
	var runErr error
	select {
	case <-ctx.Done():
		cfg.Logger.Info("signal received, shutting down", "component", "dev", "deadline", devstack.ShutdownTimeout.String())
	case runErr = <-stack.Errors():
		cfg.Logger.Error("component failed, shutting down", "component", "dev", "error", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), devstack.ShutdownTimeout)
	defer cancel()
	if err := stack.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
