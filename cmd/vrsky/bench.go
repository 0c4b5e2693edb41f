//go:build !vrsky_production

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/bench"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// runBench wires `vrsky bench`: it parses the flags, runs cmd/vrsky/internal/bench and
// prints its report. Progress goes to stderr; with --json stdout holds
// exactly one JSON object.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.Scenario, "scenario", bench.ScenarioPipeline, "pipeline (webhook → json-transform → router → file), claimcheck (webhook → file, large bodies), cdc (postgres-cdc → postgres producer, rows of the stack's database) or scale (many webhook → json-transform → file integrations over many tenants: deploy time, idle cost, load over some of them and the same load on one of them)")
	fs.Float64Var(&cfg.Rate, "rate", bench.DefaultRate, "offered rate in messages (cdc: rows) per second (the first step's with --find-max)")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measured load per run or step")
	fs.DurationVar(&cfg.Warmup, "warmup", bench.DefaultWarmup, "load before measuring, at the same rate")
	fs.IntVar(&cfg.Size, "size", 0, fmt.Sprintf("body size in bytes, for cdc each row's payload length (default %d; %d for claimcheck)", bench.DefaultSize, bench.DefaultClaimCheckSize))
	fs.IntVar(&cfg.Workers, "workers", bench.DefaultWorkers, "concurrent HTTP requests (kept-alive connections)")
	fs.IntVar(&cfg.Batch, "batch", 0, "send up to N messages already due in one NDJSON request (0 or 1: one message per request)")
	fs.DurationVar(&cfg.TxInterval, "tx-interval", bench.DefaultTxInterval, "cdc: commit the rows due in one transaction this often")
	fs.BoolVar(&cfg.FindMax, "find-max", false, "raise the rate ×1.5 per step until p99 > 50 ms, a loss or an error")
	fs.BoolVar(&cfg.NoBaseline, "no-baseline", false, "skip the raw JetStream baseline and the latency floor")
	fs.BoolVar(&cfg.NoIdempotencyKey, "no-idempotency-key", false, "send the webhook requests without an Idempotency-Key, so the ingress keeps no ID memory for them (a diagnostic of its cost; not with cdc)")
	fs.Func("key-memory", "the webhook consumer's keyMemory: remember (the connector's default: each key kept a day: one waited publish and one unwaited record per request) or window (JetStream's 2-minute duplicate window only: one waited publish); not with cdc or --no-idempotency-key", func(s string) error {
		cfg.KeyMemory = sdk.KeyMemory(s)
		return cfg.KeyMemory.Validate()
	})
	fs.BoolVar(&cfg.SinkNoFsync, "sink-no-fsync", false, "the file sink does not fsync each batch before acknowledging it (a diagnostic: the disk's fsync apart from the platform's latency; not with cdc)")
	fs.IntVar(&cfg.NATSNodes, "nats-nodes", 1, "start the stack with this many embedded NATS nodes: 1, or 3 for a cluster whose streams keep three replicas")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "attach to the vrsky dev running on this data directory instead of starting one")
	fs.BoolVar(&cfg.SplitRunner, "split-runner", false, "run the hot-path runner as its own process (vrsky runner --dev) beside a stack without one (vrsky dev --runner=false), and measure it apart")
	fs.IntVar(&cfg.Scale.Tenants, "tenants", 0, fmt.Sprintf("scale: tenants to create through the API (default %d)", bench.DefaultScaleTenants))
	fs.IntVar(&cfg.Scale.Integrations, "integrations", 0, fmt.Sprintf("scale: integrations to deploy, spread evenly over the tenants (default %d)", bench.DefaultScaleIntegrations))
	fs.IntVar(&cfg.Scale.Active, "active", 0, fmt.Sprintf("scale: integrations the load is spread over, round-robin (default %d)", bench.DefaultScaleActive))
	fs.IntVar(&cfg.Scale.Runners, "runners", 0, "scale: run N runner processes (vrsky runner --dev) beside a stack without its own runner, and measure each")
	fs.DurationVar(&cfg.Scale.IdleWindow, "idle-window", 0, fmt.Sprintf("scale: how long the idle cost is measured, with no integration and with all deployed (default %s)", bench.DefaultIdleWindow))
	fs.DurationVar(&cfg.Scale.IdleSettle, "idle-settle", 0, fmt.Sprintf("scale: how long the deployed integrations rest before their idle cost is measured (default %s; stages park after a minute without messages, and their consumers rest a minute later)", bench.DefaultIdleSettle))
	fs.Float64Var(&cfg.Scale.FloodTenantRate, "flood-tenant-rate", 0, "scale: add a load phase with one more tenant's integration sent this many msgs/s, and compare the quiet tenants' p99")
	fs.DurationVar(&cfg.Scale.DeployTimeout, "deploy-timeout", 0, "scale: give up waiting for the integrations to run after this long and go on with those running (default 1m + 300ms per integration)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a summary")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the bench process (load generator and sink reader) to this file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Workers <= 0 || cfg.Size < 0 || cfg.TxInterval <= 0 {
		return fmt.Errorf("%w: --rate, --duration, --workers and --tx-interval must be positive, --warmup and --size not negative", errUsage)
	}
	if cfg.DataDir == "" || cfg.SplitRunner || cfg.Scale.Runners > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the vrsky binary to start a stack or runner: %w", err)
		}
		cfg.Binary = exe
	}
	cfg.Progress = stderr
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	report, err := bench.Run(ctx, cfg)
	if report == nil {
		return fmt.Errorf("bench: %w", err)
	}
	// A report comes with an error only when stopping what the run started
	// failed: the figures stand, and the error is said after them.
	var werr error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		werr = enc.Encode(report)
	} else {
		werr = report.WriteSummary(stdout)
	}
	if err != nil {
		return fmt.Errorf("bench: after the run: %w", errors.Join(err, werr))
	}
	return werr
}
