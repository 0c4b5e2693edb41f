package history

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

// apiRequests counts the JetStream API requests of one connection: a
// connection in the same account receives every request on $JS.API.>,
// and the counted connection's replies go to its own inbox prefix.
type apiRequests struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	prefix string
}

func watchAPIRequests(t *testing.T, url, prefix string) *apiRequests {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("$JS.API.>")
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	require.NoError(t, nc.Flush())
	return &apiRequests{nc: nc, sub: sub, prefix: prefix + "."}
}

// take returns how many requests the counted connection made since the
// last take, and their subjects. The requests were answered, so the server
// had passed them on to this connection before it answers the flush.
func (r *apiRequests) take(t *testing.T) (int, []string) {
	t.Helper()
	require.NoError(t, r.nc.Flush())
	var subjects []string
	for {
		m, err := r.sub.NextMsg(20 * time.Millisecond)
		if err != nil {
			require.ErrorIs(t, err, nats.ErrTimeout)
			return len(subjects), subjects
		}
		if strings.HasPrefix(m.Reply, r.prefix) {
			subjects = append(subjects, m.Subject)
		}
	}
}

// sampler returns a sampler on a connection of its own, whose replies
// go to inbox.
func (e *env) sampler(t *testing.T, inbox string) *Sampler {
	t.Helper()
	nc, err := nats.Connect(e.url, nats.CustomInboxPrefix(inbox))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	state, err := dataplane.OpenState(context.Background(), js)
	require.NoError(t, err)
	// QuietListEvery: the tenant's streams are listed at every sample
	// unless a test says otherwise (TestSamplerListsAQuietTenantSeldom).
	return &Sampler{State: state, Accounts: dataplane.SharedAccount{JS: js}, Store: e.st, FullReadEvery: time.Hour, QuietListEvery: time.Nanosecond}
}

// watchedSampler is a sampler of e (configure, when set, changes its
// settings) with the counts watch running and every running integration
// followed, the count of its JetStream API requests, and what stops the
// watch.
func (e *env) watchedSampler(t *testing.T, configure func(*Sampler)) (*Sampler, *apiRequests, func()) {
	t.Helper()
	s := e.sampler(t, "_SAMPLER")
	if configure != nil {
		configure(s)
	}
	requests := watchAPIRequests(t, e.url, "_SAMPLER")
	stop, err := s.watchCounts(context.Background())
	require.NoError(t, err)
	t.Cleanup(stop)
	followAll(t, s)
	return s, requests, stop
}

// followAll makes s follow the desired state as it is now.
func followAll(t *testing.T, s *Sampler) {
	t.Helper()
	w, err := s.State.Desired.WatchAll(context.Background())
	require.NoError(t, err)
	defer func() { _ = w.Stop() }()
	for entry := range w.Updates() {
		if entry == nil {
			return
		}
		s.follow(entry)
	}
}

func (e *env) waitRunning(t *testing.T, ps ...dataplane.Pipeline) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, p := range ps {
			st, ok, err := e.state.GetStatus(context.Background(), p)
			if err != nil || !ok || st.Status != dataplane.StatusRunning {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond)
}

// counted reads p's counters as the sampler would, on the test's own
// connection.
func (e *env) counted(t *testing.T, p dataplane.Pipeline) row {
	t.Helper()
	ctx := context.Background()
	stages, dead, err := dataplane.Counters(ctx, e.js, e.state.Counts, p)
	require.NoError(t, err)
	failed, err := dataplane.ReadFailures(ctx, e.state.Counts, p)
	require.NoError(t, err)
	r := row{errors: int64(failed), dlq: int64(dead)}
	for _, st := range stages {
		switch {
		case st.Stage == dataplane.StageProcess:
			r.in += int64(st.Acked) + int64(st.Pending) + int64(st.InFlight)
		case strings.HasPrefix(st.Stage, dataplane.StageDeliverPrefix):
			r.out += int64(st.Acked)
		}
	}
	return r
}

// TestSamplerReadsOnlyIntegrationsThatMoved: with many idle integrations
// a sample costs one stream listing, whatever their number; an
// integration that takes messages, or whose dead letters change, is read
// in full, and its counters show in the next sample; every integration
// still has its row.
func TestSamplerReadsOnlyIntegrationsThatMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, e.st, tenant)
	const idle = 50
	var all []dataplane.Pipeline
	for i := range idle {
		all = append(all, dataplane.Pipeline{Tenant: tenant, Integration: fmt.Sprintf("idle%02d", i)})
	}
	orders := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	all = append(all, orders)
	for _, p := range all {
		e.deploy(t, p, dataplane.DesiredRunning)
	}
	e.waitRunning(t, all...)

	s, requests, _ := e.watchedSampler(t, nil)
	require.Len(t, s.Running(), len(all))
	requests.take(t)

	// What every sample cost before: a full read of every integration.
	for _, p := range all {
		_, err := s.read(ctx, p)
		require.NoError(t, err)
	}
	before, _ := requests.take(t)
	perRead := before / len(all)
	require.Equal(t, perRead*len(all), before, "every integration's full read costs the same")
	require.GreaterOrEqual(t, perRead, 7, "stream, consumers, a count per stage, failures, latencies, the DLQ")

	sample := func() (int, []string) {
		t.Helper()
		n, err := s.Sample(ctx)
		require.NoError(t, err)
		require.Equal(t, len(all), n, "every running integration has its row")
		return requests.take(t)
	}
	first, _ := sample()
	require.GreaterOrEqual(t, first, before, "the first sample reads every integration")
	s.mu.Lock()
	earliest, latest := s.last[all[0].Key()].due, s.last[all[0].Key()].due
	for _, p := range all {
		due := s.last[p.Key()].due
		earliest, latest = minTime(earliest, due), maxTime(latest, due)
	}
	s.mu.Unlock()
	require.Greater(t, latest.Sub(earliest), s.FullReadEvery/2, "their full reads fall due spread over FullReadEvery")

	for range 3 {
		n, subjects := sample()
		require.LessOrEqual(t, n, 1, "idle: one listing of the tenant's streams (%v)", subjects)
		t.Logf("JetStream API requests per sample, %d idle integrations: %d before, %d now %v", len(all), before, n, subjects)
	}
	r, ok := e.latest(t, tenant, "idle07")
	require.True(t, ok)
	require.Equal(t, row{}, r)

	// orders takes messages: it is read in full, the others are not.
	bodies := []string{"not json", "{broken"}
	for i := range 10 {
		bodies = append(bodies, `{"n":`+strconv.Itoa(i)+`}`)
	}
	e.send(t, orders, bodies...)
	want := row{in: 12, out: 10, errors: 2, dlq: 2}
	require.Eventually(t, func() bool { return e.counted(t, orders) == want }, 30*time.Second, 50*time.Millisecond)
	n, subjects := sample()
	require.LessOrEqual(t, n, 1+2+perRead, "the listing, the DLQ's counts per subject, one full read (%v)", subjects)
	r, _ = e.latest(t, tenant, "orders")
	require.Equal(t, want, r, "its counters show in the next sample")
	r, _ = e.latest(t, tenant, "idle07")
	require.Equal(t, row{}, r)

	// Once the runner's last counts are in, samples are idle again.
	require.Eventually(t, func() bool { n, _ := sample(); return n <= 1 }, 20*time.Second, 200*time.Millisecond)

	// A dead letter of an integration that moved nothing else, and one
	// discarded from orders' dead letters: both show in the next sample.
	_, err := e.js.Publish(ctx, all[7].DLQSubject(), []byte(`{}`))
	require.NoError(t, err)
	letters, _, err := dataplane.ListDLQ(ctx, e.js, tenant, dataplane.DLQFilter{Integration: "orders"}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 2)
	require.NoError(t, dataplane.DiscardDeadLetter(ctx, e.js, tenant, letters[0].Seq))
	n, subjects = sample()
	require.LessOrEqual(t, n, 1+2+2*perRead, "the listing, the DLQ's counts per subject, two full reads (%v)", subjects)
	r, _ = e.latest(t, tenant, "idle07")
	require.Equal(t, row{dlq: 1}, r)
	r, _ = e.latest(t, tenant, "orders")
	require.Equal(t, row{in: 12, out: 10, errors: 2, dlq: 1}, r)
	n, _ = sample()
	require.LessOrEqual(t, n, 1)

	// The history serves the repeated rows as rates of zero, one point a
	// sample, and orders' messages as a rate.
	points, err := e.st.IntegrationMetrics(ctx, tenant, "idle03", time.Now().Add(-time.Hour), time.Second)
	require.NoError(t, err)
	require.NotEmpty(t, points)
	for _, p := range points {
		require.Zero(t, p.In+p.Out+p.Errors+p.DLQ)
		require.Nil(t, p.P50Millis)
	}
	points, err = e.st.IntegrationMetrics(ctx, tenant, "orders", time.Now().Add(-time.Hour), time.Hour)
	require.NoError(t, err)
	require.Len(t, points, 1)
	require.Positive(t, points[0].In)
	require.NotNil(t, points[0].P99Millis, "the interval orders delivered in has its latencies")
}

// TestSamplerListsAQuietTenantSeldom: a tenant none of whose integrations
// the counts watch marked costs no request at all between two listings;
// messages a runner takes show in the next sample, even when a filter
// drops them all; a dead letter written without any runner shows once
// QuietListEvery has passed since the last listing.
func TestSamplerListsAQuietTenantSeldom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, e.st, tenant)
	quiet := dataplane.Pipeline{Tenant: tenant, Integration: "quiet"}
	dropper := dataplane.Pipeline{Tenant: tenant, Integration: "dropper"}
	e.deploy(t, quiet, dataplane.DesiredRunning)
	e.deploySteps(t, dropper, dataplane.DesiredRunning, spec.Step{Connector: "filter", Config: json.RawMessage(`{"keep":"false"}`)})
	e.waitRunning(t, quiet, dropper)

	s, requests, _ := e.watchedSampler(t, func(s *Sampler) { s.QuietListEvery = 3 * time.Second })
	sample := func() int {
		t.Helper()
		n, err := s.Sample(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, n, "every running integration has its row")
		n, _ = requests.take(t)
		return n
	}
	requests.take(t)
	require.Positive(t, sample(), "the first sample lists and reads everything")
	listedAt := time.Now()
	require.Zero(t, sample(), "quiet: no request at all")
	require.Zero(t, sample())

	// Every message dropped by the filter: only the taken count moves.
	e.send(t, dropper, `{"a":1}`, `{"a":2}`, `{"a":3}`)
	require.Eventually(t, func() bool { return e.counted(t, dropper).in == 3 }, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		r, err := dataplane.ReadCount(ctx, e.state.Counts, dropper.CountKey(dataplane.TakenCount))
		return err == nil && r == 3
	}, 10*time.Second, 50*time.Millisecond, "the runner counted what its process stage took")
	require.Positive(t, sample(), "the dropper moved: its tenant is listed and it is read")
	r, _ := e.latest(t, tenant, "dropper")
	require.Equal(t, row{in: 3}, r)
	listedAt = time.Now()
	require.Zero(t, sample(), "quiet again")

	// A dead letter no runner wrote: seen at the first listing after
	// QuietListEvery, not before.
	_, err := e.js.Publish(ctx, quiet.DLQSubject(), []byte(`{}`))
	require.NoError(t, err)
	require.Zero(t, sample())
	r, _ = e.latest(t, tenant, "quiet")
	require.Equal(t, row{}, r, "not listed yet")
	time.Sleep(time.Until(listedAt.Add(s.QuietListEvery)))
	require.Positive(t, sample())
	r, _ = e.latest(t, tenant, "quiet")
	require.Equal(t, row{dlq: 1}, r)
}

// TestSamplerReadsEverythingInFullNowAndThen: an integration nothing moved
// is read in full once FullReadEvery has passed, after its tenant's
// streams could not be listed, and after a new version of it.
func TestSamplerReadsEverythingInFullNowAndThen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tenant := "t" + testenv.RandomID(6)
	testtenant.Active(t, e.st, tenant)
	var all []dataplane.Pipeline
	for i := range 3 {
		p := dataplane.Pipeline{Tenant: tenant, Integration: "quiet" + strconv.Itoa(i)}
		e.deploy(t, p, dataplane.DesiredRunning)
		all = append(all, p)
	}
	e.waitRunning(t, all...)
	s, requests, stop := e.watchedSampler(t, func(s *Sampler) { s.FullReadEvery = 2 * time.Second })
	sample := func(want int) int {
		t.Helper()
		n, err := s.Sample(ctx)
		require.NoError(t, err)
		require.Equal(t, want, n)
		n, _ = requests.take(t)
		return n
	}
	requests.take(t)
	_, err := s.read(ctx, all[0])
	require.NoError(t, err)
	one, _ := requests.take(t)
	require.GreaterOrEqual(t, one, 7)
	// The listing, the DLQ's counts per subject (its first listing), and
	// every integration's full read.
	require.Equal(t, 1+2+3*one, sample(3))

	time.Sleep(s.FullReadEvery + 100*time.Millisecond)
	require.Equal(t, 1+3*one, sample(3), "every integration was due")
	require.LessOrEqual(t, sample(3), 1, "and is not again before FullReadEvery")
	// From here on no read falls due by time, however slowly the machine
	// runs the samples below.
	s.FullReadEvery = time.Hour

	// Its tenant's streams cannot be listed: nothing is written, and what
	// moved meanwhile is read in full afterwards.
	accounts := s.Accounts
	s.Accounts = failingAccounts{}
	require.Zero(t, sample(0))
	s.Accounts = accounts
	require.Equal(t, 1+3*one, sample(3))

	// A new version of one: it is read in full.
	require.LessOrEqual(t, sample(3), 1)
	e.deploy(t, all[1], dataplane.DesiredRunning)
	entry, err := e.state.Desired.Get(ctx, all[1].Key())
	require.NoError(t, err)
	s.follow(entry)
	require.Equal(t, 1+one, sample(3))

	// Once the counts watch ends, every sample reads everything.
	stop()
	requests.take(t) // the watch's consumer deleted
	require.Equal(t, 1+3*one, sample(3))
	require.Equal(t, 1+3*one, sample(3))

	// A new watch: what was written before it went unmarked, so the first
	// sample reads everything, and the next ones only what moved.
	stop, err = s.watchCounts(ctx)
	require.NoError(t, err)
	t.Cleanup(stop)
	requests.take(t) // the watch's consumer made
	require.Equal(t, 1+3*one, sample(3))
	require.LessOrEqual(t, sample(3), 1)
}

func TestPipelineKeyOfCountKeys(t *testing.T) {
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"acme.orders.process", "acme.orders", true},
		{"acme.orders.deliver-archive", "acme.orders", true},
		{"acme.orders.latency.extra", "acme.orders", true},
		{"acme.orders", "", false},
		{"acme", "", false},
		{"", "", false},
		{".orders.process", "", false},
		{"acme..process", "", false},
		{strings.Repeat("a", 10_000) + ".b.c", strings.Repeat("a", 10_000) + ".b", true},
	} {
		got, ok := pipelineKey(tc.key)
		require.Equal(t, tc.ok, ok, tc.key)
		require.Equal(t, tc.want, got, tc.key)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestSamplerInAnAccountPerTenant: where each tenant has its own NATS
// account (the dev stack's mode), an idle sample costs one listing in each
// tenant's account and nothing in the platform's, and an integration that
// takes messages shows them in the next sample.
func TestSamplerInAnAccountPerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	url, keys := testenv.NATSWithAccounts(t)
	sys, err := keys.SystemUser("test")
	require.NoError(t, err)
	admin := natsauth.NewAdmin(keys, testenv.Connect(t, url, sys))
	tenants := []string{"t" + testenv.RandomID(6), "t" + testenv.RandomID(6)}
	for _, tenant := range tenants {
		_, err = admin.PutTenant(ctx, tenant, natsauth.DefaultLimits)
		require.NoError(t, err)
		testtenant.Active(t, st, tenant)
	}
	platform, err := keys.PlatformUser("test")
	require.NoError(t, err)
	platformJS, err := jetstream.New(testenv.Connect(t, url, platform))
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, platformJS)
	require.NoError(t, err)
	accounts := natsauth.NewPool(url, keys, "runner")
	t.Cleanup(accounts.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	runner := &hotpath.Runner{JS: platformJS, Accounts: accounts, Catalog: connectors.Catalog(), FileRoot: t.TempDir(), Name: "r1", Logger: quiet}
	go func() { defer close(done); _ = runner.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	e := &env{state: state, st: st, pool: pool}
	var all []dataplane.Pipeline
	for _, tenant := range tenants {
		for i := range 10 {
			p := dataplane.Pipeline{Tenant: tenant, Integration: "idle" + strconv.Itoa(i)}
			e.deploy(t, p, dataplane.DesiredRunning)
			all = append(all, p)
		}
	}
	e.waitRunning(t, all...)

	// The sampler's connections, all replying to its own inbox prefix,
	// and one watcher of the API requests in each account.
	const inbox = "_SAMPLER"
	samplerAccounts := natsauth.NewPool(url, keys, "sampler", nats.CustomInboxPrefix(inbox))
	t.Cleanup(samplerAccounts.Close)
	platformConn, err := nats.Connect(url, platform.Option(), nats.CustomInboxPrefix(inbox))
	require.NoError(t, err)
	t.Cleanup(platformConn.Close)
	samplerJS, err := jetstream.New(platformConn)
	require.NoError(t, err)
	samplerState, err := dataplane.OpenState(ctx, samplerJS)
	require.NoError(t, err)
	s := &Sampler{State: samplerState, Accounts: samplerAccounts, Store: st, FullReadEvery: time.Hour, QuietListEvery: time.Nanosecond}
	watchers := map[string]*apiRequests{"platform": countAPIRequestsAs(t, url, platform, inbox)}
	for _, tenant := range tenants {
		creds, err := keys.TenantUser(tenant, "watcher")
		require.NoError(t, err)
		watchers[tenant] = countAPIRequestsAs(t, url, creds, inbox)
	}
	take := func() map[string]int {
		t.Helper()
		n := map[string]int{}
		for account, w := range watchers {
			n[account], _ = w.take(t)
		}
		return n
	}
	stop, err := s.watchCounts(ctx)
	require.NoError(t, err)
	t.Cleanup(stop)
	followAll(t, s)
	take()

	sample := func() map[string]int {
		t.Helper()
		n, err := s.Sample(ctx)
		require.NoError(t, err)
		require.Equal(t, len(all), n)
		return take()
	}
	first := sample()
	for _, tenant := range tenants {
		// Its stream, consumers, DLQ and DLQ subject.
		require.GreaterOrEqual(t, first[tenant], 10*4, "the first sample reads every integration in its tenant's account")
	}
	// Its stages' direct counts, failures and latencies.
	require.GreaterOrEqual(t, first["platform"], 2*10*4, "and its counts in the platform's")
	for range 2 {
		idle := sample()
		require.Equal(t, map[string]int{"platform": 0, tenants[0]: 1, tenants[1]: 1}, idle, "one listing per tenant")
		t.Logf("JetStream API requests per sample, 2 tenants of 10 idle integrations: %v at first, %v idle", first, idle)
	}

	// One integration takes messages.
	orders := all[13]
	msgs := []sdk.Message{{ID: "m1", Body: []byte(`{"n":1}`), ContentType: "application/json", Received: time.Now()},
		{ID: "m2", Body: []byte(`{"n":2}`), ContentType: "application/json", Received: time.Now()}}
	require.NoError(t, (&dataplane.Publisher{Accounts: accounts}).Publish(ctx, orders, msgs))
	tenantJS, err := accounts.JetStream(ctx, orders.Tenant)
	require.NoError(t, err)
	e.js = tenantJS
	want := row{in: 2, out: 2}
	require.Eventually(t, func() bool { return e.counted(t, orders) == want }, 30*time.Second, 50*time.Millisecond)
	sample()
	r, ok := e.latest(t, orders.Tenant, orders.Integration)
	require.True(t, ok)
	require.Equal(t, want, r)
	r, _ = e.latest(t, all[3].Tenant, all[3].Integration)
	require.Equal(t, row{}, r)
}

// countAPIRequestsAs counts, in the account of creds, the JetStream API
// requests whose replies go to the inbox prefix.
func countAPIRequestsAs(t *testing.T, url string, creds natsauth.Creds, inbox string) *apiRequests {
	t.Helper()
	nc := testenv.Connect(t, url, creds)
	sub, err := nc.SubscribeSync("$JS.API.>")
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	require.NoError(t, nc.Flush())
	return &apiRequests{nc: nc, sub: sub, prefix: inbox + "."}
}
