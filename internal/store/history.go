package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// HistoryRetention is how long metric samples are kept.
const HistoryRetention = 24 * time.Hour

// Sample is one integration's counters at one moment, as the metrics
// sampler read them: cumulative counts (which only grow while the
// integration's streams live; a count that falls is a reset) and the dead
// letters waiting. P50 and P99 are the end-to-end latency percentiles, in
// milliseconds, of the deliveries in the interval since the previous
// sample; nil when none was delivered (or none measured).
type Sample struct {
	TenantID      string
	IntegrationID string
	At            time.Time
	In            int64
	Out           int64
	Errors        int64
	DLQ           int64
	P50, P99      *float64
}

// MetricPoint is one time bucket of an integration's metrics history:
// average rates per second over the sampling intervals that end in it,
// and their latency percentiles: the highest p99, and the p50s' mean
// weighted by each interval's deliveries (their plain mean when no
// interval with a p50 counted a delivery); nil when no interval has one.
type MetricPoint struct {
	Time                 time.Time
	In, Out, Errors, DLQ float64
	P50Millis, P99Millis *float64
}

// WriteSamples stores samples, each under its own tenant; samples of
// tenants that do not exist (any more) are skipped. It returns how many
// were stored. A sample for a moment already stored is ignored.
func (s *Store) WriteSamples(ctx context.Context, samples []Sample) (int, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	n := len(samples)
	tenants, ids := make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	in, out, errs, dlq := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	p50, p99 := make([]*float64, n), make([]*float64, n)
	for i, x := range samples {
		tenants[i], ids[i], ats[i] = x.TenantID, x.IntegrationID, x.At
		in[i], out[i], errs[i], dlq[i] = x.In, x.Out, x.Errors, x.DLQ
		p50[i], p99[i] = x.P50, x.P99
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO integration_samples (tenant_id, integration_id, at, in_total, out_total, errors_total, dlq_messages, p50_ms, p99_ms)
		SELECT x.tenant_id, x.integration_id, x.at, x.in_total, x.out_total, x.errors_total, x.dlq_messages, x.p50_ms, x.p99_ms
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
		            $8::double precision[], $9::double precision[])
		     AS x (tenant_id, integration_id, at, in_total, out_total, errors_total, dlq_messages, p50_ms, p99_ms)
		JOIN tenants t ON t.id = x.tenant_id AND t.deleted_at IS NULL
		ON CONFLICT (tenant_id, integration_id, at) DO NOTHING`,
		tenants, ids, ats, in, out, errs, dlq, p50, p99)
	if err != nil {
		return 0, fmt.Errorf("write %d metric samples: %w", n, err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneSamples removes every tenant's samples taken before cutoff: the
// retention applies to the whole platform alike. It returns how many it
// removed.
func (s *Store) PruneSamples(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM integration_samples WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune metric samples: %w", err)
	}
	return tag.RowsAffected(), nil
}

// IntegrationMetrics returns the tenant's integration's metrics history from
// since on, in buckets of step (aligned on multiples of step since the Unix
// epoch), oldest first. Each point's rates are the counts' increases over
// the sampling intervals that end in its bucket divided by those intervals'
// length (a count that fell, a reset, adds nothing); buckets without a
// sample have no point. A bucket's p99 is the highest of its intervals',
// its p50 their mean weighted by the deliveries (MetricPoint). Another
// tenant's integration has no points.
func (s *Store) IntegrationMetrics(ctx context.Context, tenant, integration string, since time.Time, step time.Duration) ([]MetricPoint, error) {
	secs := step.Seconds()
	if secs < 1 {
		return nil, fmt.Errorf("%w: step %s is under a second", ErrInvalid, step)
	}
	rows, err := s.pool.Query(ctx, `
		WITH s AS (
			SELECT at, in_total, out_total, errors_total, dlq_messages, p50_ms, p99_ms,
			       lag(at) OVER w AS prev_at, lag(in_total) OVER w AS prev_in, lag(out_total) OVER w AS prev_out,
			       lag(errors_total) OVER w AS prev_errors, lag(dlq_messages) OVER w AS prev_dlq
			FROM integration_samples
			WHERE tenant_id = $1 AND integration_id = $2
			  AND at >= (SELECT coalesce(max(at), $3) FROM integration_samples
			             WHERE tenant_id = $1 AND integration_id = $2 AND at < $3)
			WINDOW w AS (ORDER BY at)
		)
		SELECT to_timestamp(floor(extract(epoch FROM at) / $4) * $4) AS bucket,
		       sum(greatest(in_total - prev_in, 0))::float8, sum(greatest(out_total - prev_out, 0))::float8,
		       sum(greatest(errors_total - prev_errors, 0))::float8, sum(greatest(dlq_messages - prev_dlq, 0))::float8,
		       extract(epoch FROM sum(at - prev_at))::float8,
		       coalesce(sum(p50_ms * greatest(out_total - prev_out, 0))
		                / nullif(sum(greatest(out_total - prev_out, 0)) FILTER (WHERE p50_ms IS NOT NULL), 0),
		                avg(p50_ms))::float8,
		       max(p99_ms)
		FROM s
		WHERE prev_at IS NOT NULL AND at >= $3
		GROUP BY bucket
		ORDER BY bucket`, tenant, integration, since, secs)
	if err != nil {
		return nil, fmt.Errorf("read the metrics of %s/%s: %w", tenant, integration, err)
	}
	points, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MetricPoint, error) {
		var p MetricPoint
		var elapsed float64
		if err := row.Scan(&p.Time, &p.In, &p.Out, &p.Errors, &p.DLQ, &elapsed, &p.P50Millis, &p.P99Millis); err != nil {
			return p, err
		}
		if elapsed > 0 {
			p.In, p.Out, p.Errors, p.DLQ = p.In/elapsed, p.Out/elapsed, p.Errors/elapsed, p.DLQ/elapsed
		}
		p.Time = p.Time.UTC()
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the metrics of %s/%s: %w", tenant, integration, err)
	}
	return points, nil
}

// PlatformOverview is the whole platform at a glance, for the platform
// admin: tenants and integrations by status, and the current rates and
// dead letters from the latest metric samples.
type PlatformOverview struct {
	// Tenants and Integrations count by status (not deleted).
	Tenants      map[string]int
	Integrations map[string]int
	// MessagesPerSecond and ErrorsPerSecond add up every integration's
	// rate of messages in and of failed attempts over window.
	MessagesPerSecond float64
	ErrorsPerSecond   float64
	// DLQMessages adds up the dead letters of every integration sampled
	// within window, at its latest sample.
	DLQMessages int64
}

// Overview reads the platform overview; rates are over the samples of the
// last window. It is the platform admin's view and spans every tenant.
func (s *Store) Overview(ctx context.Context, window time.Duration) (PlatformOverview, error) {
	o := PlatformOverview{Tenants: map[string]int{}, Integrations: map[string]int{}}
	count := func(what, sql string, into map[string]int) error {
		rows, err := s.pool.Query(ctx, sql)
		if err != nil {
			return fmt.Errorf("count %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var status string
			var n int
			if err := rows.Scan(&status, &n); err != nil {
				return fmt.Errorf("count %s: %w", what, err)
			}
			into[status] = n
		}
		return rows.Err()
	}
	if err := count("tenants", `SELECT status, count(*) FROM tenants WHERE deleted_at IS NULL GROUP BY status`, o.Tenants); err != nil {
		return o, err
	}
	if err := count("integrations", `
		SELECT i.status, count(*) FROM integrations i JOIN tenants t ON t.id = i.tenant_id AND t.deleted_at IS NULL
		GROUP BY i.status`, o.Integrations); err != nil {
		return o, err
	}
	err := s.pool.QueryRow(ctx, `
		WITH recent AS (
			SELECT tenant_id, integration_id, at, in_total, errors_total, dlq_messages
			FROM integration_samples WHERE at > now() - make_interval(secs => $1)
		), rates AS (
			SELECT greatest(max(in_total) - min(in_total), 0) / nullif(extract(epoch FROM max(at) - min(at)), 0) AS msgs,
			       greatest(max(errors_total) - min(errors_total), 0) / nullif(extract(epoch FROM max(at) - min(at)), 0) AS errs
			FROM recent GROUP BY tenant_id, integration_id
		), latest AS (
			SELECT DISTINCT ON (tenant_id, integration_id) dlq_messages FROM recent
			ORDER BY tenant_id, integration_id, at DESC
		)
		SELECT coalesce((SELECT sum(msgs) FROM rates), 0)::float8, coalesce((SELECT sum(errs) FROM rates), 0)::float8,
		       coalesce((SELECT sum(dlq_messages) FROM latest), 0)::bigint`, window.Seconds(),
	).Scan(&o.MessagesPerSecond, &o.ErrorsPerSecond, &o.DLQMessages)
	if err != nil {
		return o, fmt.Errorf("read the platform's rates: %w", err)
	}
	return o, nil
}
