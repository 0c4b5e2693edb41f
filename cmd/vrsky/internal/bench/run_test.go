package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/api"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

// inProcessStack runs the parts of a dev stack the bench uses (NATS, the
// hot-path runner with every connector, the webhook ingress) in this test
// process and returns a data directory that AttachStack accepts.
func inProcessStack(t *testing.T) (dir string, js jetstream.JetStream) {
	t.Helper()
	return inProcessStackWithRunner(t, "test")
}

// inProcessStackWithRunner is inProcessStack with its runner reporting
// under runnerName.
func inProcessStackWithRunner(t *testing.T, runnerName string) (dir string, js jetstream.JetStream) {
	t.Helper()
	return inProcessStackWithTenancy(t, runnerName, nil)
}

// inProcessStackWithTenancy is inProcessStackWithRunner whose runner
// completes connector environments with ten (nil: none).
func inProcessStackWithTenancy(t *testing.T, runnerName string, ten sdk.Tenancy) (dir string, js jetstream.JetStream) {
	t.Helper()
	url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	dir = t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	runner := &hotpath.Runner{JS: js, Catalog: connectors.Catalog(), FileRoot: filepath.Join(dir, "files"), Name: runnerName, Logger: quiet, Tenancy: ten}
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	cache, err := dataplane.WatchDesired(ctx, state)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	srv := api.New(api.Options{Logger: quiet})
	srv.RegisterWebhooks(&api.Webhooks{Pipelines: cache, Publisher: &dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: js}}})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	writeFakeStack(t, dir, devstack.Endpoints{HTTP: hs.Listener.Addr().String(), NATS: url}, os.Getpid())
	return dir, js
}

// TestRunMeasuresThePipelineEndToEnd benchmarks a real runner and ingress
// in-process: every accepted message except the filtered tenth must reach
// the sink file, and the benchmark must leave nothing behind.
func TestRunMeasuresThePipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline for a few seconds")
	}
	dir, js := inProcessStack(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Rate: 200, Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Workers: 16, Progress: &progress,
	})
	require.NoError(t, err, progress.String())
	require.Equal(t, ScenarioPipeline, rep.Scenario)
	require.Equal(t, int64(100), rep.Sent)
	require.Zero(t, rep.Errors)
	require.Equal(t, int64(90), rep.Expected, "the router drops seqs that are multiples of ten")
	require.Equal(t, int64(90), rep.Delivered)
	require.Zero(t, rep.Lost)
	require.Zero(t, rep.Unexpected)
	require.Zero(t, rep.Malformed)
	require.Positive(t, rep.P99)
	require.Positive(t, rep.SustainedRate)
	require.Positive(t, rep.BaselineRate)
	require.Positive(t, rep.PipelineVsBaseline)
	require.Positive(t, rep.PeakRSSMB)
	require.GreaterOrEqual(t, rep.StackIdleCores, 0.0)
	require.False(t, rep.StackOwned)
	require.Nil(t, rep.RunnerCPUSeconds, "no split runner")
	require.Nil(t, rep.RunnerPeakRSSMB)
	require.Contains(t, progress.String(), "baseline")
	require.NotNil(t, rep.Floor, "a single-rate run measures the floor beside the step")
	require.Equal(t, int64(100), rep.Floor.Delivered, "the floor filters nothing")
	require.Zero(t, rep.Floor.Lost)
	require.Positive(t, rep.P99VsFloor)
	require.Positive(t, rep.CPUVsFloor)

	// Nothing left: no sink files, no integration, no streams.
	entries, err := os.ReadDir(filepath.Join(dir, "files", Tenant, Tenant))
	require.NoError(t, err)
	require.Empty(t, entries)
	require.Eventually(t, func() bool {
		names := js.StreamNames(context.Background())
		for name := range names.Name() {
			if strings.HasPrefix(name, "VRSKY_bench_") || strings.HasPrefix(name, "BENCH_") {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond)
}

// TestRunMeasuresASplitRunner attaches to a stack and starts a runner
// process beside it. The runner that does the work runs in this test
// process under the split runner's name; the child is a stand-in (see
// fakeRunner) whose process is measured and stopped. cmd/vrsky's smoke test
// runs the real `vrsky runner --dev`.
func TestRunMeasuresASplitRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline for a few seconds")
	}
	dir, _ := inProcessStackWithRunner(t, SplitRunnerName)
	stopped := filepath.Join(t.TempDir(), "stopped")
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Binary: fakeDev(t, fakeRunner), Env: []string{"WANT_DIR=" + dir, "STOPPED=" + stopped}, SplitRunner: true,
		Rate: 200, Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Workers: 16, NoBaseline: true, Progress: &progress,
	})
	require.NoError(t, err, progress.String())
	require.Equal(t, int64(90), rep.Delivered)
	require.Zero(t, rep.Lost)
	require.NotNil(t, rep.RunnerCPUSeconds)
	require.NotNil(t, rep.RunnerCPUSecondsPerMillion)
	require.GreaterOrEqual(t, *rep.RunnerCPUSeconds, 0.0)
	require.Positive(t, *rep.RunnerRSSBeforeMB)
	require.Positive(t, *rep.RunnerPeakRSSMB)
	require.Positive(t, rep.PeakRSSMB)
	require.Contains(t, progress.String(), "runner ready")
	require.FileExists(t, stopped, "the runner child is stopped with SIGTERM")
}

// TestRunFindMaxStopsAtTheFirstStepThatDoesNotHold uses the claim-check
// scenario (no blob store here, so every message fails at the ingress):
// the first step cannot hold.
func TestRunFindMaxStopsAtTheFirstStepThatDoesNotHold(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline")
	}
	dir, _ := inProcessStack(t)
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Scenario: ScenarioClaimCheck, Rate: 20, Duration: 200 * time.Millisecond,
		Workers: 4, FindMax: true, NoBaseline: true,
	})
	require.NoError(t, err)
	require.Len(t, rep.Steps, 1)
	require.Nil(t, rep.MaxSustainedRate)
	require.Equal(t, int64(4), rep.Errors)
	require.Equal(t, map[string]int64{"503": 4}, rep.ErrorsByStatus)
	require.NotNil(t, rep.NATSStreamBytes)
	require.Equal(t, DefaultClaimCheckSize, rep.MessageSize)
}

func TestRunFindMaxRaisesTheRateWhileStepsHold(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline")
	}
	dir, _ := inProcessStack(t)
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Rate: 50, Duration: 200 * time.Millisecond, Workers: 8, FindMax: true, NoBaseline: true,
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rep.Steps), 1)
	if rep.MaxOfferedRateHeld != nil {
		require.Equal(t, rep.OfferedRate, *rep.MaxOfferedRateHeld)
		require.InDelta(t, 50*1.5, rep.Steps[min(1, len(rep.Steps)-1)].OfferedRate, 50*0.5+1e-9)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c := Config{Binary: "vrsky"}
	require.NoError(t, c.applyDefaults())
	require.Equal(t, Config{Scenario: ScenarioPipeline, Rate: DefaultRate, Duration: DefaultDuration, Size: DefaultSize,
		Workers: DefaultWorkers, Binary: "vrsky", Progress: io.Discard}, c)

	cc := Config{Scenario: ScenarioClaimCheck, DataDir: "x"}
	require.NoError(t, cc.applyDefaults())
	require.Equal(t, DefaultClaimCheckSize, cc.Size)

	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"scenario": {Config{Scenario: "fast", Binary: "x"}, "scenario"},
		"rate":     {Config{Rate: -1, Binary: "x"}, "rate"},
		"duration": {Config{Duration: -1, Binary: "x"}, "not be negative"},
		"size":     {Config{Size: 10, Binary: "x"}, "at least"},
		"workers":  {Config{Workers: -2, Binary: "x"}, "workers"},
		"batch":    {Config{Batch: 1001, Binary: "x"}, "batch"},
		"stack":    {Config{}, "no stack"},
		"split":    {Config{DataDir: "x", SplitRunner: true}, "split runner: give a binary"},
		"nothing":  {Config{Rate: 0.01, Duration: time.Second, Binary: "x"}, "sends no message"},
	} {
		require.ErrorContains(t, tt.cfg.applyDefaults(), tt.want, name)
	}
	_, err := Run(context.Background(), Config{})
	require.ErrorContains(t, err, "no stack")
	_, err = Run(context.Background(), Config{DataDir: t.TempDir()})
	require.ErrorContains(t, err, "is vrsky dev running?")

	withRunner := t.TempDir()
	writeFakeStack(t, withRunner, devstack.Endpoints{HTTP: "127.0.0.1:1", NATS: "nats://127.0.0.1:2", Runner: true}, os.Getpid())
	_, err = Run(context.Background(), Config{DataDir: withRunner, Binary: "vrsky", SplitRunner: true})
	require.ErrorContains(t, err, "start it with vrsky dev --runner=false")
}

func TestIntegrationSpecsAreValid(t *testing.T) {
	require.Equal(t, "postgres-cdc", IntegrationSpec(Config{Scenario: ScenarioCDC}, "bench-abc").Consumer.Connector)
	for _, scenario := range []string{ScenarioPipeline, ScenarioClaimCheck} {
		in := IntegrationSpec(Config{Scenario: scenario}, "bench-abc")
		require.NoError(t, in.Validate(), scenario)
		require.Equal(t, dataplane.WebhookConnector, in.Consumer.Connector)
		require.Empty(t, in.Consumer.Config, "the connector's default key memory")
		require.Contains(t, string(in.Producers[producerName].Config), `"bench/bench-abc"`)
		require.Contains(t, string(in.Producers[producerName].Config), `"sync":true`, "the sink fsyncs each batch by default")
	}
	require.Len(t, IntegrationSpec(Config{Scenario: ScenarioPipeline}, "x").Steps, 2)
	require.Empty(t, IntegrationSpec(Config{Scenario: ScenarioClaimCheck}, "x").Steps)
}

// TestKeyMemoryIsTheWebhooksConfig: --key-memory sets the webhook
// consumer's keyMemory, is said in the report, and is refused where no
// key is sent or the value is unknown.
func TestKeyMemoryIsTheWebhooksConfig(t *testing.T) {
	in := IntegrationSpec(Config{Scenario: ScenarioPipeline, KeyMemory: sdk.KeyMemoryWindow}, "bench-abc")
	require.NoError(t, in.Validate())
	require.JSONEq(t, `{"keyMemory":"window"}`, string(in.Consumer.Config))
	require.Equal(t, ", key memory window", keysNote(&Report{KeyMemory: sdk.KeyMemoryWindow}))
	require.Equal(t, ", no Idempotency-Key", keysNote(&Report{NoIdempotencyKey: true}))
	require.Empty(t, keysNote(&Report{}))

	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Binary: "vrsky", KeyMemory: "forever"}, `keyMemory: unknown value "forever"`},
		{Config{Binary: "vrsky", KeyMemory: sdk.KeyMemoryWindow, NoIdempotencyKey: true}, "no Idempotency-Key to remember"},
		{Config{Binary: "vrsky", Scenario: ScenarioCDC, KeyMemory: sdk.KeyMemoryRemember}, "sends no webhook requests"},
	} {
		require.ErrorContains(t, tt.cfg.applyDefaults(), tt.want)
	}
	ok := Config{Binary: "vrsky", KeyMemory: sdk.KeyMemoryWindow}
	require.NoError(t, ok.applyDefaults())
}

// TestTheSinkCanSkipItsFsync: --sink-no-fsync turns the file sink's fsync
// off, says so in the durability, and is refused where the sink is
// PostgreSQL.
func TestTheSinkCanSkipItsFsync(t *testing.T) {
	in := IntegrationSpec(Config{Scenario: ScenarioPipeline, SinkNoFsync: true}, "bench-abc")
	require.NoError(t, in.Validate())
	require.Contains(t, string(in.Producers[producerName].Config), `"sync":false`)
	require.Equal(t, Durability+", file sink not fsynced", durabilityOf(1, true))
	require.Equal(t, Durability+", 3 replicas, file sink not fsynced", durabilityOf(3, true))
	cdc := Config{Scenario: ScenarioCDC, Binary: "vrsky", SinkNoFsync: true}
	require.ErrorContains(t, cdc.applyDefaults(), "sink is PostgreSQL")
	pipeline := Config{Binary: "vrsky", SinkNoFsync: true}
	require.NoError(t, pipeline.applyDefaults())
}

// TestRunMeasuresCDCEndToEnd benchmarks the CDC scenario against a real
// runner in-process and a real PostgreSQL: every inserted row must reach
// the target table, counted there, and the benchmark must leave no
// integration, replication slot, publication or table behind.
func TestRunMeasuresCDCEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CDC pipeline for a few seconds")
	}
	dbURL := testenv.Postgres(t)
	// The in-process stack has no API: its runner is given the benchmark
	// tenant's database secret and an egress policy allowing the database,
	// which the bench stores through a dev stack's API.
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	dir, js := inProcessStackWithTenancy(t, "test", &tenancy.Platform{
		Secrets: func(tenant string) sdk.SecretResolver {
			return func(_ context.Context, name string) (string, error) {
				if tenant != Tenant || name != DatabaseSecret {
					return "", fmt.Errorf("no secret %s of tenant %s", name, tenant)
				}
				return dbURL, nil
			}
		},
		Egress: func(context.Context, string) (sdk.EgressPolicy, error) {
			return sdk.EgressPolicy{AllowHosts: []string{u.Host}}, nil
		},
	})
	ep, err := devstack.ReadEndpoints(dir)
	require.NoError(t, err)
	ep.Postgres = dbURL
	writeFakeStack(t, dir, ep, os.Getpid())

	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		DataDir: dir, Scenario: ScenarioCDC, Rate: 200, Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Size: 100, NoBaseline: true, Progress: &progress,
	})
	require.NoError(t, err, progress.String())
	require.Equal(t, ScenarioCDC, rep.Scenario)
	require.Equal(t, int64(100), rep.Sent)
	require.Zero(t, rep.Errors)
	require.Equal(t, int64(100), rep.Expected)
	require.Equal(t, int64(100), rep.Delivered, "every committed row reached the target table")
	require.Zero(t, rep.Lost)
	require.Zero(t, rep.Duplicates)
	require.Zero(t, rep.Unknown)
	require.Positive(t, rep.P50)
	require.GreaterOrEqual(t, rep.P99, rep.P50)
	require.Positive(t, rep.AckP99, "commit latencies")
	require.Positive(t, rep.SustainedRate)
	require.Equal(t, DurabilityCDC, rep.Durability)
	require.Equal(t, 100, rep.MessageSize)
	require.NotNil(t, rep.TxIntervalMs)
	require.InDelta(t, 10, *rep.TxIntervalMs, 1e-9)
	require.NotNil(t, rep.SourceTransactions)
	require.Positive(t, *rep.SourceTransactions)
	require.NotNil(t, rep.ReplicationLagMaxBytes, "the slot's lag is sampled")
	require.Nil(t, rep.PostgresCPUSeconds, "the test server is not the stack's: not measured")
	require.Contains(t, progress.String(), "a transaction every 10ms")

	// Nothing left: no slot, publication, table or function; no stream.
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	for query, what := range map[string]string{
		"SELECT count(*) FROM pg_replication_slots":                          "replication slots",
		"SELECT count(*) FROM pg_publication":                                "publications",
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'vrsky_bench'":    "tables",
		"SELECT count(*) FROM pg_proc WHERE proname LIKE 'cdc_dst_%_writes'": "trigger functions",
	} {
		var n int
		require.NoError(t, conn.QueryRow(context.Background(), query).Scan(&n))
		require.Zero(t, n, what)
	}
	require.Eventually(t, func() bool {
		names := js.StreamNames(context.Background())
		for name := range names.Name() {
			if strings.HasPrefix(name, "VRSKY_bench_") {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond)
}

// TestMissingMessagesAreExplainedByTheStageCounters: messages missing after
// the drain are reported with the pipeline's stage counters, which tell a
// message still waiting in the stream from one gone.
func TestMissingMessagesAreExplainedByTheStageCounters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	p := dataplane.Pipeline{Tenant: Tenant, Integration: "bench-stuck"}
	stream, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: dataplane.StageProcess, FilterSubject: p.InSubject(), AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = js.Publish(ctx, p.InSubject(), []byte("{}"))
	require.NoError(t, err)

	var progress bytes.Buffer
	r := &runner{cfg: Config{Progress: &progress}, js: js, state: state}
	rep := &Report{Lost: 1}
	r.explainMissing(ctx, rep, p)
	require.Equal(t, []dataplane.StageCount{{Stage: dataplane.StageProcess, Pending: 1}}, rep.StagesAfterDrain)
	require.Contains(t, progress.String(), "process acked 0, pending 1, in flight 0")
	require.Contains(t, progress.String(), "0 dead letters")

	// Unreadable counters are said, not fatal.
	progress.Reset()
	(&runner{cfg: Config{Progress: &progress}, js: js, state: state}).explainMissing(ctx, &Report{}, dataplane.Pipeline{Tenant: "BAD"})
	require.Contains(t, progress.String(), "stage counters unreadable")
}
