package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Integration is one integration's dashboard: each of its stages (process,
// then one deliver-<producer> per producer) with throughput, failures and
// lag, and its logs.
func Integration() *dashboard.DashboardBuilder {
	const ti = `tenant="$tenant", integration="$integration"`
	return base("vrsky-integration", "VRSky / Integration",
		"One integration ($tenant / $integration), stage by stage: the process stage runs the consumer's converters and filters, each deliver-<producer> stage one producer. See docs/operations.md.").
		WithVariable(tenantVariable()).
		WithVariable(labelVariable("integration", "integration", `vrsky_stage_messages_in_total{tenant="$tenant"}`, "The tenant's integrations that have processed messages.")).
		WithRow(dashboard.NewRowBuilder("Throughput")).
		WithPanel(graph("Messages in by stage", "Messages each stage received, per second.", "short",
			promQuery(`sum by (stage) (rate(vrsky_stage_messages_in_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithPanel(graph("Messages out by stage", "Messages each stage completed (published onward or delivered), per second.", "short",
			promQuery(`sum by (stage) (rate(vrsky_stage_messages_out_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithPanel(graph("Filtered", "Messages the integration's filters dropped, per second.", "short",
			promQuery(`sum by (stage) (rate(vrsky_stage_messages_filtered_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithPanel(graph("Bytes in by stage", "Body bytes each stage received, per second.", "Bps",
			promQuery(`sum by (stage) (rate(vrsky_stage_bytes_in_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithRow(dashboard.NewRowBuilder("Failures")).
		WithPanel(graph("Retries by stage", "Messages scheduled for redelivery (up to 3 retries with backoff), per second.", "short",
			promQuery(`sum by (stage) (rate(vrsky_stage_retries_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithPanel(graph("Sent to the DLQ by stage", "Messages sent to the tenant's dead-letter queue, per second.", "short",
			promQuery(`sum by (stage) (rate(vrsky_stage_dlq_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithRow(dashboard.NewRowBuilder("Lag and latency")).
		WithPanel(graph("Consumer lag by stage", "Messages waiting for each stage (pending plus unacknowledged).", "short",
			promQuery(`sum by (stage) (vrsky_stage_consumer_lag{`+ti+`})`, "{{stage}}"))).
		WithPanel(graph("Stage latency p99 (tenant)", "99th percentile time per message by stage kind, over the tenant: the latency histograms carry the integration label only with VRSKY_METRICS_INTEGRATION_LATENCY=true, so this panel shows the tenant's figure.", "s",
			promQuery(`histogram_quantile(0.99, sum by (le, stage) (rate(vrsky_stage_duration_seconds_bucket{tenant="$tenant"}`+rate+`)))`, "{{stage}}"))).
		WithPanel(graph("CDC slot lag", "WAL bytes this integration's replication slot holds back (CDC integrations only).", "bytes",
			promQuery(`max(vrsky_cdc_slot_lag_bytes{`+ti+`})`, "slot lag"))).
		WithPanel(graph("Claim-check bytes", "Body bytes fetched from the blob store for this integration, per second.", "Bps",
			promQuery(`sum by (stage) (rate(vrsky_claimcheck_bytes_total{`+ti+`}`+rate+`))`, "{{stage}}"))).
		WithRow(dashboard.NewRowBuilder("Logs")).
		WithPanel(logLines("Log lines", "The integration's latest log lines (tenant and integration are structured-metadata fields in Loki).",
			streams()+` | tenant="$tenant" | integration="$integration"`))
}
