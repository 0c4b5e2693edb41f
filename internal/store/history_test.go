package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMetricsHistoryRatesPerBucketAndTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme", "other")

	base := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	samples := []Sample{
		// acme/orders: 10 msgs/s in, 8 out, 1 error, one dead letter every 10 s.
		{TenantID: "acme", IntegrationID: "orders", At: at(0), In: 100, Out: 80, Errors: 0, DLQ: 0},
		{TenantID: "acme", IntegrationID: "orders", At: at(10), In: 200, Out: 160, Errors: 10, DLQ: 1},
		{TenantID: "acme", IntegrationID: "orders", At: at(20), In: 300, Out: 240, Errors: 20, DLQ: 2},
		// A reset (streams recreated): the fall adds nothing.
		{TenantID: "acme", IntegrationID: "orders", At: at(30), In: 50, Out: 40, Errors: 0, DLQ: 0},
		{TenantID: "acme", IntegrationID: "orders", At: at(40), In: 150, Out: 140, Errors: 0, DLQ: 0},
		// Same integration name, another tenant: never mixed in.
		{TenantID: "other", IntegrationID: "orders", At: at(10), In: 1e9, Out: 1e9},
		{TenantID: "other", IntegrationID: "orders", At: at(20), In: 2e9, Out: 2e9},
		// A tenant that does not exist is skipped.
		{TenantID: "ghost", IntegrationID: "orders", At: at(10), In: 1},
	}
	n, err := s.WriteSamples(ctx, samples)
	require.NoError(t, err)
	require.Equal(t, 7, n)
	n, err = s.WriteSamples(ctx, samples[:2])
	require.NoError(t, err)
	require.Zero(t, n, "a moment already stored is not stored twice")

	points, err := s.IntegrationMetrics(ctx, "acme", "orders", at(5), 10*time.Second)
	require.NoError(t, err)
	require.Len(t, points, 4)
	require.Equal(t, at(10), points[0].Time)
	require.InDelta(t, 10, points[0].In, 1e-9)
	require.InDelta(t, 8, points[0].Out, 1e-9)
	require.InDelta(t, 1, points[0].Errors, 1e-9)
	require.InDelta(t, 0.1, points[0].DLQ, 1e-9)
	require.Nil(t, points[0].P50Millis)
	require.Nil(t, points[0].P99Millis)
	require.Zero(t, points[2].In, "a reset counts nothing")
	require.InDelta(t, 10, points[3].In, 1e-9)

	// One-minute buckets average the intervals that end in them.
	points, err = s.IntegrationMetrics(ctx, "acme", "orders", at(0), time.Minute)
	require.NoError(t, err)
	require.Len(t, points, 1)
	require.InDelta(t, float64(100+100+0+100)/40, points[0].In, 1e-9)

	// since after an earlier sample still uses it as the first interval's start.
	points, err = s.IntegrationMetrics(ctx, "acme", "orders", at(15), 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, at(20), points[0].Time)
	require.InDelta(t, 10, points[0].In, 1e-9)

	points, err = s.IntegrationMetrics(ctx, "other", "orders", at(0), 10*time.Second)
	require.NoError(t, err)
	require.Len(t, points, 1)
	require.InDelta(t, 1e8, points[0].In, 1)
	points, err = s.IntegrationMetrics(ctx, "acme", "nothing", at(0), 10*time.Second)
	require.NoError(t, err)
	require.Empty(t, points)
	_, err = s.IntegrationMetrics(ctx, "acme", "orders", at(0), time.Millisecond)
	require.ErrorIs(t, err, ErrInvalid)

	removed, err := s.PruneSamples(ctx, at(15))
	require.NoError(t, err)
	require.EqualValues(t, 3, removed)
	points, err = s.IntegrationMetrics(ctx, "acme", "orders", at(0), 10*time.Second)
	require.NoError(t, err)
	require.Len(t, points, 2, "the samples at 20, 30 and 40 s are left: two intervals")
	require.Equal(t, at(30), points[0].Time)
}

func TestOverviewCountsAndRates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	newTenants(t, s, "acme", "beta", "gone")
	_, err := pool.Exec(ctx, `UPDATE tenants SET status = 'provisioning' WHERE id = 'beta'`)
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		_, err := s.CreateIntegration(ctx, "acme", testSpec(id, "out"), "key-1")
		require.NoError(t, err)
	}
	_, err = pool.Exec(ctx, `UPDATE integrations SET status = 'running' WHERE id IN ('a', 'b')`)
	require.NoError(t, err)
	now := time.Now().UTC()
	_, err = s.WriteSamples(ctx, []Sample{
		{TenantID: "acme", IntegrationID: "a", At: now.Add(-20 * time.Second), In: 0, Errors: 0, DLQ: 1},
		{TenantID: "acme", IntegrationID: "a", At: now.Add(-10 * time.Second), In: 50, Errors: 10, DLQ: 3},
		{TenantID: "acme", IntegrationID: "b", At: now.Add(-20 * time.Second), In: 0},
		{TenantID: "acme", IntegrationID: "b", At: now.Add(-10 * time.Second), In: 20, DLQ: 2},
		// Too old to count.
		{TenantID: "acme", IntegrationID: "c", At: now.Add(-time.Hour), In: 0, DLQ: 100},
		{TenantID: "acme", IntegrationID: "c", At: now.Add(-time.Hour + 10*time.Second), In: 1000, DLQ: 100},
	})
	require.NoError(t, err)
	require.NoError(t, s.DeleteTenant(ctx, "gone"))

	o, err := s.Overview(ctx, time.Minute)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"active": 1, "provisioning": 1}, o.Tenants)
	require.Equal(t, map[string]int{"running": 2, "stopped": 1}, o.Integrations)
	require.InDelta(t, 7, o.MessagesPerSecond, 1e-9)
	require.InDelta(t, 1, o.ErrorsPerSecond, 1e-9)
	require.EqualValues(t, 5, o.DLQMessages)
}

func TestMetricsHistoryLatencyPerBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme")

	base := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	ms := func(v float64) *float64 { return &v }
	_, err := s.WriteSamples(ctx, []Sample{
		{TenantID: "acme", IntegrationID: "orders", At: at(0)},
		// 80 deliveries at p50 2 ms, then 20 at p50 10 ms.
		{TenantID: "acme", IntegrationID: "orders", At: at(10), Out: 80, P50: ms(2), P99: ms(5)},
		{TenantID: "acme", IntegrationID: "orders", At: at(20), Out: 100, P50: ms(10), P99: ms(40)},
		// Nothing delivered: no latency.
		{TenantID: "acme", IntegrationID: "orders", At: at(30), Out: 100},
		// A p50 whose deliveries the out count has not seen yet (the
		// counts flush apart): a bucket of only those takes their mean.
		{TenantID: "acme", IntegrationID: "orders", At: at(70), Out: 100, P50: ms(3), P99: ms(3)},
		{TenantID: "acme", IntegrationID: "orders", At: at(80), Out: 100, P50: ms(5), P99: ms(9)},
	})
	require.NoError(t, err)

	points, err := s.IntegrationMetrics(ctx, "acme", "orders", at(5), 10*time.Second)
	require.NoError(t, err)
	require.Len(t, points, 5)
	require.InDelta(t, 2, *points[0].P50Millis, 1e-9)
	require.InDelta(t, 40, *points[1].P99Millis, 1e-9)
	require.Nil(t, points[2].P50Millis, "no delivery in the interval")
	require.Nil(t, points[2].P99Millis)

	points, err = s.IntegrationMetrics(ctx, "acme", "orders", at(0), time.Minute)
	require.NoError(t, err)
	require.Len(t, points, 2)
	require.InDelta(t, (2*80+10*20)/100.0, *points[0].P50Millis, 1e-9, "p50s weighted by deliveries")
	require.InDelta(t, 40, *points[0].P99Millis, 1e-9, "the highest p99")
	require.InDelta(t, 4, *points[1].P50Millis, 1e-9, "no delivery counted: the plain mean")
	require.InDelta(t, 9, *points[1].P99Millis, 1e-9)
}
