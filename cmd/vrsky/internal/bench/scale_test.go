package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestScaleConfigDefaultsAndValidation(t *testing.T) {
	c := Config{Scenario: ScenarioScale, Binary: "vrsky"}
	require.NoError(t, c.applyDefaults())
	require.Equal(t, ScaleConfig{Tenants: DefaultScaleTenants, Integrations: DefaultScaleIntegrations, Active: DefaultScaleActive,
		IdleWindow: DefaultIdleWindow, IdleSettle: DefaultIdleSettle, DeployTimeout: time.Minute + DefaultScaleIntegrations*300*time.Millisecond}, c.Scale)

	// Integrations default to at least one per tenant; active to at most
	// every integration.
	c = Config{Scenario: ScenarioScale, DataDir: "x", Scale: ScaleConfig{Tenants: 500, Active: 0}}
	require.NoError(t, c.applyDefaults())
	require.Equal(t, 500, c.Scale.Integrations)
	c = Config{Scenario: ScenarioScale, DataDir: "x", Scale: ScaleConfig{Tenants: 2, Integrations: 4}}
	require.NoError(t, c.applyDefaults())
	require.Equal(t, 4, c.Scale.Active)

	big := Config{Scenario: ScenarioScale, DataDir: "x", Scale: ScaleConfig{Tenants: 100, Integrations: 1000, Active: 100, Runners: 3}, Binary: "vrsky"}
	require.NoError(t, big.applyDefaults())

	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"other scenario":       {Config{Binary: "x", Scale: ScaleConfig{Tenants: 3}}, "settings of the scale scenario only"},
		"other scenario flood": {Config{Binary: "x", Scale: ScaleConfig{FloodTenantRate: 1}}, "settings of the scale scenario only"},
		"negative tenants":     {scaleCfg(ScaleConfig{Tenants: -1}), "tenants -1"},
		"too many tenants":     {scaleCfg(ScaleConfig{Tenants: maxScaleTenants + 1, Integrations: maxScaleIntegrations}), "tenants 10001"},
		"too many integrations": {scaleCfg(ScaleConfig{Integrations: maxScaleIntegrations + 1, Tenants: 10_000}),
			"integrations 100001"},
		"fewer integrations":   {scaleCfg(ScaleConfig{Tenants: 10, Integrations: 5}), "at least one per tenant"},
		"over the quota":       {scaleCfg(ScaleConfig{Tenants: 1, Integrations: 101}), "at most 100 under the default quota"},
		"negative active":      {scaleCfg(ScaleConfig{Active: -1}), "active -1"},
		"too many active":      {scaleCfg(ScaleConfig{Tenants: 2, Integrations: 4, Active: 5}), "active 5"},
		"negative runners":     {scaleCfg(ScaleConfig{Runners: -1}), "runners -1"},
		"too many runners":     {scaleCfg(ScaleConfig{Runners: maxScaleRunners + 1}), "runners 65"},
		"runners, no binary":   {Config{Scenario: ScenarioScale, DataDir: "x", Scale: ScaleConfig{Runners: 1}}, "give a binary to start them"},
		"runners and split":    {Config{Scenario: ScenarioScale, Binary: "x", SplitRunner: true, Scale: ScaleConfig{Runners: 1}}, "runs its runner processes"},
		"short idle window":    {scaleCfg(ScaleConfig{IdleWindow: time.Millisecond}), "at least 1s"},
		"negative idle settle": {scaleCfg(ScaleConfig{IdleSettle: -time.Second}), "idle settle -1s"},
		"negative flood":       {scaleCfg(ScaleConfig{FloodTenantRate: -5}), "flood tenant rate -5"},
		"negative deploy":      {scaleCfg(ScaleConfig{DeployTimeout: -time.Second}), "deploy timeout"},
		"find-max":             {Config{Scenario: ScenarioScale, Binary: "x", FindMax: true}, "runs at one rate"},
		"nothing per active":   {Config{Scenario: ScenarioScale, Binary: "x", Rate: 5, Duration: time.Second, Scale: ScaleConfig{Active: 10}}, "sends no message to each active"},
		"shared checks still":  {Config{Scenario: ScenarioScale, Binary: "x", Size: 10}, "at least 320 bytes"},
	} {
		require.ErrorContains(t, tt.cfg.applyDefaults(), tt.want, name)
	}
}

func scaleCfg(s ScaleConfig) Config {
	return Config{Scenario: ScenarioScale, Binary: "vrsky", Scale: s}
}

func TestScaleIntegrationSpecIsValid(t *testing.T) {
	in := IntegrationSpec(Config{Scenario: ScenarioScale}, "scale-00001")
	require.NoError(t, in.Validate())
	require.Equal(t, dataplane.WebhookConnector, in.Consumer.Connector)
	require.Len(t, in.Steps, 1, "json-transform only: no router")
	require.Equal(t, "json-transform", in.Steps[0].Connector)
	require.Contains(t, string(in.Producers[producerName].Config), `"bench/scale-00001"`)
}

func TestRunScaleRefusesAStackItCannotUse(t *testing.T) {
	// No admin key: tenants cannot be created.
	dir := t.TempDir()
	writeFakeStack(t, dir, devstack.Endpoints{HTTP: "127.0.0.1:1", NATS: "nats://127.0.0.1:2"}, os.Getpid())
	_, err := Run(context.Background(), Config{DataDir: dir, Scenario: ScenarioScale, Scale: ScaleConfig{Tenants: 1, Integrations: 1}})
	require.ErrorContains(t, err, "creates tenants through the API with the stack's admin key")

	// Runner processes beside a stack that runs its own runner.
	require.NoError(t, os.WriteFile(filepath.Join(dir, devstack.AdminKeyFile), []byte("key\n"), 0o600))
	writeFakeStack(t, dir, devstack.Endpoints{HTTP: "127.0.0.1:1", NATS: "nats://127.0.0.1:2", Runner: true}, os.Getpid())
	_, err = Run(context.Background(), Config{DataDir: dir, Binary: "vrsky", Scenario: ScenarioScale, Scale: ScaleConfig{Tenants: 1, Integrations: 1, Runners: 2}})
	require.ErrorContains(t, err, "start it with vrsky dev --runner=false")

	// An API that is not there: the tenants cannot be created.
	writeFakeStack(t, dir, devstack.Endpoints{HTTP: "127.0.0.1:1", NATS: testenv.NATS(t)}, os.Getpid())
	_, err = Run(context.Background(), Config{DataDir: dir, Scenario: ScenarioScale, Scale: ScaleConfig{Tenants: 1, Integrations: 1}})
	require.ErrorContains(t, err, "create benchmark tenant")
}

func TestRunnerRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)

	reg := readRunnerRegistry(ctx, js)
	require.False(t, reg.Available, "no bucket: not available, not an error")
	require.Empty(t, reg.Problems)
	var b strings.Builder
	writeRegistry(&b, reg)
	require.Equal(t, "runners         runner registry not available\n", b.String())

	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: dataplane.RunnersBucket, MaxValueSize: 1 << 20})
	require.NoError(t, err)
	put := func(key, value string) {
		_, err := kv.Put(ctx, key, []byte(value))
		require.NoError(t, err)
	}
	put("runner-b", `{"name":"runner-b","pipelines":600,"updated_at":"2026-12-06T12:00:00Z"}`)
	put("runner-a", `{"name":"runner-a","pipelines":400,"updated_at":"2026-12-06T12:00:01.123456789Z"}`)
	put("host_1", `{"name":"host 1","pipelines":0,"updated_at":"2026-12-06T12:00:01Z"}`)
	put("idle", `{"name":"idle","pipelines":0}`)
	put("not-json", `pipelines: 3`)
	put("no-count", `{"name":"no-count"}`)
	put("negative", `{"name":"negative","pipelines":-1}`)
	put("huge-count", `{"name":"huge-count","pipelines":1e12}`)
	put("impostor", `{"name":"runner-a","pipelines":1000}`)
	put("bad-time", `{"name":"bad-time","pipelines":1,"updated_at":"yesterday"}`)
	put("oversize", `{"name":"oversize","pipelines":1,"pad":"`+strings.Repeat("x", maxRegistryValueBytes)+`"}`)
	put("gone", `{"name":"gone","pipelines":5}`)
	require.NoError(t, kv.Delete(ctx, "gone"))

	reg = readRunnerRegistry(ctx, js)
	require.True(t, reg.Available)
	require.Equal(t, []RegisteredRunner{
		{Name: "host 1", Pipelines: 0, UpdatedAt: "2026-12-06T12:00:01Z"},
		{Name: "idle", Pipelines: 0},
		{Name: "runner-a", Pipelines: 400, UpdatedAt: "2026-12-06T12:00:01.123456789Z"},
		{Name: "runner-b", Pipelines: 600, UpdatedAt: "2026-12-06T12:00:00Z"},
	}, reg.Runners)
	require.Equal(t, 1000, reg.Pipelines)
	problems := strings.Join(reg.Problems, "\n")
	for _, want := range []string{
		`runner "not-json": entry "pipelines: 3" is not the registry's JSON`,
		`runner "no-count": entry has no pipeline count`,
		`runner "negative": pipeline count -1 out of range`,
		`runner "huge-count": entry "{\"name\":\"huge-count\",\"pipelines\":1e12}" is not the registry's JSON`,
		`runner "impostor": entry names runner "runner-a"`,
		`runner "bad-time": updated_at "yesterday" is not RFC 3339`,
		`runner "oversize": entry of 655`, `bytes: more than 65536`,
	} {
		require.Contains(t, problems, want)
	}
	require.Len(t, reg.Problems, 7)
	b.Reset()
	writeRegistry(&b, reg)
	require.Contains(t, b.String(), "pipelines each runner runs (registry): host 1 0, idle 0, runner-a 400, runner-b 600; 1000 in all\n")
	require.Contains(t, b.String(), `left out: runner "impostor"`)
}

func TestRegistryProblemsAreBoundedAndQuotedShort(t *testing.T) {
	var reg RunnerRegistry
	for range maxRegistryProblems + 5 {
		reg.problem("x")
	}
	require.Len(t, reg.Problems, maxRegistryProblems)
	long := strings.Repeat("\x1b[31m", 100)
	q := quote(long)
	require.Less(t, len(q), 4*maxQuotedBytes+10)
	require.NotContains(t, q, "\x1b", "control characters are escaped")
	require.True(t, strings.HasSuffix(q, "…"))
}

func TestRunnerRegistryUnreadable(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reg := readRunnerRegistry(ctx, js)
	require.False(t, reg.Available)
	require.Len(t, reg.Problems, 1)
	require.Contains(t, reg.Problems[0], "open bucket vrsky_runners")
	var b strings.Builder
	writeRegistry(&b, reg)
	require.Contains(t, b.String(), "runner registry not available (open bucket")
}

func TestTallyPhaseSumsTheIntegrations(t *testing.T) {
	t0 := time.Now()
	mk := func(name string, offset time.Duration, statuses []int, arrive map[int64]int) *scaleLoad {
		sched := Schedule{T0: t0.Add(offset), Rate: 10, Warmup: 1, Measured: int64(len(statuses)) - 1}
		c := NewCollector(sched, nil)
		for seq, st := range statuses {
			c.SetStatus(int64(seq), st, sched.Intended(int64(seq)).Add(time.Millisecond))
		}
		for seq, n := range arrive {
			for range n {
				c.RecordArrival(seq, sched.Intended(seq).Add(time.Duration(seq+1)*10*time.Millisecond))
			}
		}
		return &scaleLoad{it: &scaleIntegration{tenant: "t-" + name, name: name}, rate: 10, sched: sched, sink: c}
	}
	a := mk("a", 0, []int{202, 202, 202, 202}, map[int64]int{0: 1, 1: 1, 2: 2, 3: 1})
	b := mk("b", 50*time.Millisecond, []int{202, 202, 429, 0}, map[int64]int{1: 1})
	p := tallyPhase("quiet", 20, []*scaleLoad{a, b})
	require.Equal(t, "quiet", p.Name)
	require.Equal(t, 20.0, p.OfferedRate)
	require.Equal(t, int64(4), p.Sent, "3 of a, 1 of b: warm-up left out")
	require.Equal(t, int64(2), p.Errors)
	require.Equal(t, map[string]int64{"429": 1, "no answer": 1}, p.ErrorsByStatus)
	require.Equal(t, int64(4), p.Delivered)
	require.Zero(t, p.Lost)
	require.Equal(t, int64(1), p.Duplicates)
	require.Zero(t, p.IntegrationsWithLoss)
	require.Len(t, p.Integrations, 2)
	bc := p.Integrations[1]
	require.InDelta(t, 20, bc.P99, 0.1)
	bc.P99 = 0
	require.Equal(t, IntegrationCount{Tenant: "t-b", Integration: "b", OfferedRate: 10, Sent: 1, Errors: 2,
		ErrorsByStatus: map[string]int64{"429": 1, "no answer": 1}, Delivered: 1}, bc)
	// Latencies merge over both: a's 20, 30, 40 ms and b's 20 ms.
	require.InDelta(t, 20, p.P50, 0.1)
	require.InDelta(t, 40, p.Max, 0.1)
	require.Equal(t, int64(4), latencies(mustMerged(a, b)).Count)
	// Sustained: 4 arrivals from a's first measured send (t0+100ms) to the
	// last arrival (a's seq 3 at t0+300ms+40ms).
	require.InDelta(t, 4/0.24, p.SustainedRate, 0.01)
	require.Positive(t, p.ack.P50)

	lossy := mk("c", 0, []int{202, 202, 202}, map[int64]int{1: 1})
	p = tallyPhase("quiet", 10, []*scaleLoad{lossy})
	require.Equal(t, int64(1), p.Lost)
	require.Equal(t, 1, p.IntegrationsWithLoss)
	require.Nil(t, p.ErrorsByStatus)
}

func mustMerged(loads ...*scaleLoad) *hdrhistogram.Histogram {
	h := newHistogram()
	for _, l := range loads {
		l.sink.mergeArrivalsInto(h)
	}
	return h
}

func TestPerIntegrationKBAndIdleCost(t *testing.T) {
	none := IdleCost{Integrations: 0, RSSMB: 100}
	with := IdleCost{Integrations: 1000, RSSMB: 200}
	require.InDelta(t, 102.4, *perIntegrationKB(none, with), 1e-9)
	require.Nil(t, perIntegrationKB(none, IdleCost{Integrations: 0, RSSMB: 150}), "nothing deployed")
	shrunk := *perIntegrationKB(none, IdleCost{Integrations: 10, RSSMB: 90})
	require.Negative(t, shrunk, "a smaller RSS is reported as it is")

	pg := 2 * time.Second
	c := idleCost(4, windowResult{seconds: 20, postgresCPU: &pg, processes: []ProcessUse{
		{Name: "stack", CPUPercent: 1.5, RSSMB: 180}, {Name: "r1", CPUPercent: 0.5, RSSMB: 40},
	}})
	require.Equal(t, 4, c.Integrations)
	require.Equal(t, 2.0, c.CPUPercent)
	require.Equal(t, 220.0, c.RSSMB)
	require.InDelta(t, 10.0, *c.PostgresCPUPercent, 1e-9)
}

func TestProcessWindowMeasuresAProcess(t *testing.T) {
	w, err := beginWindow([]measuredProcess{{name: "self", pid: os.Getpid()}}, os.Getpid())
	require.NoError(t, err)
	spin := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(spin) { // some CPU to measure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	require.NoError(t, w.sampleUntil(ctx))
	res, err := w.end()
	require.NoError(t, err)
	require.Len(t, res.processes, 1)
	u := res.processes[0]
	require.Equal(t, "self", u.Name)
	require.Greater(t, u.CPUSeconds, 0.1)
	require.Greater(t, u.CPUPercent, 5.0)
	require.Positive(t, u.RSSMB)
	require.Positive(t, u.RSSStartMB)
	require.GreaterOrEqual(t, u.PeakRSSMB, u.RSSMB)
	require.Equal(t, 3, w.samples, "at the start, after a second, at the end")
	require.NotNil(t, res.postgresCPU)
	require.Positive(t, res.selfCPU)

	_, err = beginWindow([]measuredProcess{{name: "gone", pid: 1 << 30}}, 0)
	require.ErrorContains(t, err, "measure gone")
}

func TestTailsFollowSeveralDirectoriesFromTheirEnd(t *testing.T) {
	root := t.TempDir()
	sched := Schedule{T0: time.Now(), Rate: 1000, Measured: 4}
	a, b := NewCollector(sched, nil), NewCollector(sched, nil)
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	require.NoError(t, os.MkdirAll(dirA, 0o700))
	// What a held before the tail started is skipped.
	require.NoError(t, os.WriteFile(filepath.Join(dirA, "old.ndjson"), []byte(`{"seq":3}`+"\n"), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	tail := NewTails(map[string]*Collector{dirA: a, dirB: b}, true)
	done := make(chan error, 1)
	go func() { done <- tail.Run(ctx) }()
	time.Sleep(50 * time.Millisecond) // the first listing
	appendLine(t, filepath.Join(dirA, "old.ndjson"), `{"seq":0}`)
	require.NoError(t, os.MkdirAll(dirB, 0o700))
	appendLine(t, filepath.Join(dirB, "new.ndjson.part"), `{"seq":1}`)
	appendLine(t, filepath.Join(dirB, "new.ndjson.part"), `{"seq":2}`)
	require.Eventually(t, func() bool { return a.Counts().Delivered+b.Counts().Delivered == 0 && a.Missing() == 0 }, time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		na, _ := a.measuredArrivals()
		nb, _ := b.measuredArrivals()
		return na == 1 && nb == 2
	}, 2*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	na, _ := a.measuredArrivals()
	require.Equal(t, int64(1), na, "seq 3 was there before: skipped")
	require.Zero(t, a.Counts().Unknown)
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// sampleScaleReport is a scale report with every part set.
func sampleScaleReport() *Report {
	kb, without, with, pg, single, ratio := 180.5, 4.2, 9.7, 0.8, 2.1, 2.0
	return &Report{
		Scenario: ScenarioScale, MessageSize: 1024, Durability: Durability, DurationS: 10, WarmupS: 3, Workers: 256,
		BaselineRate: 30000, BaselineMessageSize: 1024,
		Machine: Machine{NumCPU: 2, CPUModel: "Test CPU", GoVersion: "go1.27", OS: "linux/amd64"},
		Scale: &ScaleReport{
			Tenants: 100, Integrations: 1000, Active: 100, Runners: 2, TenantsSeconds: 61.2,
			Deploy: DeployResult{Requested: 1000, Running: 998, Failed: 2, TimedOut: true, Errors: []string{"bs-x-001/scale-00001: not running after 6m0s"},
				SubmitSeconds: 80.1, Seconds: 95.5, PerSecond: 10.45},
			IdleNone: IdleCost{Integrations: 0, WindowS: 20, CPUPercent: 3.1, RSSMB: 300, PostgresCPUPercent: &pg, Processes: []ProcessUse{
				{Name: "stack", PID: 10, CPUPercent: 2.5, RSSMB: 250}, {Name: "vrsky-bench-runner-1", PID: 11, CPUPercent: 0.6, RSSMB: 50}}},
			IdleDeployed:        IdleCost{Integrations: 998, WindowS: 20, CPUPercent: 12.5, RSSMB: 476},
			PerIntegrationRSSKB: &kb,
			RunnerRegistry: RunnerRegistry{Available: true, Pipelines: 998, Runners: []RegisteredRunner{
				{Name: "vrsky-bench-runner-1", Pipelines: 500}, {Name: "vrsky-bench-runner-2", Pipelines: 498}}},
			StatusRunners:   map[string]int{"vrsky-bench-runner-2": 498, "vrsky-bench-runner-1": 500},
			FloodTenantRate: 5000,
			Phases: []ScalePhase{
				{Name: "quiet", OfferedRate: 1000, SustainedRate: 999, P50: 2, P99: without, P999: 8, Max: 12, Sent: 10000, Delivered: 10000,
					Integrations: make([]IntegrationCount, 100),
					Processes:    []ProcessUse{{Name: "stack", CPUSeconds: 5, CPUPercent: 40, RSSMB: 500, PeakRSSMB: 520}}},
				{Name: "one integration", OfferedRate: 1000, SustainedRate: 1000, P50: 1.5, P99: single, Sent: 10000, Delivered: 10000,
					Integrations: make([]IntegrationCount, 1)},
				{Name: "with flood", OfferedRate: 1000, SustainedRate: 990, P50: 3, P99: with, Sent: 10000, Delivered: 9990, Lost: 10,
					IntegrationsWithLoss: 1, Errors: 3, ErrorsByStatus: map[string]int64{"503": 3}, Malformed: 1,
					Integrations: make([]IntegrationCount, 100),
					Flood: &IntegrationCount{Tenant: "bs-x-flood", Integration: "flood", OfferedRate: 5000, Sent: 40000, Errors: 10000,
						ErrorsByStatus: map[string]int64{"429": 10000}, Delivered: 40000, P99: 30}},
			},
			QuietP99WithoutFloodMs: &without, QuietP99WithFloodMs: &with,
			SpreadP99Ms: &without, OneIntegrationP99Ms: &single, SpreadToOneP99: &ratio,
		},
	}
}

func TestScaleSummary(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, sampleScaleReport().WriteSummary(&out))
	got := out.String()
	for _, want := range []string{
		"scenario        scale: 1000 integrations (webhook → json-transform → file) over 100 tenants, 2 runner processes, 1024-byte messages",
		"tenants         100 created and active in 61.2 s\n",
		"deploy          998 of 1000 running in 95.5 s from the first create (10.4 deploys/s; all accepted after 80.1 s), 2 failed, deploy timeout reached\n",
		"                  bs-x-001/scale-00001: not running after 6m0s\n",
		"idle, none      0 integrations, 20 s: 3.1% of a core, RSS 300 MB (PostgreSQL apart: 0.8% of a core)\n",
		"                  vrsky-bench-runner-1 (pid 11): 0.6% of a core, RSS 50 MB\n",
		"idle, deployed  998 integrations, 20 s: 12.5% of a core, RSS 476 MB\n",
		"per integration 180 KiB of RSS ((RSS with 998 deployed - RSS with none) / 998)\n",
		"runners         pipelines each runner runs (registry): vrsky-bench-runner-1 500, vrsky-bench-runner-2 498; 998 in all\n",
		"status API      running integrations by the runner named in their status: vrsky-bench-runner-1 500, vrsky-bench-runner-2 498\n",
		"load quiet      offered 1000/s over 100 integrations, sustained 999/s at the sinks\n",
		"  latency       p50 2.00 ms  p99 4.20 ms  p99.9 8.00 ms  max 12.00 ms",
		"  stack         5.00 CPU s (40.0% of a core), RSS 500 MB, peak 520 MB\n",
		"  messages      sent 10000, errors 3 (503: 3), delivered 9990, lost 10 (1 integrations lost some), duplicates 0\n",
		"  oddities      unexpected 0, malformed lines 1, unknown seqs 0\n",
		"  flood         bs-x-flood/flood offered 5000/s: sent 40000, errors 10000 (429: 10000), delivered 40000, lost 0, p99 30.00 ms\n",
		"load one integration offered 1000/s over 1 integrations, sustained 1000/s at the sinks\n",
		"spread          p99 4.20 ms over 100 integrations, 2.10 ms on one at the same rate: 2.00×\n",
		"fairness        quiet tenants' p99 4.20 ms without the flood, 9.70 ms with 5000 msgs/s flooding one tenant\n",
		"baseline        raw JetStream publish+consume 30000 msgs/s (1024-byte)\n",
		"machine         2 CPUs (Test CPU), go1.27, linux/amd64; each phase measured 10 s after 3 s warm-up, 256 workers in all\n",
	} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "thresh")
	require.NotContains(t, got, "PASS")

	// The stack's own runner, no registry, nothing deployed.
	r := sampleScaleReport()
	r.Scale.Runners, r.Scale.RunnerRegistry, r.Scale.PerIntegrationRSSKB, r.Scale.StatusRunners = 0, RunnerRegistry{}, nil, map[string]int{"": 3}
	r.Scale.QuietP99WithFloodMs, r.Scale.SpreadToOneP99 = nil, nil
	out.Reset()
	require.NoError(t, r.WriteSummary(&out))
	require.Contains(t, out.String(), "the stack's own runner")
	require.Contains(t, out.String(), "runners         runner registry not available\n")
	require.Contains(t, out.String(), `their status: "" 3`)
	require.NotContains(t, out.String(), "per integration")
	require.NotContains(t, out.String(), "fairness")
	require.NotContains(t, out.String(), "spread ")
}

func TestScaleReportJSON(t *testing.T) {
	b, err := json.Marshal(sampleScaleReport())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	s, ok := got["scale"].(map[string]any)
	require.True(t, ok)
	for _, k := range []string{"tenants", "integrations", "active", "runners", "tenants_create_s", "deploy", "idle_without_integrations",
		"idle_with_integrations", "per_integration_rss_kb", "runner_registry", "integrations_by_status_runner", "phases",
		"flood_tenant_rate", "quiet_p99_without_flood_ms", "quiet_p99_with_flood_ms", "spread_p99_ms", "one_integration_p99_ms",
		"spread_to_one_p99"} {
		require.Contains(t, s, k)
	}
	deploy := s["deploy"].(map[string]any)
	require.Equal(t, 10.45, deploy["deploys_per_s"])
	require.Equal(t, 95.5, deploy["seconds"])
	idle := s["idle_without_integrations"].(map[string]any)
	require.Equal(t, 3.1, idle["cpu_percent_of_a_core"])
	require.Equal(t, 0.8, idle["postgres_cpu_percent_of_a_core"])
	phase := s["phases"].([]any)[2].(map[string]any)
	require.Equal(t, 2.0, s["spread_to_one_p99"])
	require.Equal(t, 9.7, phase["p99_ms"])
	require.Equal(t, 10000.0, phase["flood"].(map[string]any)["errors_by_status"].(map[string]any)["429"])
	reg := s["runner_registry"].(map[string]any)
	require.Equal(t, true, reg["available"])

	// Other scenarios carry no scale part.
	b, err = json.Marshal(&Report{Scenario: ScenarioPipeline})
	require.NoError(t, err)
	require.NotContains(t, string(b), `"scale"`)
}

// TestDeployCountsWhatDidNotRun deploys against an API that refuses one
// integration, never reports another running, and runs the rest: the
// result counts each, quotes the errors and times the ones running.
func TestDeployCountsWhatDidNotRun(t *testing.T) {
	api := newFakeIntegrationsAPI(t)
	s := &scaleRun{cfg: Config{Progress: io.Discard}}
	items := []*scaleIntegration{
		{tenant: "t1", name: "ok-1", api: api.client()},
		{tenant: "t1", name: "refused", api: api.client()},
		{tenant: "t2", name: "ok-2", api: api.client()},
		{tenant: "t2", name: "stuck", api: api.client()},
		{tenant: "t2", name: "broken", api: api.client()},
	}
	res := s.deploy(context.Background(), items, 1500*time.Millisecond)
	require.Equal(t, 5, res.Requested)
	require.Equal(t, 2, res.Running)
	require.Equal(t, 3, res.Failed)
	require.True(t, res.TimedOut)
	errs := strings.Join(res.Errors, "\n")
	require.Contains(t, errs, "t1/refused: create: 422")
	require.Contains(t, errs, "t2/stuck: not running after 1.5s")
	require.Contains(t, errs, `t2/broken: degraded on runner "r9": cannot open dir`)
	require.Positive(t, res.Seconds)
	require.InDelta(t, 2/res.Seconds, res.PerSecond, 1e-9)
	require.Equal(t, map[string]int{"r1": 2}, statusRunners(items))
	require.Equal(t, int64(7), items[0].version)
	require.Contains(t, api.deployBodies(), `{"reason":"vrsky bench --scenario scale","version":7}`)
}

// fakeIntegrationsAPI answers the integration operations deploy uses:
// create refuses "refused", status reports "stuck" never, "broken"
// degraded, and the others running on runner r1, all at version 7.
type fakeIntegrationsAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	deploys []string
}

func newFakeIntegrationsAPI(t *testing.T) *fakeIntegrationsAPI {
	f := &fakeIntegrationsAPI{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/integrations", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Name == "refused" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"title":"Unprocessable Entity","detail":"spec refused"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"version":7}`))
	})
	mux.HandleFunc("POST /v1/integrations/{id}/deploy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.deploys = append(f.deploys, string(b))
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /v1/integrations/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch id := r.PathValue("id"); {
		case id == "stuck":
			_, _ = w.Write([]byte(`{"id":"stuck","status":"deploying"}`))
		case id == "broken":
			_, _ = w.Write([]byte(`{"id":"broken","runner":{"runner":"r9","version":7,"status":"degraded","last_error":"cannot open dir"}}`))
		default:
			_, _ = w.Write([]byte(`{"id":"` + id + `","runner":{"runner":"r1","version":7,"status":"running"}}`))
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIntegrationsAPI) client() *client.API {
	c, err := client.New(f.srv.URL, "key")
	if err != nil {
		panic(err)
	}
	return c
}

func (f *fakeIntegrationsAPI) deployBodies() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.deploys, "\n")
}
