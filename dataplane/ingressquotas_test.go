package dataplane

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestIngressQuotasAreFollowedAsTheyChange(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := &IngressQuotas{JS: js}
	require.NoError(t, writer.Put(ctx, "acme", IngressQuota{MessagesPerSecond: 50}))
	require.NoError(t, writer.Put(ctx, "zero", IngressQuota{MessagesPerSecond: 0}), "removing a rate that is not there succeeds")
	require.ErrorContains(t, writer.Put(ctx, "../evil", IngressQuota{MessagesPerSecond: 5}), "not a tenant ID")

	reader := &IngressQuotas{JS: js}
	require.NoError(t, reader.Follow(ctx))
	r, ok := reader.Rate("acme")
	require.True(t, ok, "the rates present are read before Follow returns")
	require.Equal(t, 50.0, r)
	_, ok = reader.Rate("other")
	require.False(t, ok)

	require.NoError(t, writer.Put(ctx, "acme", IngressQuota{MessagesPerSecond: 7}))
	require.NoError(t, writer.Put(ctx, "beta", IngressQuota{MessagesPerSecond: 3}))
	require.Eventually(t, func() bool { r, _ := reader.Rate("acme"); return r == 7 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := reader.Rate("beta"); return ok }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, writer.Put(ctx, "acme", IngressQuota{MessagesPerSecond: 0}))
	require.Eventually(t, func() bool { _, ok := reader.Rate("acme"); return !ok }, 5*time.Second, 10*time.Millisecond,
		"back to the platform's rate")

	// Garbage written by something else is no rate at all.
	kv, err := js.KeyValue(ctx, TenantRatesBucket)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "beta", []byte("lots"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := reader.Rate("beta"); return !ok }, 5*time.Second, 10*time.Millisecond)

	var none *IngressQuotas
	_, ok = none.Rate("acme")
	require.False(t, ok)
	_, ok = none.RememberedKeys("acme")
	require.False(t, ok)
}

// TestIngressQuotasCarryTheLimitOfRememberedKeys, and read the bare rates
// written before it had one.
func TestIngressQuotasCarryTheLimitOfRememberedKeys(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := &IngressQuotas{JS: js}
	require.NoError(t, writer.Put(ctx, "acme", IngressQuota{RememberedKeys: 5000}))
	require.NoError(t, writer.Put(ctx, "both", IngressQuota{MessagesPerSecond: 9, RememberedKeys: 7}))
	kv, err := writer.bucket(ctx)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "legacy", []byte("12"))
	require.NoError(t, err)
	_, err = kv.Put(ctx, "negative", []byte(`{"remembered_keys":-3}`))
	require.NoError(t, err)

	reader := &IngressQuotas{JS: js}
	require.NoError(t, reader.Follow(ctx))
	n, ok := reader.RememberedKeys("acme")
	require.True(t, ok)
	require.EqualValues(t, 5000, n)
	_, ok = reader.Rate("acme")
	require.False(t, ok, "the platform's rate")
	r, _ := reader.Rate("both")
	n, _ = reader.RememberedKeys("both")
	require.Equal(t, 9.0, r)
	require.EqualValues(t, 7, n)
	r, ok = reader.Rate("legacy")
	require.True(t, ok, "a bare rate is a rate")
	require.Equal(t, 12.0, r)
	_, ok = reader.RememberedKeys("legacy")
	require.False(t, ok)
	_, ok = reader.RememberedKeys("negative")
	require.False(t, ok, "a negative limit is none")
}
