package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// tenantVariable lists the tenants that have hot-path or webhook series.
func tenantVariable() *dashboard.QueryVariableBuilder {
	return labelVariable("tenant", "tenant", "vrsky_stage_messages_in_total", "Tenants whose integrations have processed messages.")
}

// Tenant is one tenant's dashboard: its webhook traffic, its integrations'
// flow, its dead-letter queue and its logs.
func Tenant() *dashboard.DashboardBuilder {
	const t = `tenant="$tenant"`
	return base("vrsky-tenant", "VRSky / Tenant",
		"One tenant ($tenant): webhook ingress, its integrations' throughput, retries, DLQ, lag, latency and logs. See docs/operations.md.").
		WithVariable(tenantVariable()).
		WithRow(dashboard.NewRowBuilder("Ingress")).
		WithPanel(graph("Webhook messages by outcome", "The tenant's webhook messages per second by outcome; refused includes requests over the tenant's rate (429), quota_full means the tenant's quota is used up.", "reqps",
			promQuery(`sum by (outcome) (rate(vrsky_webhook_messages_total{`+t+`}`+rate+`))`, "{{outcome}}"))).
		WithPanel(graph("Messages in by integration", "Messages entering each of the tenant's integrations (process stage), per second.", "short",
			promQuery(`sum by (integration) (rate(vrsky_stage_messages_in_total{`+t+`, stage="process"}`+rate+`))`, "{{integration}}"))).
		WithRow(dashboard.NewRowBuilder("Delivery")).
		WithPanel(graph("Delivered by integration", "Messages producers delivered, per integration, per second.", "short",
			promQuery(`sum by (integration) (rate(vrsky_stage_messages_out_total{`+t+`, stage=~"deliver-.*"}`+rate+`))`, "{{integration}}"))).
		WithPanel(graph("Filtered by integration", "Messages filters dropped, per integration, per second.", "short",
			promQuery(`sum by (integration) (rate(vrsky_stage_messages_filtered_total{`+t+`}`+rate+`))`, "{{integration}}"))).
		WithPanel(graph("Retries by integration", "Messages scheduled for redelivery after a failure, per second.", "short",
			promQuery(`sum by (integration) (rate(vrsky_stage_retries_total{`+t+`}`+rate+`))`, "{{integration}}"))).
		WithPanel(graph("Sent to the DLQ by integration", "Messages that used up their retries or failed permanently, per second.", "short",
			promQuery(`sum by (integration) (rate(vrsky_stage_dlq_total{`+t+`}`+rate+`))`, "{{integration}}"))).
		WithPanel(single("Messages in the DLQ", "Messages held in the tenant's dead-letter stream; replay them with the DLQ replay API once the cause is fixed.", "short",
			promQuery(`sum(vrsky_dlq_messages{`+t+`})`, "DLQ"))).
		WithPanel(single("Consumer lag", "Messages waiting in all of the tenant's stages.", "short",
			promQuery(`sum(vrsky_stage_consumer_lag{`+t+`})`, "lag"))).
		WithPanel(single("End-to-end p99", "99th percentile time from ingestion to delivery over the tenant's integrations.", "s",
			promQuery(`histogram_quantile(0.99, sum by (le) (rate(vrsky_end_to_end_seconds_bucket{`+t+`}`+rate+`)))`, "p99"))).
		WithPanel(single("Bytes in", "Body bytes the tenant's process stages received per second.", "Bps",
			promQuery(`sum(rate(vrsky_stage_bytes_in_total{`+t+`, stage="process"}`+rate+`))`, "bytes"))).
		WithRow(dashboard.NewRowBuilder("Latency and lag")).
		WithPanel(graph("Stage latency p99", "99th percentile time a stage spends per message, by stage kind (process, deliver), over the tenant's integrations. The integration label is only present with VRSKY_METRICS_INTEGRATION_LATENCY=true.", "s",
			promQuery(`histogram_quantile(0.99, sum by (le, stage) (rate(vrsky_stage_duration_seconds_bucket{`+t+`}`+rate+`)))`, "{{stage}}"))).
		WithPanel(graph("Consumer lag by integration", "Messages waiting per integration.", "short",
			promQuery(`sum by (integration) (vrsky_stage_consumer_lag{`+t+`})`, "{{integration}}"))).
		WithPanel(graph("CDC slot lag", "WAL bytes held back by each of the tenant's CDC replication slots.", "bytes",
			promQuery(`max by (integration) (vrsky_cdc_slot_lag_bytes{`+t+`})`, "{{integration}}"))).
		WithPanel(graph("Claim-check bytes", "Body bytes fetched from the blob store for the tenant's large messages, per second.", "Bps",
			promQuery(`sum by (integration) (rate(vrsky_claimcheck_bytes_total{`+t+`}`+rate+`))`, "{{integration}}"))).
		WithRow(dashboard.NewRowBuilder("Logs")).
		WithPanel(logGraph("Log lines by level", "The tenant's log lines per level (tenant is a structured-metadata field in Loki, not a label).",
			lokiQuery(`sum by (level) (count_over_time(`+streams()+` | tenant="$tenant" [$__auto]))`, "{{level}}")).Span(24)).
		WithPanel(logLines("Warnings and errors", "The tenant's latest WARN and ERROR lines.",
			streams(`level=~"WARN|ERROR"`)+` | tenant="$tenant"`))
}
