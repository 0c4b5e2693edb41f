package activities

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/provision"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

// serverProvisioner gives each tenant a real embedded JetStream server
// with a password: the Provisioner contract, without processes (those are
// internal/provision/local's tests).
type serverProvisioner struct {
	t       *testing.T
	mu      sync.Mutex
	servers map[string]dataplane.Instance
	stops   map[string]func()
	removed []string
}

func (p *serverProvisioner) Ensure(_ context.Context, tenant string) (dataplane.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if inst, ok := p.servers[tenant]; ok {
		return inst, nil
	}
	url, stop := testenv.DedicatedNATS(p.t, "vrsky", "pw-"+tenant)
	p.servers[tenant] = dataplane.Instance{URLs: []string{url}, User: "vrsky", Password: "pw-" + tenant}
	p.stops[tenant] = stop
	return p.servers[tenant], nil
}

func (p *serverProvisioner) Check(_ context.Context, tenant string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.servers[tenant]; !ok {
		return provision.ErrNotFound
	}
	return nil
}

func (p *serverProvisioner) Remove(_ context.Context, tenant string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stop, ok := p.stops[tenant]; ok {
		stop()
		delete(p.servers, tenant)
		delete(p.stops, tenant)
	}
	p.removed = append(p.removed, tenant)
	return nil
}

type placementFixture struct {
	a        *Placement
	st       *store.Store
	tenant   string
	kv       jetstream.KeyValue
	shared   jetstream.JetStream
	prov     *serverProvisioner
	state    *dataplane.State
	requests []wire.PlacementRequest
}

func newPlacementFixture(t *testing.T) *placementFixture {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, js := testenv.JetStream(t)
	kv, err := dataplane.OpenPlacements(ctx, js)
	require.NoError(t, err)
	placed, err := dataplane.NewPlacedAccounts(ctx, kv, dataplane.SharedAccount{JS: js}, "test")
	require.NoError(t, err)
	t.Cleanup(placed.Close)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	keys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	f := &placementFixture{st: store.New(db), tenant: "t-" + testenv.RandomID(4), kv: kv, shared: js, state: state,
		prov: &serverProvisioner{t: t, servers: map[string]dataplane.Instance{}, stops: map[string]func(){}}}
	f.a = &Placement{Store: f.st, JS: js, Accounts: placed, Provisioner: f.prov, Keys: keys,
		Policy: PlacementPolicy{PromoteIntegrations: 2, PromoteRate: 1000, Window: time.Minute, DemoteAfter: time.Minute, CheckEvery: time.Second},
		Request: func(_ context.Context, tenant string, req wire.PlacementRequest) error {
			f.requests = append(f.requests, req)
			return nil
		}}
	testtenant.Active(t, f.st, f.tenant)
	return f
}

func (f *placementFixture) integration(t *testing.T, name string) dataplane.Pipeline {
	t.Helper()
	ctx := context.Background()
	in, err := spec.ParseJSON([]byte(`{"name":"` + name + `","consumer":{"connector":"http-webhook"},"producers":{"out":{"connector":"file","config":{"path":"out.ndjson"}}}}`))
	require.NoError(t, err)
	_, err = f.st.CreateIntegration(ctx, f.tenant, in, "test")
	require.NoError(t, err)
	d := dataplane.Desired{Tenant: f.tenant, Integration: name, Version: 1, Status: dataplane.DesiredRunning, Spec: in}
	require.NoError(t, f.state.PutDesired(ctx, d))
	return d.Pipeline()
}

// The steps of a move to a dedicated instance and back, on real
// PostgreSQL and NATS servers: credentials sealed, streams prepared,
// placement mirrored, dead letters copied, old streams and instance gone.
func TestPlacementActivitiesMoveATenantAndBack(t *testing.T) {
	f := newPlacementFixture(t)
	ctx := context.Background()
	p := f.integration(t, "orders")
	_, err := dataplane.EnsureStreams(ctx, f.shared, p)
	require.NoError(t, err)
	in := PlacementInput{Tenant: f.tenant}

	loaded, err := f.a.LoadPlacement(ctx, in)
	require.NoError(t, err)
	require.Equal(t, LoadedPlacement{State: wire.PlacementState{Tenant: f.tenant, Placement: wire.PlacementShared}, CheckEvery: time.Second}, loaded)
	gone, err := f.a.LoadPlacement(ctx, PlacementInput{Tenant: "nobody"})
	require.NoError(t, err)
	require.True(t, gone.Gone)

	require.NoError(t, f.a.EnsureInstance(ctx, in))
	rec, err := f.st.GetPlacement(ctx, f.tenant)
	require.NoError(t, err)
	require.NotEmpty(t, rec.Instance)
	require.False(t, bytes.Contains(rec.Instance, []byte("pw-"+f.tenant)), "the password is sealed in PostgreSQL")
	problem, err := f.a.CheckInstance(ctx, in)
	require.NoError(t, err)
	require.Empty(t, problem)

	n, err := f.a.PrepareStreams(ctx, PlacementInput{Tenant: f.tenant, Location: dataplane.Dedicated})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, f.a.MirrorPlacement(ctx, MirrorPlacementInput{Tenant: f.tenant, Write: dataplane.Dedicated, Draining: dataplane.Shared}))
	entry, err := f.kv.Get(ctx, f.tenant)
	require.NoError(t, err)
	mirrored := dataplane.PlacementOf(entry)
	require.Equal(t, dataplane.Dedicated, mirrored.Write)
	require.Equal(t, "pw-"+f.tenant, mirrored.Dedicated.Password)
	dedicated, err := f.a.Accounts.At(ctx, mirrored, dataplane.Dedicated)
	require.NoError(t, err)
	_, err = dedicated.Stream(ctx, p.Stream())
	require.NoError(t, err, "the pipeline's stream is ready at the new location")

	// The old location holds a message: the drain waits for it.
	pub := &dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: f.shared}, Claims: &dataplane.ClaimCheck{}}
	require.NoError(t, pub.Publish(ctx, p, []sdk.Message{{ID: "late", Body: []byte("x"), Received: time.Now()}}))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.a)
	drained := make(chan error, 1)
	go func() {
		_, err := env.ExecuteActivity(f.a.WaitDrained, PlacementInput{Tenant: f.tenant, Location: dataplane.Shared})
		drained <- err
	}()
	select {
	case err := <-drained:
		t.Fatalf("drained while a message waits: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	stream, err := f.shared.Stream(ctx, p.Stream())
	require.NoError(t, err)
	require.NoError(t, stream.Purge(ctx)) // as a runner acking it would
	select {
	case err := <-drained:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not see the old location empty")
	}

	_, err = f.shared.Publish(ctx, p.DLQSubject(), []byte("dead"))
	require.NoError(t, err)
	copied, err := f.a.MoveDLQ(ctx, MoveDLQInput{Tenant: f.tenant, From: dataplane.Shared, To: dataplane.Dedicated})
	require.NoError(t, err)
	require.Equal(t, 1, copied)
	retired, err := f.a.RetireLocation(ctx, PlacementInput{Tenant: f.tenant, Location: dataplane.Shared})
	require.NoError(t, err)
	require.Equal(t, 2, retired, "the pipeline's stream and the DLQ")

	// Back to shared: the instance is removed and its credentials forgotten.
	require.NoError(t, f.a.MirrorPlacement(ctx, MirrorPlacementInput{Tenant: f.tenant, Write: dataplane.Shared}))
	_, err = f.kv.Get(ctx, f.tenant)
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
	_, err = f.a.RetireLocation(ctx, PlacementInput{Tenant: f.tenant, Location: dataplane.Dedicated})
	require.NoError(t, err)
	require.Equal(t, []string{f.tenant}, f.prov.removed)
	rec, err = f.st.GetPlacement(ctx, f.tenant)
	require.NoError(t, err)
	require.Empty(t, rec.Instance)
	problem, err = f.a.CheckInstance(ctx, in)
	require.NoError(t, err)
	require.Contains(t, problem, "no dedicated instance")

	require.NoError(t, f.a.RecordPlacement(ctx, RecordPlacementInput{State: wire.PlacementState{Tenant: f.tenant, Placement: wire.PlacementShared, Forced: true}, Reason: "admin"}))
	history, err := f.st.PlacementHistory(ctx, f.tenant, 10)
	require.NoError(t, err)
	require.Equal(t, "admin", history[0].Reason)
}

// A platform that cannot provision refuses a move for good, and an
// invalid placement is not retried either.
func TestPlacementActivitiesRefuseWhatCannotWork(t *testing.T) {
	f := newPlacementFixture(t)
	ctx := context.Background()
	f.a.Provisioner = nil
	var appErr *temporal.ApplicationError
	err := f.a.EnsureInstance(ctx, PlacementInput{Tenant: f.tenant})
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrNoProvisioner, appErr.Type())
	require.True(t, appErr.NonRetryable())
	problem, err := f.a.CheckInstance(ctx, PlacementInput{Tenant: f.tenant})
	require.NoError(t, err)
	require.Equal(t, "no provisioner", problem)

	f.a.Provisioner, f.a.Keys = f.prov, nil
	err = f.a.EnsureInstance(ctx, PlacementInput{Tenant: f.tenant})
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrNoProvisioner, appErr.Type())

	err = f.a.MirrorPlacement(ctx, MirrorPlacementInput{Tenant: f.tenant, Write: dataplane.Dedicated})
	require.ErrorAs(t, err, &appErr, "dedicated without an instance")
	require.Equal(t, "InvalidPlacement", appErr.Type())
}

// Usage decides: enough integrations promote a shared tenant through the
// sweep (unless an admin holds it shared), and a quiet dedicated tenant is
// demoted.
func TestPlacementUsageAndSweep(t *testing.T) {
	f := newPlacementFixture(t)
	ctx := context.Background()
	in := PlacementInput{Tenant: f.tenant}
	f.integration(t, "one")
	v, err := f.a.JudgeUsage(ctx, in)
	require.NoError(t, err)
	require.Equal(t, UsageVerdict{}, v, "one integration of two: neither promoted nor demoted")
	moved, err := f.a.SweepPlacements(ctx)
	require.NoError(t, err)
	require.Empty(t, moved)

	f.integration(t, "two")
	v, err = f.a.JudgeUsage(ctx, in)
	require.NoError(t, err)
	require.True(t, v.Promote)
	require.Contains(t, v.Why, "2 integrations (threshold 2)")
	moved, err = f.a.SweepPlacements(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{f.tenant}, moved)
	require.Equal(t, wire.PlacementRequest{Target: wire.PlacementDedicated, Reason: "usage: 2 integrations (threshold 2)"}, f.requests[0])

	// An admin holds it shared: the sweep leaves it.
	require.NoError(t, f.st.SetPlacement(ctx, store.Placement{Tenant: f.tenant, Placement: wire.PlacementShared, Forced: true}, "admin"))
	moved, err = f.a.SweepPlacements(ctx)
	require.NoError(t, err)
	require.Empty(t, moved)

	// The rate counts too: 2,000 msgs/s over the window.
	f.a.Policy.PromoteIntegrations = 0
	now := time.Now().Add(-time.Second)
	_, err = f.st.WriteSamples(ctx, []store.Sample{
		{TenantID: f.tenant, IntegrationID: "one", At: now.Add(-20 * time.Second), In: 0},
		{TenantID: f.tenant, IntegrationID: "one", At: now.Add(-10 * time.Second), In: 20_000},
		{TenantID: f.tenant, IntegrationID: "one", At: now, In: 40_000},
	})
	require.NoError(t, err)
	v, err = f.a.JudgeUsage(ctx, in)
	require.NoError(t, err)
	require.True(t, v.Promote, "%+v", v)
	require.Contains(t, v.Why, "2000 msgs/s")
}

func TestPlacementPolicyDemotesOnlyBelowHalf(t *testing.T) {
	p := PlacementPolicy{PromoteIntegrations: 10, PromoteRate: 100, DemoteAfter: time.Hour}
	require.True(t, p.demote(store.TenantActivity{Integrations: 4, PeakPerSecond: 49}).Demote)
	require.False(t, p.demote(store.TenantActivity{Integrations: 5, PeakPerSecond: 0}).Demote, "half the integrations")
	require.False(t, p.demote(store.TenantActivity{Integrations: 0, PeakPerSecond: 50}).Demote, "a peak at half the rate")
	require.True(t, PlacementPolicy{}.demote(store.TenantActivity{Integrations: 100, PeakPerSecond: 1e6}).Demote, "no thresholds: nothing keeps it dedicated")
	require.False(t, PlacementPolicy{}.promote(store.TenantActivity{Integrations: 100, PeakPerSecond: 1e6}).Promote, "no thresholds: nothing promotes")
}
