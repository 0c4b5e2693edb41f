package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

// keyed stores a delivery of one message under key, its ID the key.
func keyed(t *testing.T, idem *Idempotency, p Pipeline, key, body string) bool {
	t.Helper()
	seen, err := idem.Store(context.Background(), p, key, Digest(sha256.Sum256([]byte(body))),
		[]sdk.Message{{ID: key, Body: []byte(body), Received: time.Now()}})
	require.NoError(t, err)
	return seen
}

// subjects is how many subjects stream holds: its key records and the
// stage subjects holding messages. Each is an entry of the NATS server's
// subject index, in memory for as long as it holds a message.
func subjects(t *testing.T, stream jetstream.Stream) uint64 {
	t.Helper()
	info, err := stream.Info(context.Background())
	require.NoError(t, err)
	return info.State.NumSubjects
}

// TestATenantPastItsKeyLimitCannotGrowTheServersKeyIndex: the attack is a
// tenant sending unique delivery keys within its rate and disk quota, each
// of which the shared NATS server would keep in its subject index (memory)
// for a day. Past MaxTenantKeys, counted over all its pipelines, a new key
// is still stored — its message, once — and checked against the records
// there, but its record expires with the 2-minute duplicate window: the
// tenant's keys in the index stop growing beyond what its rate sends in
// 2 minutes, for that tenant alone. Once its records fall under the limit
// again, keys are remembered for the TTL again.
func TestATenantPastItsKeyLimitCannotGrowTheServersKeyIndex(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	var log bytes.Buffer
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}, MaxTenantKeys: 50,
		Logger: slog.New(slog.NewTextHandler(&log, nil))}
	orders, refunds := Pipeline{Tenant: "acme", Integration: "orders"}, Pipeline{Tenant: "acme", Integration: "refunds"}
	quiet := Pipeline{Tenant: "globex", Integration: "orders"}
	ordersStream, refundsStream := ensureStreams(t, js, orders), ensureStreams(t, js, refunds)
	quietStream := ensureStreams(t, js, quiet)
	ttl := func(stream jetstream.Stream, subject string) string {
		return waitRecord(t, stream, subject).Header.Get(jetstream.MsgTTLHeader)
	}

	for i := range 30 {
		keyed(t, idem, orders, fmt.Sprintf("o-%d", i), "body")
		keyed(t, idem, refunds, fmt.Sprintf("r-%d", i), "body")
	}
	waitRecord(t, ordersStream, orders.KeySubject("o-29"))
	waitRecord(t, refundsStream, refunds.KeySubject("r-29"))
	require.NoError(t, idem.countKeys(ctx, false))
	require.EqualValues(t, 60, idem.keys.tenantKeys("acme"), "the keys of all the tenant's pipelines are counted")
	require.Equal(t, 1, idem.TenantsAtKeyLimit())
	require.Contains(t, log.String(), `msg="tenant at its limit of remembered delivery keys`)
	require.Contains(t, log.String(), "tenant=acme keys=60 limit=50", "the operator is told")

	// Past the limit: 200 more unique keys.
	for i := 30; i < 230; i++ {
		require.False(t, keyed(t, idem, orders, fmt.Sprintf("o-%d", i), "body"))
	}
	keyed(t, idem, quiet, "q-0", "body")
	waitRecord(t, quietStream, quiet.KeySubject("q-0"))
	require.EqualValues(t, 230, waiting(t, ordersStream, orders), "every message is stored, once")
	require.Equal(t, "86400", ttl(ordersStream, orders.KeySubject("o-29")), "remembered for the TTL under the limit")
	require.Equal(t, "120", ttl(ordersStream, orders.KeySubject("o-229")), "for the duplicate window past it")
	require.True(t, keyed(t, idem, orders, "o-3", "body"), "a key recorded before is still recognised")
	_, err := idem.Store(ctx, orders, "o-3", Digest(sha256.Sum256([]byte("other"))), []sdk.Message{{ID: "o-3", Body: []byte("other")}})
	require.ErrorIs(t, err, ErrKeyReused, "and its body still checked")
	require.True(t, keyed(t, idem, quiet, "q-0", "body"), "another tenant's keys are remembered")
	require.Equal(t, "86400", ttl(quietStream, quiet.KeySubject("q-0")), "for the TTL")

	// The tenant's records fall under the limit (here purged; they also
	// expire): its keys are recorded again from the next count.
	require.NoError(t, refundsStream.Purge(ctx, jetstream.WithPurgeSubject(refunds.KeySubjects())))
	require.NoError(t, ordersStream.Purge(ctx, jetstream.WithPurgeSubject(orders.KeySubjects()), jetstream.WithPurgeKeep(30)))
	require.NoError(t, idem.countKeys(ctx, true))
	require.EqualValues(t, 30, idem.keys.tenantKeys("acme"))
	require.Zero(t, idem.TenantsAtKeyLimit())
	require.Contains(t, log.String(), `msg="tenant under its limit of remembered delivery keys again" tenant=acme keys=30`)
	keyed(t, idem, orders, "o-new", "body")
	require.Equal(t, "86400", ttl(ordersStream, orders.KeySubject("o-new")))
}

// ownKeyLimits gives fixed limits of their own to some tenants.
type ownKeyLimits map[string]int64

func (o ownKeyLimits) RememberedKeys(tenant string) (int64, bool) {
	n, ok := o[tenant]
	return n, ok
}

// TestATenantsOwnKeyLimitReplacesThePlatforms: a tenant whose quota sets
// a limit is held to it where the platform sets none, and the others are
// not.
func TestATenantsOwnKeyLimitReplacesThePlatforms(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}, TenantKeys: ownKeyLimits{"acme": 3}}
	limited, free := Pipeline{Tenant: "acme", Integration: "orders"}, Pipeline{Tenant: "globex", Integration: "orders"}
	limitedStream, freeStream := ensureStreams(t, js, limited), ensureStreams(t, js, free)
	for i := range 4 {
		keyed(t, idem, limited, fmt.Sprintf("k-%d", i), "body")
		keyed(t, idem, free, fmt.Sprintf("k-%d", i), "body")
	}
	waitRecord(t, limitedStream, limited.KeySubject("k-3"))
	waitRecord(t, freeStream, free.KeySubject("k-3"))
	require.NoError(t, idem.countKeys(context.Background(), false))
	require.EqualValues(t, 4, idem.keys.tenantKeys("acme"))
	keyed(t, idem, limited, "k-4", "body")
	keyed(t, idem, free, "k-4", "body")
	require.Equal(t, "120", waitRecord(t, limitedStream, limited.KeySubject("k-4")).Header.Get(jetstream.MsgTTLHeader))
	require.Equal(t, "86400", waitRecord(t, freeStream, free.KeySubject("k-4")).Header.Get(jetstream.MsgTTLHeader),
		"a tenant without a limit of its own gets the platform's: none")
}

// TestKeyCountsForgetDeletedPipelines: a pipeline whose stream is gone
// no longer counts, and its tenant is under the limit again.
func TestKeyCountsForgetDeletedPipelines(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}, MaxTenantKeys: 2}
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	stream := ensureStreams(t, js, p)
	for _, k := range []string{"a", "b", "c"} {
		keyed(t, idem, p, k, "body")
	}
	waitRecord(t, stream, p.KeySubject("c"))
	require.NoError(t, idem.countKeys(ctx, false))
	require.False(t, idem.keys.remember(p, idem.MaxTenantKeys), "past the limit")
	require.NoError(t, js.DeleteStream(ctx, p.Stream()))
	require.NoError(t, idem.countKeys(ctx, true))
	require.EqualValues(t, 0, idem.keys.tenantKeys("acme"))
	require.True(t, idem.keys.remember(p, idem.MaxTenantKeys))
}

// TestKeysAreRememberedWithoutALimit: MaxTenantKeys 0 counts nothing and
// records every key.
func TestKeysAreRememberedWithoutALimit(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}}
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	stream := ensureStreams(t, js, p)
	for i := range 20 {
		keyed(t, idem, p, fmt.Sprintf("k-%d", i), "body")
	}
	waitRecord(t, stream, p.KeySubject("k-19"))
	require.NoError(t, idem.countKeys(context.Background(), true))
	require.EqualValues(t, 0, idem.keys.tenantKeys("acme"), "nothing counted")
	require.EqualValues(t, 21, subjects(t, stream))
}

// TestCountKeysRunsUntilItsContextEnds, and not at all without a limit.
func TestCountKeysRunsUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	(&Idempotency{}).CountKeys(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Idempotency{MaxTenantKeys: 1}).CountKeys(ctx)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("CountKeys did not return when its context ended")
	}
}

// BenchmarkRememberedKeyMemory measures what one remembered key costs the
// NATS server's heap (its subject index and TTL wheel), in a server of
// this process: heap-B/key. `go test ./dataplane -run '^$' -bench
// RememberedKeyMemory -benchtime 100000x`.
func BenchmarkRememberedKeyMemory(b *testing.B) {
	_, js := testenv.JetStream(b)
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}}
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	stream, err := EnsureStreams(context.Background(), js, p)
	require.NoError(b, err)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	b.ResetTimer()
	for i := range b.N {
		key := fmt.Sprintf("delivery-%09d", i)
		if _, err := idem.Store(context.Background(), p, key, Digest{}, []sdk.Message{{ID: key, Body: []byte("{}")}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.Eventually(b, func() bool {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.NumSubjects >= uint64(b.N)
	}, time.Minute, 50*time.Millisecond)
	// The messages go, as the stages would take them; the records stay.
	require.NoError(b, stream.Purge(context.Background(), jetstream.WithPurgeSubject(p.AllSubjects())))
	b.ReportMetric(float64(int64(heap())-int64(before))/float64(b.N), "heap-B/key")
}
