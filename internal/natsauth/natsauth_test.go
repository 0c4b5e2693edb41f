package natsauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// platform is a running operator-mode server with its admin and pool.
type platform struct {
	url   string
	keys  *natsauth.Keys
	admin *natsauth.Admin
	pool  *natsauth.Pool
}

func newPlatform(t *testing.T, tenants ...string) platform {
	t.Helper()
	url, keys := testenv.NATSWithAccounts(t)
	sys, err := keys.SystemUser("test-admin")
	require.NoError(t, err)
	p := platform{url: url, keys: keys, admin: natsauth.NewAdmin(keys, testenv.Connect(t, url, sys)),
		pool: natsauth.NewPool(url, keys, "test")}
	t.Cleanup(p.pool.Close)
	for _, tenant := range tenants {
		_, err := p.admin.PutTenant(context.Background(), tenant, natsauth.DefaultLimits)
		require.NoError(t, err)
	}
	return p
}

func (p platform) tenantJS(t *testing.T, tenant string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	creds, err := p.keys.TenantUser(tenant, "tenant-"+tenant)
	require.NoError(t, err)
	nc := testenv.Connect(t, p.url, creds)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

func TestTenantAccountsAreIsolatedByTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPlatform(t, "alpha", "beta")

	// The platform works in alpha's account through the pool.
	alphaJS, err := p.pool.JetStream(ctx, "alpha")
	require.NoError(t, err)
	_, err = alphaJS.CreateStream(ctx, jetstream.StreamConfig{Name: "VRSKY_alpha_orders", Subjects: []string{"vrsky.alpha.>"}})
	require.NoError(t, err)
	kv, err := alphaJS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "alpha_state"})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "secret", []byte("alpha's"))
	require.NoError(t, err)

	// beta's credentials, whatever they ask for, see nothing of alpha's.
	betaNC, betaJS := p.tenantJS(t, "beta")
	everything, err := betaNC.SubscribeSync(">")
	require.NoError(t, err)
	alphaSubjects, err := betaNC.SubscribeSync("vrsky.alpha.>")
	require.NoError(t, err)
	require.NoError(t, betaNC.Flush())

	_, err = alphaJS.Publish(ctx, "vrsky.alpha.in", []byte("order 1"))
	require.NoError(t, err)
	alphaNC, _ := p.tenantJS(t, "alpha")
	require.NoError(t, alphaNC.Publish("vrsky.alpha.chat", []byte("core message")))
	require.NoError(t, alphaNC.Flush())

	for _, sub := range []*nats.Subscription{everything, alphaSubjects} {
		msg, err := sub.NextMsg(300 * time.Millisecond)
		require.ErrorIs(t, err, nats.ErrTimeout, "beta received %v", msg)
	}
	_, err = betaJS.Stream(ctx, "VRSKY_alpha_orders")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = betaJS.KeyValue(ctx, "alpha_state")
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
	names := betaJS.StreamNames(ctx)
	for name := range names.Name() {
		t.Fatalf("beta lists stream %s", name)
	}
	info, err := betaJS.AccountInfo(ctx)
	require.NoError(t, err)
	require.Zero(t, info.Streams)

	// No system API beyond beta's own account.
	_, err = betaNC.Request("$SYS.REQ.SERVER.PING", nil, 300*time.Millisecond)
	require.Error(t, err)
	_, err = betaNC.Request("$SYS.REQ.CLAIMS.UPDATE", []byte("x"), 300*time.Millisecond)
	require.Error(t, err)
	_, err = betaNC.Request("$JS.API.STREAM.INFO.VRSKY_alpha_orders", nil, time.Second)
	require.NoError(t, err) // answered by beta's own JetStream…
	_, err = betaJS.Stream(ctx, "VRSKY_alpha_orders")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound) // …which has no such stream

	// alpha still has its data.
	got, err := kv.Get(ctx, "secret")
	require.NoError(t, err)
	require.Equal(t, "alpha's", string(got.Value()))
}

func TestUnknownOrDeletedAccountsCannotConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPlatform(t, "gamma")

	ghost, err := p.keys.TenantUser("ghost", "x")
	require.NoError(t, err)
	_, err = nats.Connect(p.url, ghost.Option())
	require.Error(t, err)

	_, err = p.pool.JetStream(ctx, "gamma")
	require.NoError(t, err)
	require.NoError(t, p.admin.DeleteTenant(ctx, "gamma"))
	require.NoError(t, p.admin.DeleteTenant(ctx, "gamma"), "deleting twice succeeds")
	p.pool.Forget("gamma")
	gamma, err := p.keys.TenantUser("gamma", "x")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(p.url, gamma.Option())
		if err == nil {
			nc.Close()
		}
		return err != nil
	}, 5*time.Second, 100*time.Millisecond)

	// Provisioning again brings it back (idempotent, same account ID).
	id1, err := p.admin.PutTenant(ctx, "gamma", natsauth.DefaultLimits)
	require.NoError(t, err)
	id2, err := p.admin.PutTenant(ctx, "gamma", natsauth.DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, id1, id2)
	_, err = p.pool.JetStream(ctx, "gamma")
	require.NoError(t, err)
}

func TestJetStreamLimitsAreEnforced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPlatform(t)
	_, err := p.admin.PutTenant(ctx, "small", natsauth.Limits{DiskBytes: 64 << 10, Streams: 1, Consumers: 4})
	require.NoError(t, err)
	js, err := p.pool.JetStream(ctx, "small")
	require.NoError(t, err)

	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "TWO", Subjects: []string{"two"}})
	require.Error(t, err, "a second stream is over the limit")

	body := make([]byte, 4<<10)
	var refused error
	for range 64 {
		if _, refused = js.Publish(ctx, "one", body); refused != nil {
			break
		}
	}
	require.Error(t, refused, "256 KiB into a 64 KiB account")

	_, err = p.admin.PutTenant(ctx, "small", natsauth.Limits{})
	require.Error(t, err, "limits that disable JetStream are refused")
}

func TestAccountsSurviveARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := natsauth.LoadOrCreateKeys(filepath.Join(t.TempDir(), "keys.json"))
	require.NoError(t, err)
	dir := t.TempDir()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: dir, Accounts: keys})
	require.NoError(t, err)
	sys, err := keys.SystemUser("admin")
	require.NoError(t, err)
	nc, err := nats.Connect(srv.ClientURL(), sys.Option())
	require.NoError(t, err)
	_, err = natsauth.NewAdmin(keys, nc).PutTenant(ctx, "delta", natsauth.DefaultLimits)
	require.NoError(t, err)
	nc.Close()
	srv.Shutdown()

	srv, err = natsserver.Start(ctx, natsserver.Options{StoreDir: dir, Accounts: keys})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	delta, err := keys.TenantUser("delta", "x")
	require.NoError(t, err)
	nc = testenv.Connect(t, srv.ClientURL(), delta)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.AccountInfo(ctx)
	require.NoError(t, err)

	platformUser, err := keys.PlatformUser("runner")
	require.NoError(t, err)
	pjs, err := jetstream.New(testenv.Connect(t, srv.ClientURL(), platformUser))
	require.NoError(t, err)
	_, err = pjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "desired"})
	require.NoError(t, err)
}

func TestKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keys.json")
	k1, err := natsauth.LoadOrCreateKeys(path)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	k2, err := natsauth.LoadOrCreateKeys(path)
	require.NoError(t, err)
	a1, err := k1.TenantAccountID("acme")
	require.NoError(t, err)
	a2, err := k2.TenantAccountID("acme")
	require.NoError(t, err)
	require.Equal(t, a1, a2, "the same tenant keeps its account across loads")
	other, err := k1.TenantAccountID("acme2")
	require.NoError(t, err)
	require.NotEqual(t, a1, other)

	_, err = natsauth.LoadKeys(filepath.Join(t.TempDir(), "missing.json"))
	require.True(t, errors.Is(err, os.ErrNotExist))
	for name, content := range map[string]string{
		"not json":     "{",
		"bad seed":     `{"operator_seed":"nope"}`,
		"wrong kind":   `{"operator_seed":"` + seedOf(t, k1, "system") + `"}`,
		"short secret": `{"operator_seed":"` + seedOf(t, k1, "operator") + `","system_account_seed":"` + seedOf(t, k1, "system") + `","platform_account_seed":"` + seedOf(t, k1, "system") + `","tenant_secret":"00"}`,
	} {
		bad := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(content), 0o600))
		_, err := natsauth.LoadKeys(bad)
		require.Error(t, err, name)
	}
}

func seedOf(t *testing.T, k *natsauth.Keys, which string) string {
	t.Helper()
	kp := k.Operator
	if which == "system" {
		kp = k.System
	}
	seed, err := kp.Seed()
	require.NoError(t, err)
	return string(seed)
}

// TestServerConfigRunsAProductionServer: the configuration printed for a
// production server, loaded by nats-server itself, trusts the platform and
// takes tenant accounts.
func TestServerConfigRunsAProductionServer(t *testing.T) {
	keys, err := natsauth.NewKeys()
	require.NoError(t, err)
	dir := t.TempDir()
	conf, err := keys.ServerConfig(filepath.Join(dir, "jwt"))
	require.NoError(t, err)
	path := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf+"port: -1\njetstream: { store_dir: "+strconv.Quote(filepath.Join(dir, "js"))+" }\n"), 0o600))
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(ns.Shutdown)

	sys, err := keys.SystemUser("admin")
	require.NoError(t, err)
	_, err = natsauth.NewAdmin(keys, testenv.Connect(t, ns.ClientURL(), sys)).PutTenant(context.Background(), "acme", natsauth.DefaultLimits)
	require.NoError(t, err)
	acme, err := keys.TenantUser("acme", "x")
	require.NoError(t, err)
	js, err := jetstream.New(testenv.Connect(t, ns.ClientURL(), acme))
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	require.NoError(t, err)
	platform, err := keys.PlatformUser("runner")
	require.NoError(t, err)
	testenv.Connect(t, ns.ClientURL(), platform)
}

// TestTenantClientCredentialsReachOnlyTheTenantsSubjects: credentials meant
// for a tenant's own client have no JetStream or system API and no subject
// outside vrsky.<tenant>.>, even in the tenant's account.
func TestTenantClientCredentialsReachOnlyTheTenantsSubjects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPlatform(t, "alpha")
	creds, err := p.keys.TenantClientUser("alpha", "alpha-client")
	require.NoError(t, err)
	violations := make(chan error, 16)
	nc, err := nats.Connect(p.url, creds.Option(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		violations <- err
	}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	// Its own subjects work.
	sub, err := nc.SubscribeSync("vrsky.alpha.orders.in")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("vrsky.alpha.orders.in", []byte("hi")))
	got, err := sub.NextMsg(2 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "hi", string(got.Data))

	// No JetStream API.
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	_, err = js.AccountInfo(short)
	require.Error(t, err)
	// No subject outside its own, in either direction.
	require.NoError(t, nc.Publish("$JS.API.STREAM.LIST", nil))
	_, err = nc.SubscribeSync(">")
	require.NoError(t, err) // refused by the server, asynchronously
	require.NoError(t, nc.Flush())
	for range 2 {
		select {
		case err := <-violations:
			require.ErrorContains(t, err, "Permissions Violation")
		case <-time.After(2 * time.Second):
			t.Fatal("the server did not refuse")
		}
	}
}
