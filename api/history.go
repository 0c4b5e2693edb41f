package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// Metrics history bounds.
const (
	defaultMetricsWindow = time.Hour
	// maxMetricsPoints bounds the points of one answer: 24 h at a 10 s step
	// is 8,640.
	maxMetricsPoints = 8640
)

// MetricsInput selects an integration's metrics history.
type MetricsInput struct {
	IntegrationPath
	Since time.Time `query:"since" doc:"From when (RFC 3339); default one hour ago, at most 24 hours ago."`
	Step  int       `query:"step" minimum:"1" maximum:"3600" default:"10" doc:"Bucket width in seconds."`
}

// MetricsPoint is one bucket of the history.
type MetricsPoint struct {
	Time            time.Time `json:"time" doc:"The bucket's start."`
	InPerSecond     float64   `json:"in_per_second" doc:"Messages entering the process stage."`
	OutPerSecond    float64   `json:"out_per_second" doc:"Messages delivered by the producers (each producer's delivery counts)."`
	ErrorsPerSecond float64   `json:"errors_per_second" doc:"Failed attempts: retried or dead-lettered."`
	DLQPerSecond    float64   `json:"dlq_per_second" doc:"Growth of the integration's dead letters."`
	P50Millis       *float64  `json:"p50_ms" doc:"Median end-to-end latency in milliseconds, from ingestion to a producer's confirmed delivery; for a bucket of several samples, their medians' mean weighted by their deliveries. Null: nothing was delivered in the bucket."`
	P99Millis       *float64  `json:"p99_ms" doc:"99th percentile end-to-end latency in milliseconds; for a bucket of several samples, the highest of theirs. Null: nothing was delivered in the bucket."`
}

// MetricsOutput is an integration's metrics history.
type MetricsOutput struct {
	Body struct {
		StepSeconds int            `json:"step_seconds"`
		Points      []MetricsPoint `json:"points"`
	}
}

// history serves get-integration-metrics.
type history struct {
	st  *store.Store
	log *slog.Logger
}

// RegisterHistory adds get-integration-metrics, served from the samples
// the worker's sampler writes to PostgreSQL (internal/history).
func RegisterHistory(api huma.API, st *store.Store, log *slog.Logger) {
	h := &history{st: st, log: log}
	huma.Register(api, huma.Operation{
		OperationID: "get-integration-metrics",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/metrics",
		Summary:     "Get an integration's metrics history",
		Description: "Returns the integration's rates per second from `since` (default one hour ago, at most 24 hours ago) " +
			"in buckets of `step` seconds (default 10), oldest first. The platform samples every running integration's " +
			"counters every 10 seconds into PostgreSQL and keeps 24 hours; each point's rates are the counts' growth over " +
			"the sampling intervals that end in its bucket, divided by their length, so a step under the sampling " +
			"interval leaves buckets without a point, and a stopped integration has none. `in` counts messages entering " +
			"the process stage, `out` each producer's finished deliveries, `errors` failed attempts (retried or " +
			"dead-lettered), `dlq` the growth of its dead letters (a replay does not count). Counts come from the stages' " +
			"JetStream consumers, so a redelivered message counts again. What no runner takes (messages waiting while no runner " +
			"consumes the integration) and dead letters discarded through the API show in a sample within a minute when " +
			"nothing else of the tenant moved. `p50_ms` and `p99_ms` are the end-to-end latency " +
			"percentiles in milliseconds, from a message's ingestion to a producer's confirmed delivery: runners count each " +
			"delivery in a histogram (buckets from 0.5 ms doubling up to 65.5 s, the buckets of Prometheus' " +
			"vrsky_end_to_end_seconds) and the sampler takes each interval's percentiles from its growth, interpolating " +
			"linearly inside a bucket like Prometheus' histogram_quantile (a latency over 65.5 s reads as 65.5 s). A bucket " +
			"of several samples takes the highest of their p99s (a spike is never averaged away) and the mean of their p50s " +
			"weighted by each sample's deliveries (their plain mean when none counted a delivery). Both are null when nothing " +
			"was delivered in the bucket, and for the first sample after the platform's sampler starts. Another tenant's " +
			"integration is a 404. Needs scope read.",
		Tags:     []string{"Integrations"},
		Security: requireScopes(store.ScopeRead),
		Errors:   withAuthErrors(http.StatusNotFound, http.StatusUnprocessableEntity),
	}, h.metrics)
}

// metrics answers the integration's rates from the samples.
func (h *history) metrics(ctx context.Context, in *MetricsInput) (*MetricsOutput, error) {
	p, _ := PrincipalFrom(ctx)
	if !spec.ValidName(in.IntegrationID) {
		return nil, huma.Error404NotFound("not found")
	}
	if _, err := h.st.GetIntegration(ctx, p.TenantID, in.IntegrationID); err != nil {
		return nil, storeError(ctx, h.log, "get-integration-metrics", p.TenantID, err)
	}
	now := time.Now()
	since := in.Since
	switch {
	case since.IsZero():
		since = now.Add(-defaultMetricsWindow)
	case since.Before(now.Add(-store.HistoryRetention - time.Minute)):
		return nil, huma.Error422UnprocessableEntity("since is too far back",
			&huma.ErrorDetail{Location: "query.since", Message: "at most 24 hours ago: older samples are not kept", Value: in.Since})
	case since.After(now):
		return nil, huma.Error422UnprocessableEntity("since is in the future",
			&huma.ErrorDetail{Location: "query.since", Message: "must not be in the future", Value: in.Since})
	}
	step := time.Duration(in.Step) * time.Second
	if now.Sub(since)/step > maxMetricsPoints {
		return nil, huma.Error422UnprocessableEntity("too many points",
			&huma.ErrorDetail{Location: "query.step", Message: "a larger step, or a later since: at most 8,640 points", Value: in.Step})
	}
	points, err := h.st.IntegrationMetrics(ctx, p.TenantID, in.IntegrationID, since, step)
	if err != nil {
		return nil, storeError(ctx, h.log, "get-integration-metrics", p.TenantID, err)
	}
	out := &MetricsOutput{}
	out.Body.StepSeconds = in.Step
	out.Body.Points = make([]MetricsPoint, 0, len(points))
	for _, pt := range points {
		out.Body.Points = append(out.Body.Points, MetricsPoint{
			Time: pt.Time, InPerSecond: pt.In, OutPerSecond: pt.Out, ErrorsPerSecond: pt.Errors, DLQPerSecond: pt.DLQ,
			P50Millis: pt.P50Millis, P99Millis: pt.P99Millis,
		})
	}
	return out, nil
}
