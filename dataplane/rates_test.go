package dataplane

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestTenantRatesAreFollowedAsTheyChange(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := &TenantRates{JS: js}
	require.NoError(t, writer.Put(ctx, "acme", 50))
	require.NoError(t, writer.Put(ctx, "zero", 0), "removing a rate that is not there succeeds")
	require.ErrorContains(t, writer.Put(ctx, "../evil", 5), "not a tenant ID")

	reader := &TenantRates{JS: js}
	require.NoError(t, reader.Follow(ctx))
	r, ok := reader.Rate("acme")
	require.True(t, ok, "the rates present are read before Follow returns")
	require.Equal(t, 50.0, r)
	_, ok = reader.Rate("other")
	require.False(t, ok)

	require.NoError(t, writer.Put(ctx, "acme", 7))
	require.NoError(t, writer.Put(ctx, "beta", 3))
	require.Eventually(t, func() bool { r, _ := reader.Rate("acme"); return r == 7 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := reader.Rate("beta"); return ok }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, writer.Put(ctx, "acme", 0))
	require.Eventually(t, func() bool { _, ok := reader.Rate("acme"); return !ok }, 5*time.Second, 10*time.Millisecond,
		"back to the platform's rate")

	// Garbage written by something else is no rate at all.
	kv, err := js.KeyValue(ctx, TenantRatesBucket)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "beta", []byte("lots"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := reader.Rate("beta"); return !ok }, 5*time.Second, 10*time.Millisecond)

	var none *TenantRates
	_, ok = none.Rate("acme")
	require.False(t, ok)
}
