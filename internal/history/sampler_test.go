package history

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a real runner on a private NATS server and a migrated private
// PostgreSQL database.
type env struct {
	url   string
	js    jetstream.JetStream
	state *dataplane.State
	st    *store.Store
	pool  *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	nc, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	runner := &hotpath.Runner{JS: js, Catalog: connectors.Catalog(), FileRoot: t.TempDir(), Name: "r1", Logger: quiet}
	go func() { defer close(done); _ = runner.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{url: nc.ConnectedUrl(), js: js, state: state, st: store.New(pool), pool: pool}
}

// deploy asks the runner to run an integration that parses JSON (so a body
// that is not JSON fails for good) and writes what it gets to a file.
func (e *env) deploy(t *testing.T, p dataplane.Pipeline, status string) {
	t.Helper()
	e.deploySteps(t, p, status, spec.Step{Connector: "json-transform", Config: json.RawMessage(`{"set":{"seen":"true"}}`)})
}

// deploySteps asks the runner to run an integration of steps that writes
// what it gets to a file.
func (e *env) deploySteps(t *testing.T, p dataplane.Pipeline, status string, steps ...spec.Step) {
	t.Helper()
	require.NoError(t, e.state.PutDesired(context.Background(), dataplane.Desired{
		Tenant: p.Tenant, Integration: p.Integration, Version: 1, Status: status,
		Spec: spec.Integration{
			Name:      p.Integration,
			Consumer:  spec.Step{Connector: dataplane.WebhookConnector},
			Steps:     steps,
			Producers: map[string]spec.Step{"archive": {Connector: "file", Config: json.RawMessage(`{"dir":"archive"}`)}},
		},
	}))
}

func (e *env) send(t *testing.T, p dataplane.Pipeline, bodies ...string) {
	t.Helper()
	msgs := make([]sdk.Message, len(bodies))
	for i, b := range bodies {
		// Taken in 100 ms ago: every delivery's latency is at least that.
		msgs[i] = sdk.Message{ID: p.Integration + "-" + strconv.Itoa(i) + "-" + testenv.RandomID(4), Body: []byte(b), ContentType: "application/json",
			Received: time.Now().Add(-100 * time.Millisecond)}
	}
	require.NoError(t, (&dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: e.js}}).Publish(context.Background(), p, msgs))
}

type row struct{ in, out, errors, dlq int64 }

func (e *env) latest(t *testing.T, tenant, integration string) (row, bool) {
	t.Helper()
	var r row
	err := e.pool.QueryRow(context.Background(), `
		SELECT in_total, out_total, errors_total, dlq_messages FROM integration_samples
		WHERE tenant_id = $1 AND integration_id = $2 ORDER BY at DESC LIMIT 1`, tenant, integration).
		Scan(&r.in, &r.out, &r.errors, &r.dlq)
	return r, err == nil
}

func TestSamplerRecordsRunningIntegrationsCounters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, e.st, tenant)
	orders := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	idle := dataplane.Pipeline{Tenant: tenant, Integration: "idle"}
	e.deploy(t, orders, dataplane.DesiredRunning)
	e.deploy(t, idle, dataplane.DesiredStopped)

	// A sample older than the retention goes at the first prune.
	old := time.Now().Add(-25 * time.Hour)
	_, err := e.st.WriteSamples(ctx, []store.Sample{{TenantID: tenant, IntegrationID: "orders", At: old, In: 1}})
	require.NoError(t, err)

	s := &Sampler{State: e.state, Accounts: dataplane.SharedAccount{JS: e.js}, Store: e.st, Interval: 100 * time.Millisecond}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM integration_samples WHERE tenant_id = $1 AND at < now() - interval '24 hours'`, tenant).Scan(&n)
		return n == 0
	}, 10*time.Second, 50*time.Millisecond, "samples past the retention are pruned")

	// The runner needs its consumers before messages count.
	require.Eventually(t, func() bool {
		st, ok, err := e.state.GetStatus(ctx, orders)
		return err == nil && ok && st.Status == dataplane.StatusRunning
	}, 20*time.Second, 50*time.Millisecond)
	bodies := []string{"not json", "{broken"}
	for i := range 10 {
		bodies = append(bodies, `{"n":`+strconv.Itoa(i)+`}`)
	}
	e.send(t, orders, bodies...)

	var last row
	require.Eventually(t, func() bool {
		r, ok := e.latest(t, tenant, "orders")
		last = r
		return ok && r == row{in: 12, out: 10, errors: 2, dlq: 2}
	}, 30*time.Second, 100*time.Millisecond, "in, out, failed attempts and dead letters as the runner counted them (last: %+v)", &last)
	_, ok := e.latest(t, tenant, "idle")
	require.False(t, ok, "a stopped integration is not sampled")
	require.ElementsMatch(t, []dataplane.Pipeline{orders}, s.Running())

	points, err := e.st.IntegrationMetrics(ctx, tenant, "orders", time.Now().Add(-time.Minute), time.Second)
	require.NoError(t, err)
	var in, errs float64
	for _, p := range points {
		in += p.In
		errs += p.Errors
	}
	require.Positive(t, in, "the rates show the messages")
	require.Positive(t, errs)

	// The deliveries' latencies: percentiles of the intervals they were
	// delivered in, from the message's ingestion, so at least the lower
	// bound of the bucket holding 100 ms, (64 ms, 128 ms].
	type latency struct{ p50, p99 *float64 }
	var measured []latency
	require.Eventually(t, func() bool {
		rows, err := e.pool.Query(ctx, `SELECT p50_ms, p99_ms FROM integration_samples
			WHERE tenant_id = $1 AND integration_id = 'orders' AND p50_ms IS NOT NULL`, tenant)
		require.NoError(t, err)
		measured, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (latency, error) {
			var l latency
			return l, r.Scan(&l.p50, &l.p99)
		})
		require.NoError(t, err)
		return len(measured) > 0
	}, 30*time.Second, 100*time.Millisecond, "a sample with the deliveries' latencies")
	for _, l := range measured {
		require.NotNil(t, l.p99)
		require.GreaterOrEqual(t, *l.p50, 64.0)
		require.LessOrEqual(t, *l.p50, *l.p99)
		require.Less(t, *l.p99, 30_000.0)
	}
	var unmeasured int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM integration_samples
		WHERE tenant_id = $1 AND integration_id = 'orders' AND p50_ms IS NULL AND at > now() - interval '1 minute'`, tenant).Scan(&unmeasured))
	require.Positive(t, unmeasured, "samples of intervals without a delivery have none")
	points, err = e.st.IntegrationMetrics(ctx, tenant, "orders", time.Now().Add(-time.Minute), time.Minute)
	require.NoError(t, err)
	var p50s int
	for _, p := range points {
		if p.P50Millis != nil {
			p50s++
			require.LessOrEqual(t, *p.P50Millis, *p.P99Millis)
		}
	}
	require.Positive(t, p50s, "the history serves them")

	// Stopping the integration stops its samples.
	e.deploy(t, orders, dataplane.DesiredStopped)
	require.Eventually(t, func() bool { return len(s.Running()) == 0 }, 10*time.Second, 20*time.Millisecond)
}

func TestSamplerSkipsWhatItCannotReadAndUnknownTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// A tenant with no row in PostgreSQL: its samples are not stored.
	ghost := dataplane.Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}
	e.deploy(t, ghost, dataplane.DesiredRunning)
	s := &Sampler{State: e.state, Accounts: failingAccounts{}, Store: e.st}
	w, err := e.state.Desired.WatchAll(ctx)
	require.NoError(t, err)
	defer func() { _ = w.Stop() }()
	for entry := range w.Updates() {
		if entry == nil {
			break
		}
		s.follow(entry)
	}
	require.Len(t, s.Running(), 1)
	n, err := s.Sample(ctx)
	require.NoError(t, err, "an integration that cannot be read is left out")
	require.Zero(t, n)

	s.Accounts = dataplane.SharedAccount{JS: e.js}
	n, err = s.Sample(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a tenant PostgreSQL does not know is not stored")
}

type failingAccounts struct{}

func (failingAccounts) JetStream(context.Context, string) (jetstream.JetStream, error) {
	return nil, context.DeadlineExceeded
}

// An integration is sampled as soon as it is deployed, so the messages it
// takes before the first tick still show as a rate.
func TestSamplerSamplesANewIntegrationAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, e.st, tenant)
	s := &Sampler{State: e.state, Accounts: dataplane.SharedAccount{JS: e.js}, Store: e.st, Interval: time.Hour}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	fresh := dataplane.Pipeline{Tenant: tenant, Integration: "fresh"}
	e.deploy(t, fresh, dataplane.DesiredRunning)
	require.Eventually(t, func() bool { _, ok := e.latest(t, tenant, "fresh"); return ok }, 10*time.Second, 20*time.Millisecond,
		"sampled long before the hourly tick")
	r, _ := e.latest(t, tenant, "fresh")
	require.Zero(t, r.in, "nothing moved yet")
}

// TestSamplerTurnsLatencyGrowthIntoPercentiles: each sample's percentiles
// are those of the deliveries counted since the previous sample, whatever
// runners added them; no growth, or a histogram that cannot be read,
// leaves them null without losing the sample.
func TestSamplerTurnsLatencyGrowthIntoPercentiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	st := store.New(pool)
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, st, tenant)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "timed"}
	s := &Sampler{State: state, Accounts: dataplane.SharedAccount{JS: js}, Store: st}
	desired, err := json.Marshal(dataplane.Desired{Tenant: tenant, Integration: "timed", Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: "timed", Consumer: spec.Step{Connector: dataplane.WebhookConnector},
			Producers: map[string]spec.Step{"out": {Connector: "file"}}}})
	require.NoError(t, err)
	rev, err := state.Desired.Put(ctx, p.Key(), desired)
	require.NoError(t, err)
	entry, err := state.Desired.GetRevision(ctx, p.Key(), rev)
	require.NoError(t, err)
	s.follow(entry)

	put := func(l dataplane.Latencies) {
		t.Helper()
		b, err := l.MarshalJSON()
		require.NoError(t, err)
		_, err = state.Counts.Put(ctx, p.CountKey(dataplane.LatencyCount), b)
		require.NoError(t, err)
	}
	var last struct{ p50, p99 *float64 }
	sample := func() {
		t.Helper()
		n, err := s.Sample(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.NoError(t, pool.QueryRow(ctx, `SELECT p50_ms, p99_ms FROM integration_samples
			WHERE tenant_id = $1 ORDER BY at DESC LIMIT 1`, tenant).Scan(&last.p50, &last.p99))
	}

	var l dataplane.Latencies
	l[2] = 1000 // counted before the sampler started: not this interval's
	put(l)
	sample()
	require.Nil(t, last.p50, "the first read only sets where the next starts")
	require.Nil(t, last.p99)

	// Two runners added 90 deliveries in (1, 2] ms and 10 in (8, 16] ms.
	l[2] += 90
	l[5] += 10
	put(l)
	sample()
	require.NotNil(t, last.p50)
	require.InDelta(t, 1+50.0/90, *last.p50, 1e-6)
	require.InDelta(t, 8+8*9.0/10, *last.p99, 1e-6)

	sample()
	require.Nil(t, last.p50, "nothing delivered in the interval")
	require.Nil(t, last.p99)

	// A histogram that cannot be read: the sample is written without it.
	_, err = state.Counts.Put(ctx, p.CountKey(dataplane.LatencyCount), []byte("[1,2,3]"))
	require.NoError(t, err)
	sample()
	require.Nil(t, last.p50)

	// The counts started again (the key was removed and written anew):
	// all of it is the interval's.
	var again dataplane.Latencies
	again[dataplane.LatencyBuckets] = 4 // the unbounded bucket
	put(again)
	sample()
	require.NotNil(t, last.p50)
	require.InDelta(t, dataplane.LatencyBound(dataplane.LatencyBuckets-1).Seconds()*1000, *last.p99, 1e-6, "the unbounded bucket answers the last bound")
}
