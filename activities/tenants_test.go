package activities

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

// tenantsFixture runs the tenant activities on real PostgreSQL, S3,
// Temporal and NATS in operator mode.
type tenantsFixture struct {
	a    *Tenants
	url  string
	keys *natsauth.Keys
	st   *store.Store
}

func newTenantsFixture(t *testing.T) *tenantsFixture {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	url, keys := testenv.NATSWithAccounts(t)
	sys, err := keys.SystemUser("test")
	require.NoError(t, err)
	platform, err := keys.PlatformUser("test")
	require.NoError(t, err)
	platformJS, err := jetstream.New(testenv.Connect(t, url, platform))
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, platformJS)
	require.NoError(t, err)
	pool := natsauth.NewPool(url, keys, "test")
	t.Cleanup(pool.Close)
	blobs, _ := testenv.S3(t)
	st := store.New(db)
	secrets, err := tenancy.OpenSecretsKV(ctx, platformJS, nil)
	require.NoError(t, err)
	return &tenantsFixture{url: url, keys: keys, st: st, a: &Tenants{
		Store: st, NATS: natsauth.NewAdmin(keys, testenv.Connect(t, url, sys)), Accounts: pool, Blobs: blobs, State: state,
		Control: control.New(testenv.Temporal(t)), Secrets: secrets,
	}}
}

func TestTenantActivitiesProvisionAndRemoveEverything(t *testing.T) {
	f := newTenantsFixture(t)
	ctx := context.Background()
	tenant := TenantInput{Tenant: "acme"}
	keyID, prefix, hash, secret := store.NewKey()
	in := wire.NewTenant{ID: "acme", Name: "Acme", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []string{"read"}}

	require.NoError(t, f.a.CreateTenantRows(ctx, in))
	require.NoError(t, f.a.CreateTenantRows(ctx, in), "retried")
	require.NoError(t, f.a.PutTenantAccount(ctx, TenantAccountInput{Tenant: "acme", Limits: natsauth.DefaultLimits}))
	require.NoError(t, f.a.EnsureTenantStreams(ctx, TenantStreamsInput{Tenant: "acme", DLQBytes: 32 << 20}))
	require.NoError(t, f.a.ActivateTenant(ctx, tenant))
	_, err := f.st.Authenticate(ctx, secret)
	require.NoError(t, err)

	// The tenant's DLQ stream is in its own account.
	creds, err := f.keys.TenantUser("acme", "check")
	require.NoError(t, err)
	js, err := jetstream.New(testenv.Connect(t, f.url, creds))
	require.NoError(t, err)
	dlq, err := js.Stream(ctx, dataplane.DLQStream("acme"))
	require.NoError(t, err)
	require.Equal(t, int64(32<<20), dlq.CachedInfo().Config.MaxBytes, "the DLQ is sized from the tenant's limits")
	_, err = dataplane.EnsureStreams(ctx, js, dataplane.Pipeline{Tenant: "acme", Integration: "orders"})
	require.NoError(t, err)
	dlq, err = js.Stream(ctx, dataplane.DLQStream("acme"))
	require.NoError(t, err)
	require.Equal(t, int64(32<<20), dlq.CachedInfo().Config.MaxBytes, "a pipeline leaves the DLQ's size alone")
	for _, key := range []string{"claims/acme/orders/1", "dlq/acme/orders/2", "claims/other/orders/3"} {
		require.NoError(t, f.a.Blobs.Put(ctx, key, bytes.NewReader([]byte("x")), 1, ""))
	}

	require.NoError(t, f.a.State.Egress.Put(ctx, "acme", sdk.EgressPolicy{AllowPrivate: true}))
	// Its secrets, in PostgreSQL and mirrored for the runners, next to
	// another tenant's.
	for _, owner := range []string{"acme", "other"} {
		if owner == "other" {
			testtenant.Active(t, f.st, "other")
		}
		_, err = f.st.PutSecret(ctx, owner, "token", "1", []byte("sealed"))
		require.NoError(t, err)
		require.NoError(t, f.a.Secrets.Put(ctx, owner, "token", []byte("sealed")))
	}

	// Decommission.
	require.NoError(t, f.a.MarkTenantDeleting(ctx, tenant))
	_, err = f.st.Authenticate(ctx, secret)
	require.ErrorIs(t, err, store.ErrUnauthenticated)
	secrets, err := f.st.ListSecrets(ctx, "acme")
	require.NoError(t, err)
	require.Empty(t, secrets, "the tenant's secrets are gone at once")
	_, err = f.a.Secrets.KV.Get(ctx, "acme.token")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "from the runners' mirror too")
	_, err = f.a.Secrets.KV.Get(ctx, "other.token")
	require.NoError(t, err, "other tenants keep theirs")
	require.NoError(t, f.a.MarkTenantDeleting(ctx, tenant), "retried")
	ids, err := f.a.ListTenantIntegrations(ctx, tenant)
	require.NoError(t, err)
	require.Empty(t, ids)
	require.NoError(t, f.a.RemoveIntegration(ctx, RemoveIntegrationInput{Tenant: "acme", Integration: "orders",
		WorkflowID: "integration/acme/orders", ScheduleID: "integration/acme/orders"}), "nothing to stop is fine")
	streams, err := f.a.RemoveTenantStreams(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, 2, streams)
	require.NoError(t, f.a.DeleteTenantAccount(ctx, tenant))
	require.NoError(t, f.a.DeleteTenantAccount(ctx, tenant), "twice")
	_, err = nats.Connect(f.url, creds.Option())
	require.Error(t, err, "the account is gone")
	objects, err := f.a.RemoveTenantObjects(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, 2, objects)
	_, err = f.a.Blobs.Stat(ctx, "claims/other/orders/3")
	require.NoError(t, err, "other tenants' objects stay")
	require.NoError(t, f.a.FinishTenantDeletion(ctx, tenant))
	require.NoError(t, f.a.FinishTenantDeletion(ctx, tenant), "twice")
	got, err := f.st.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantDeleted, got.Status)
	egress, err := f.a.State.Egress.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, egress, "the runners' copy of the egress policy is gone")
}

func TestTenantActivitiesRefuseWhatRetryingCannotFix(t *testing.T) {
	f := newTenantsFixture(t)
	ctx := context.Background()
	keyID, prefix, hash, _ := store.NewKey()
	in := wire.NewTenant{ID: "acme", Name: "Acme", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []string{"read"}}
	require.NoError(t, f.a.CreateTenantRows(ctx, in))
	in.KeyID = "key-other"
	requireNonRetryable(t, f.a.CreateTenantRows(ctx, in), ErrTenantExists)
	in.ID = "Not Valid"
	requireNonRetryable(t, f.a.CreateTenantRows(ctx, in), ErrTenantExists)
	requireNonRetryable(t, f.a.PutTenantAccount(ctx, TenantAccountInput{Tenant: "acme"}), "InvalidLimits")
	requireNonRetryable(t, f.a.MarkTenantDeleting(ctx, TenantInput{Tenant: "nobody"}), "TenantNotFound")

	// Without an admin (one shared account) the account steps do nothing.
	shared := &Tenants{Store: f.st}
	require.NoError(t, shared.PutTenantAccount(ctx, TenantAccountInput{Tenant: "acme", Limits: natsauth.DefaultLimits}))
	require.NoError(t, shared.DeleteTenantAccount(ctx, TenantInput{Tenant: "acme"}))
}

// A tenant whose provisioning failed stays, failed with the reason, its
// key never works, and its ID can be created again.
func TestTenantActivitiesKeepAFailedTenantWithItsReason(t *testing.T) {
	f := newTenantsFixture(t)
	ctx := context.Background()
	keyID, prefix, hash, secret := store.NewKey()
	limits := wire.TenantLimits{Limits: wire.Limits(natsauth.DefaultLimits), Integrations: 3}
	in := wire.NewTenant{ID: "acme", Name: "Acme", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash,
		Scopes: []string{"read"}, Limits: &limits}
	require.NoError(t, f.a.CreateTenantRows(ctx, in))
	require.NoError(t, f.a.MarkTenantFailed(ctx, FailTenantInput{Tenant: "acme", Reason: "insufficient storage resources available"}))
	got, err := f.st.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantFailed, got.Status)
	require.Equal(t, "insufficient storage resources available", got.FailureReason)
	require.Equal(t, 3, got.Limits.Integrations)
	_, err = f.st.Authenticate(ctx, secret)
	require.ErrorIs(t, err, store.ErrUnauthenticated)

	in.KeyID, in.KeyPrefix, in.KeyHash, secret = store.NewKey()
	require.NoError(t, f.a.CreateTenantRows(ctx, in), "a failed ID is created again")
	require.NoError(t, f.a.ActivateTenant(ctx, TenantInput{Tenant: "acme"}))
	require.NoError(t, f.a.MarkTenantFailed(ctx, FailTenantInput{Tenant: "acme", Reason: "late"}), "an active tenant is left alone")
	got, err = f.st.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantActive, got.Status)
	require.Empty(t, got.FailureReason)

	// An activation retried after the tenant's deletion began never
	// revives it.
	require.NoError(t, f.a.MarkTenantDeleting(ctx, TenantInput{Tenant: "acme"}))
	requireNonRetryable(t, f.a.ActivateTenant(ctx, TenantInput{Tenant: "acme"}), ErrTenantGone)
	got, err = f.st.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.TenantDeleting, got.Status)

	require.Equal(t, int64(dataplane.DefaultDLQBytes), natsauth.DefaultLimits.DLQBytes,
		"a DLQ created by a pipeline has the default tenant's size")

	bad := limits
	bad.Integrations = -1
	in.ID, in.Limits = "beta", &bad
	requireNonRetryable(t, f.a.CreateTenantRows(ctx, in), "InvalidLimits")
}

func requireNonRetryable(t *testing.T, err error, errType string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, errType, appErr.Type())
}
