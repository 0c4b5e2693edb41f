package store

import (
	"context"
	"fmt"
	"time"
)

// TenantActivity is what a tenant uses, for its placement: how many
// integrations it has and how many messages per second entered them.
type TenantActivity struct {
	Tenant       string
	Integrations int
	// MessagesPerSecond is the tenant's messages in over the window;
	// PeakPerSecond the highest rate between two of its samples in it.
	MessagesPerSecond float64
	PeakPerSecond     float64
}

// TenantsActivity returns the activity of every active tenant over the
// last window, from the integrations table and the metrics history. A
// counter that went down between two samples (its stream was recreated,
// after a move) counts from zero, as Prometheus' increase does.
func (s *Store) TenantsActivity(ctx context.Context, window time.Duration) ([]TenantActivity, error) {
	rows, err := s.pool.Query(ctx, `
		WITH steps AS (
			SELECT tenant_id, integration_id, at, extract(epoch FROM at - lag(at) OVER w) AS secs,
			       CASE WHEN in_total >= lag(in_total) OVER w THEN in_total - lag(in_total) OVER w ELSE in_total END AS grew
			FROM integration_samples WHERE at > now() - make_interval(secs => $1)
			WINDOW w AS (PARTITION BY tenant_id, integration_id ORDER BY at)
		), spans AS (
			SELECT tenant_id, at, grew, secs, sum(secs) OVER (PARTITION BY tenant_id, integration_id) AS secs_total FROM steps
		), per_tenant AS (
			SELECT tenant_id, sum(grew) AS grew, max(grew / nullif(secs, 0)) AS peak,
			       max(secs_total) AS span
			FROM spans WHERE secs IS NOT NULL GROUP BY tenant_id
		), counts AS (
			SELECT tenant_id, count(*) AS n FROM integrations GROUP BY tenant_id
		)
		SELECT t.id, coalesce(c.n, 0)::int, coalesce(p.grew / nullif(p.span, 0), 0)::float8, coalesce(p.peak, 0)::float8
		FROM tenants t LEFT JOIN counts c ON c.tenant_id = t.id LEFT JOIN per_tenant p ON p.tenant_id = t.id
		WHERE t.status = $2 AND t.deleted_at IS NULL ORDER BY t.id`, window.Seconds(), TenantActive)
	if err != nil {
		return nil, fmt.Errorf("read tenants' activity: %w", err)
	}
	defer rows.Close()
	var out []TenantActivity
	for rows.Next() {
		var a TenantActivity
		if err := rows.Scan(&a.Tenant, &a.Integrations, &a.MessagesPerSecond, &a.PeakPerSecond); err != nil {
			return nil, fmt.Errorf("read tenants' activity: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
