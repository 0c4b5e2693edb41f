package activities

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const ordersSpec = `{"name":"orders","consumer":{"connector":"http-webhook"},"producers":{"db":{"connector":"postgres","config":{"table":"orders"}}}}`

// integrationFixture is a tenant with one integration and its first
// version, on real PostgreSQL and NATS.
type integrationFixture struct {
	a           *Integrations
	tenant, id  string
	pipeline    dataplane.Pipeline
	db          *pgxpool.Pool
	st          *store.Store
	stateBucket *dataplane.State
}

func newIntegrationFixture(t *testing.T) *integrationFixture {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)

	st := store.New(db)
	f := &integrationFixture{
		a:      &Integrations{Store: st, State: state, PollEvery: 20 * time.Millisecond},
		tenant: "t-" + testenv.RandomID(4), id: "orders", db: db, st: st, stateBucket: state,
	}
	f.pipeline = dataplane.Pipeline{Tenant: f.tenant, Integration: f.id}
	testtenant.Active(t, st, f.tenant)
	first, err := spec.ParseJSON([]byte(ordersSpec))
	require.NoError(t, err)
	_, err = st.CreateIntegration(ctx, f.tenant, first, "test")
	require.NoError(t, err)
	return f
}

// addVersion stores the next version of the integration's spec, which
// must be version.
func (f *integrationFixture) addVersion(t *testing.T, version int, specJSON string) {
	t.Helper()
	s, err := spec.ParseJSON([]byte(specJSON))
	require.NoError(t, err)
	it, err := f.st.PutIntegrationVersion(context.Background(), f.tenant, f.id, s, "test", 0)
	require.NoError(t, err)
	require.Equal(t, version, it.Version)
}

// addCorruptVersion writes a version the store would refuse, as a bad
// migration or a hand edit of the database could leave it.
func (f *integrationFixture) addCorruptVersion(t *testing.T, version int, specJSON string) {
	t.Helper()
	_, err := f.db.Exec(context.Background(),
		`INSERT INTO integration_versions (tenant_id, integration_id, version, spec) VALUES ($1, $2, $3, $4)`,
		f.tenant, f.id, version, specJSON)
	require.NoError(t, err)
}

// report writes a runner status as the hot path does.
func (f *integrationFixture) report(t *testing.T, st dataplane.Status) {
	t.Helper()
	st.Tenant, st.Integration = f.tenant, f.id
	b, err := json.Marshal(st)
	require.NoError(t, err)
	_, err = f.stateBucket.Status.Put(context.Background(), f.pipeline.Key(), b)
	require.NoError(t, err)
}

func TestWriteDesiredStateWritesTheVersionsSpec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	in := DesiredStateInput{Tenant: f.tenant, Integration: f.id, Version: 1, Status: dataplane.DesiredStopped}
	require.NoError(t, f.a.WriteDesiredState(ctx, in))
	require.NoError(t, f.a.WriteDesiredState(ctx, in), "writing it again is harmless")

	d, ok, err := f.stateBucket.GetDesired(ctx, f.pipeline)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, f.tenant, d.Tenant)
	require.Equal(t, f.id, d.Integration)
	require.Equal(t, 1, d.Version)
	require.Equal(t, dataplane.DesiredStopped, d.Status)
	require.Equal(t, "orders", d.Spec.Name)
	require.Equal(t, "http-webhook", d.Spec.Consumer.Connector)
	require.JSONEq(t, `{"table":"orders"}`, string(d.Spec.Producers["db"].Config))

	require.NoError(t, f.a.RemoveDesiredState(ctx, PipelineInput{Tenant: f.tenant, Integration: f.id}))
	require.NoError(t, f.a.RemoveDesiredState(ctx, PipelineInput{Tenant: f.tenant, Integration: f.id}), "removing it again is harmless")
	_, ok, err = f.stateBucket.GetDesired(ctx, f.pipeline)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestWriteDesiredStateRefusesWhatRetryingCannotFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	f.addCorruptVersion(t, 2, `{"name":"orders","consumer":{"connector":"http-webhook"}}`) // no producer
	f.addCorruptVersion(t, 3, `["not a spec"]`)

	cases := []struct {
		name        string
		integration string
		version     int
		wantType    string
	}{
		{"missing version", f.id, 7, ErrVersionNotFound},
		{"spec without producers", f.id, 2, ErrInvalidSpec},
		{"spec of the wrong shape", f.id, 3, ErrInvalidSpec},
		{"bad integration name", "Orders!", 1, ErrInvalidSpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.a.WriteDesiredState(ctx, DesiredStateInput{Tenant: f.tenant, Integration: c.integration, Version: c.version, Status: dataplane.DesiredRunning})
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, c.wantType, appErr.Type())
			require.True(t, appErr.NonRetryable())
		})
	}
	_, ok, err := f.stateBucket.GetDesired(ctx, f.pipeline)
	require.NoError(t, err)
	require.False(t, ok, "nothing was written")
}

func TestAwaitRunnerStatus(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	ctx := context.Background()
	await := func(version int, want string, maxWait time.Duration) (RunnerStatus, error) {
		return f.a.AwaitRunnerStatus(ctx, AwaitStatusInput{Tenant: f.tenant, Integration: f.id, Version: version, Status: want, MaxWait: maxWait})
	}

	// An older version's report does not count; the wanted one does, as
	// soon as it is written.
	f.report(t, dataplane.Status{Version: 1, Status: dataplane.StatusRunning})
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.report(t, dataplane.Status{Version: 2, Status: dataplane.StatusRunning, Runner: "r1"})
	}()
	start := time.Now()
	st, err := await(2, dataplane.StatusRunning, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, RunnerStatus{Version: 2, Status: dataplane.StatusRunning}, st)
	require.Less(t, time.Since(start), 5*time.Second)

	// A runner that cannot start the version: degraded, with its error, as
	// a result.
	f.report(t, dataplane.Status{Version: 3, Status: dataplane.StatusDegraded, LastError: "connection refused"})
	st, err = await(3, dataplane.StatusRunning, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, RunnerStatus{Version: 3, Status: dataplane.StatusDegraded, LastError: "connection refused"}, st)

	// Nobody reports it stopped in time: pending.
	st, err = await(3, dataplane.StatusStopped, 100*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, StatusPending, st.Status)
	require.Contains(t, st.LastError, "no runner reported version 3 stopped")

	// It gives up when ctx ends.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = f.a.AwaitRunnerStatus(cctx, AwaitStatusInput{Tenant: f.tenant, Integration: f.id, Version: 4, Status: dataplane.StatusRunning})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestAwaitRunnerStatusHeartbeatsAsAnActivity(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.a)
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.report(t, dataplane.Status{Version: 1, Status: dataplane.StatusStopped})
	}()
	v, err := env.ExecuteActivity(f.a.AwaitRunnerStatus, AwaitStatusInput{Tenant: f.tenant, Integration: f.id, Version: 1, Status: dataplane.StatusStopped})
	require.NoError(t, err)
	var st RunnerStatus
	require.NoError(t, v.Get(&st))
	require.Equal(t, dataplane.StatusStopped, st.Status)
}

func TestAwaitRunnerStatusReportsUnreadableBucket(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	require.NoError(t, f.stateBucket.Status.Purge(context.Background(), f.pipeline.Key()))
	_, err := f.stateBucket.Status.Put(context.Background(), f.pipeline.Key(), []byte("not json"))
	require.NoError(t, err)
	_, err = f.a.AwaitRunnerStatus(context.Background(), AwaitStatusInput{Tenant: f.tenant, Integration: f.id, Version: 1, Status: dataplane.StatusRunning})
	require.ErrorContains(t, err, "decode status")
}

func TestRecordTransitionIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	deploy := Transition{
		ID: "run-1/update-1", Tenant: f.tenant, Integration: f.id, Actor: "alice", Action: "deploy", Reason: "first release",
		Version: 1, DesiredStatus: "running", Status: "degraded", LastError: "connection refused",
	}
	require.NoError(t, f.a.RecordTransition(ctx, deploy))
	require.NoError(t, f.a.RecordTransition(ctx, deploy), "a retried activity records nothing more")

	var version int
	var desired, status string
	var lastError *string
	require.NoError(t, f.db.QueryRow(ctx,
		`SELECT current_version, desired_status, status, last_error FROM integrations WHERE tenant_id = $1 AND id = $2`,
		f.tenant, f.id).Scan(&version, &desired, &status, &lastError))
	require.Equal(t, 1, version)
	require.Equal(t, "running", desired)
	require.Equal(t, "degraded", status)
	require.Equal(t, "connection refused", *lastError)

	stop := Transition{ID: "run-1/update-2", Tenant: f.tenant, Integration: f.id, Actor: "bob", Action: "stop",
		FromStatus: "degraded", Version: 1, DesiredStatus: "stopped", Status: "stopped"}
	require.NoError(t, f.a.RecordTransition(ctx, stop))
	require.NoError(t, f.db.QueryRow(ctx,
		`SELECT status, last_error FROM integrations WHERE tenant_id = $1 AND id = $2`, f.tenant, f.id).Scan(&status, &lastError))
	require.Equal(t, "stopped", status)
	require.Nil(t, lastError, "a clean status clears the last error")

	del := Transition{ID: "run-1/update-3", Tenant: f.tenant, Integration: f.id, Actor: "bob", Action: ActionDelete,
		FromStatus: "stopped", Version: 1, Status: StatusDeleted}
	require.NoError(t, f.a.RecordTransition(ctx, del))
	require.NoError(t, f.a.RecordTransition(ctx, del))
	var n int
	require.NoError(t, f.db.QueryRow(ctx, `SELECT count(*) FROM integrations WHERE tenant_id = $1`, f.tenant).Scan(&n))
	require.Zero(t, n, "delete removes the integration")

	type event struct{ actor, action, from, to, reason string }
	rows, err := f.db.Query(ctx, `
		SELECT actor, action, coalesce(from_status, ''), coalesce(to_status, ''), coalesce(reason, '')
		FROM integration_events WHERE tenant_id = $1 AND integration_id = $2 ORDER BY id`, f.tenant, f.id)
	require.NoError(t, err)
	var events []event
	for rows.Next() {
		var e event
		require.NoError(t, rows.Scan(&e.actor, &e.action, &e.from, &e.to, &e.reason))
		events = append(events, e)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []event{
		{"alice", "deploy", "", "degraded", "first release"},
		{"bob", "stop", "degraded", "stopped", ""},
		{"bob", "delete", "stopped", "deleted", ""},
	}, events, "one event per transition, kept after the delete")
}

func TestRecordTransitionReportsDatabaseErrors(t *testing.T) {
	t.Parallel()
	f := newIntegrationFixture(t)
	err := f.a.RecordTransition(context.Background(), Transition{ID: "x", Tenant: "no-such-tenant", Integration: f.id, Actor: "a", Action: "stop"})
	require.ErrorContains(t, err, "record stop of no-such-tenant/orders")
	f.db.Close()
	err = f.a.WriteDesiredState(context.Background(), DesiredStateInput{Tenant: f.tenant, Integration: f.id, Version: 1, Status: "running"})
	var appErr *temporal.ApplicationError
	require.Error(t, err)
	require.False(t, errors.As(err, &appErr), "a database that is down is worth retrying")
}
