package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTenantsActivityCountsIntegrationsAndRatesAcrossResets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme", "quiet")
	_, err := s.CreateIntegration(ctx, "acme", testSpec("orders", "out"), "test")
	require.NoError(t, err)
	_, err = s.CreateIntegration(ctx, "acme", testSpec("invoices", "out"), "test")
	require.NoError(t, err)

	now := time.Now().UTC().Add(-time.Second)
	at := func(sec int) time.Time { return now.Add(time.Duration(sec-40) * time.Second) }
	_, err = s.WriteSamples(ctx, []Sample{
		{TenantID: "acme", IntegrationID: "orders", At: at(0), In: 1000},
		{TenantID: "acme", IntegrationID: "orders", At: at(10), In: 2000}, // 100/s
		{TenantID: "acme", IntegrationID: "orders", At: at(20), In: 500},  // reset: 500 counts, 50/s
		{TenantID: "acme", IntegrationID: "orders", At: at(30), In: 3500}, // 300/s, the peak
		{TenantID: "acme", IntegrationID: "orders", At: at(40), In: 4500}, // 100/s
		{TenantID: "acme", IntegrationID: "invoices", At: at(20), In: 0},
		{TenantID: "acme", IntegrationID: "invoices", At: at(40), In: 400}, // 20/s
		{TenantID: "acme", IntegrationID: "old", At: at(-3600), In: 0},     // outside the window
		{TenantID: "acme", IntegrationID: "old", At: at(-3590), In: 1e9},
	})
	require.NoError(t, err)
	got, err := s.TenantsActivity(ctx, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "acme", got[0].Tenant)
	require.Equal(t, 2, got[0].Integrations)
	require.InDelta(t, (1000+500+3000+1000+400)/40.0, got[0].MessagesPerSecond, 0.01)
	require.InDelta(t, 300, got[0].PeakPerSecond, 0.01)
	require.Equal(t, TenantActivity{Tenant: "quiet"}, got[1])
}
