package natsauth_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/testenv"
)

// quotaPlatform starts an operator-mode server whose max_file_store is
// maxStore (0: the server's default, three quarters of the free disk).
func quotaPlatform(t *testing.T, maxStore func(dir string) int64) platform {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := natsauth.NewKeys()
	require.NoError(t, err)
	dir := t.TempDir()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: dir, Accounts: keys, MaxStore: maxStore(dir)})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	sys, err := keys.SystemUser("test-admin")
	require.NoError(t, err)
	p := platform{url: srv.ClientURL(), keys: keys, admin: natsauth.NewAdmin(keys, testenv.Connect(t, srv.ClientURL(), sys)),
		pool: natsauth.NewPool(srv.ClientURL(), keys, "test")}
	t.Cleanup(p.pool.Close)
	return p
}

func overcommitted(t *testing.T) func(string) int64 {
	return func(dir string) int64 {
		n, err := natsauth.OvercommittedStore(dir)
		require.NoError(t, err)
		return n
	}
}

// useJetStream puts tenant's account with limits and creates a stream in
// it: the server enables JetStream for an account, and reserves its
// quota, when the account is first used.
func useJetStream(ctx context.Context, p platform, tenant string, limits natsauth.Limits) error {
	if _, err := p.admin.PutTenant(ctx, tenant, limits); err != nil {
		return err
	}
	js, err := p.pool.JetStream(ctx, tenant)
	if err != nil {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	return err
}

// A standalone server reserves each account's disk and memory quota
// against its max_file_store and max_memory_store: this is what stopped
// `vrsky dev` at five tenants.
func TestStandaloneServerReservesAccountQuotas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := quotaPlatform(t, func(string) int64 { return 3 << 30 })
	for i := range 3 {
		require.NoError(t, useJetStream(ctx, p, fmt.Sprintf("fits-%d", i), natsauth.DefaultLimits), "three 1 GiB quotas fit 3 GiB")
	}
	err := useJetStream(ctx, p, "one-too-many", natsauth.DefaultLimits)
	require.Error(t, err, "the fourth quota is not reservable")

	err = useJetStream(ctx, p, "memory-hungry", natsauth.Limits{DiskBytes: 1 << 20, MemoryBytes: 1 << 50, Streams: 1, Consumers: 1})
	require.Error(t, err, "nor is a memory quota larger than the memory")
	t.Logf("refused: %v", err)
}

// TestThousandTenantsOnOneServer provisions 1,000 tenants with the default
// quotas — the account and the DLQ stream of each — on one embedded server
// sized with OvercommittedStore, and every tenant can write.
func TestThousandTenantsOnOneServer(t *testing.T) {
	const tenants = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := quotaPlatform(t, overcommitted(t))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := range tenants {
		tenant := fmt.Sprintf("t%04d", i)
		_, err := p.admin.PutTenant(ctx, tenant, natsauth.DefaultLimits)
		require.NoError(t, err, tenant)
		js, err := p.pool.JetStream(ctx, tenant)
		require.NoError(t, err, tenant)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ_" + tenant, Subjects: []string{"dlq." + tenant + ".>"},
			MaxBytes: natsauth.DefaultLimits.DLQ(), Discard: jetstream.DiscardOld})
		require.NoError(t, err, tenant)
		_, err = js.Publish(ctx, "dlq."+tenant+".x", []byte("hello"))
		require.NoError(t, err, tenant)
		// Close the connection: what stays is the server's own state.
		p.pool.Forget(tenant)
	}
	took := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := float64(after.HeapInuse) - float64(before.HeapInuse)
	t.Logf("%d tenants (account + DLQ stream + one message each) in %s (%.1f ms each); the in-process server's heap "+
		"grew %.1f MiB (%.0f KiB per tenant); process memory from the OS %.1f MiB",
		tenants, took.Round(time.Millisecond), float64(took.Milliseconds())/tenants,
		grew/(1<<20), grew/1024/tenants, float64(after.Sys)/(1<<20))
}

// A tenant that fills its quota is refused with the server's clear error,
// while another tenant on the same server still writes.
func TestFullTenantIsRefusedOthersStillWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := quotaPlatform(t, overcommitted(t))
	small := natsauth.Limits{DiskBytes: 256 << 10, Streams: 2, Consumers: 4, DLQBytes: 64 << 10}
	_, err := p.admin.PutTenant(ctx, "flooder", small)
	require.NoError(t, err)
	_, err = p.admin.PutTenant(ctx, "innocent", small)
	require.NoError(t, err)

	streams := map[string]jetstream.JetStream{}
	for _, tenant := range []string{"flooder", "innocent"} {
		js, err := p.pool.JetStream(ctx, tenant)
		require.NoError(t, err)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work"}, Retention: jetstream.WorkQueuePolicy})
		require.NoError(t, err)
		streams[tenant] = js
	}
	body := make([]byte, 8<<10)
	var refused error
	for range 64 {
		if _, refused = streams["flooder"].Publish(ctx, "work", body); refused != nil {
			break
		}
	}
	require.Error(t, refused, "512 KiB into a 256 KiB quota")
	var apiErr *jetstream.APIError
	require.True(t, errors.As(refused, &apiErr), "%v", refused)
	require.Equal(t, jetstream.ErrorCode(10002), apiErr.ErrorCode)
	require.True(t, strings.Contains(refused.Error(), "resource limits exceeded for account"), refused.Error())

	info, err := streams["flooder"].AccountInfo(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, info.Store, uint64(small.DiskBytes), "never over its quota")

	for range 16 {
		_, err := streams["innocent"].Publish(ctx, "work", body)
		require.NoError(t, err, "the other tenant is untouched")
	}
}

func TestOvercommittedStore(t *testing.T) {
	n, err := natsauth.OvercommittedStore(t.TempDir())
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, natsauth.MinStoreTenants*natsauth.DefaultLimits.DiskBytes,
		"room for MinStoreTenants default quotas, however little disk is free")
	if n > natsauth.MinStoreTenants*natsauth.DefaultLimits.DiskBytes {
		require.Zero(t, n%natsauth.Overcommit, "a multiple of the free disk's share")
	}
	_, err = natsauth.OvercommittedStore("/no/such/dir")
	require.Error(t, err)
}

func TestLimitsValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		limits natsauth.Limits
		ok     bool
	}{
		"default":            {natsauth.DefaultLimits, true},
		"no disk":            {natsauth.Limits{Streams: 1, Consumers: 1}, false},
		"negative memory":    {natsauth.Limits{DiskBytes: 1, MemoryBytes: -1, Streams: 1, Consumers: 1}, false},
		"dlq larger":         {natsauth.Limits{DiskBytes: 1 << 20, Streams: 1, Consumers: 1, DLQBytes: 2 << 20}, false},
		"dlq defaulted":      {natsauth.Limits{DiskBytes: 1 << 20, Streams: 1, Consumers: 1}, true},
		"negative dlq bytes": {natsauth.Limits{DiskBytes: 1 << 20, Streams: 1, Consumers: 1, DLQBytes: -1}, false},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.ok, tc.limits.Validate() == nil, "%v", tc.limits.Validate())
		})
	}
	require.Equal(t, int64(1<<20), natsauth.Limits{DiskBytes: 1 << 20}.DLQ(), "a DLQ never larger than the quota")
	require.Equal(t, int64(4<<20), natsauth.Limits{DiskBytes: 1 << 30, DLQBytes: 4 << 20}.DLQ())
}
