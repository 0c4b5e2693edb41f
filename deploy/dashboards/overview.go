package dashboards

import (
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// rate is the range every rate() in the dashboards uses: Grafana's
// $__rate_interval, at least four scrape intervals.
const rate = "[$__rate_interval]"

// streams is a LogQL stream selector for the log streams of every VRSky
// role (the role label Alloy sets, deploy/alloy/config.alloy), narrowed by
// further label matchers.
func streams(matchers ...string) string {
	return "{" + strings.Join(append([]string{`role=~"api|worker|runner|dev"`}, matchers...), ", ") + "}"
}

// Overview is the platform dashboard: is every role up, what is the API and
// the webhook ingress doing, how does the hot path flow, what does the
// control plane report, and which errors are logged.
func Overview() *dashboard.DashboardBuilder {
	return base("vrsky-overview", "VRSky / Platform overview",
		"The whole platform: roles, API and webhook ingress, hot path, control plane, NATS and error logs. See docs/operations.md.").
		WithRow(dashboard.NewRowBuilder("Roles")).
		WithPanel(single("Roles up", "Scrape targets of the VRSky roles that answer (Prometheus' up metric for the vrsky-* jobs).", "short",
			promQuery(`sum(up{job=~"vrsky-.*"})`, "up"))).
		WithPanel(single("Roles down", "Scrape targets of the VRSky roles that do not answer. Anything above 0 fires VRSkyServiceDown.", "short",
			promQuery(`count(up{job=~"vrsky-.*"} == 0) or vector(0)`, "down"))).
		WithPanel(graph("Running versions", "One line per role and version (vrsky_build_info). Two versions of one role at once means an upgrade is under way.", "short",
			promQuery(`count by (role, version) (vrsky_build_info)`, "{{role}} {{version}}"))).
		WithRow(dashboard.NewRowBuilder("API and webhook ingress")).
		WithPanel(graph("Requests by status", "HTTP requests per second on the API and webhook ingress, by status code.", "reqps",
			promQuery(`sum by (code) (rate(vrsky_http_requests_total`+rate+`))`, "{{code}}"))).
		WithPanel(graph("Server error ratio", "Share of requests answered with a 5xx status. VRSkyHighErrorRate fires above 5 % for 10 minutes.", "percentunit",
			promQuery(`sum(rate(vrsky_http_requests_total{code=~"5.."}`+rate+`)) / clamp_min(sum(rate(vrsky_http_requests_total`+rate+`)), 1e-9)`, "5xx ratio"))).
		WithPanel(graph("Latency p99 by route", "99th percentile request duration per route pattern.", "s",
			promQuery(`histogram_quantile(0.99, sum by (le, route) (rate(vrsky_http_request_duration_seconds_bucket`+rate+`)))`, "{{route}}"))).
		WithPanel(graph("Requests in flight", "Requests being served right now, summed over api instances.", "short",
			promQuery(`sum(vrsky_http_requests_in_flight)`, "in flight"))).
		WithPanel(graph("Webhook messages by outcome", "Webhook messages per second by outcome: accepted, duplicate (idempotency key seen), refused (over the tenant's rate, unauthenticated, too large, malformed…), quota_full (the tenant's quota is used up) and unavailable (503).", "reqps",
			promQuery(`sum by (outcome) (rate(vrsky_webhook_messages_total`+rate+`))`, "{{outcome}}"))).
		WithPanel(graph("Traffic", "Request and response body bytes per second.", "Bps",
			promQuery(`sum(rate(vrsky_http_request_body_bytes_total`+rate+`))`, "request bodies"),
			promQuery(`sum(rate(vrsky_http_response_body_bytes_total`+rate+`))`, "response bodies"))).
		WithRow(dashboard.NewRowBuilder("Hot path")).
		WithPanel(graph("Messages in and delivered", "Messages entering integrations (the process stage) and delivered by producers (deliver-* stages), per second.", "short",
			promQuery(`sum(rate(vrsky_stage_messages_in_total{stage="process"}`+rate+`))`, "in"),
			promQuery(`sum(rate(vrsky_stage_messages_out_total{stage=~"deliver-.*"}`+rate+`))`, "delivered"),
			promQuery(`sum(rate(vrsky_stage_messages_filtered_total`+rate+`))`, "filtered"))).
		WithPanel(graph("Retries and dead letters", "Messages scheduled for redelivery and messages sent to a dead-letter queue, per second.", "short",
			promQuery(`sum(rate(vrsky_stage_retries_total`+rate+`))`, "retries"),
			promQuery(`sum(rate(vrsky_stage_dlq_total`+rate+`))`, "to DLQ"))).
		WithPanel(graph("End-to-end latency", "Time from ingestion to delivery, p50 and p99 over every tenant.", "s",
			promQuery(`histogram_quantile(0.5, sum by (le) (rate(vrsky_end_to_end_seconds_bucket`+rate+`)))`, "p50"),
			promQuery(`histogram_quantile(0.99, sum by (le) (rate(vrsky_end_to_end_seconds_bucket`+rate+`)))`, "p99"))).
		WithPanel(graph("Consumer lag, top 10 integrations", "Messages waiting for a stage, summed per integration; the ten largest.", "short",
			promQuery(`topk(10, sum by (tenant, integration) (vrsky_stage_consumer_lag))`, "{{tenant}}/{{integration}}"))).
		WithPanel(graph("Dead-letter queues, top 10 tenants", "Messages held in each tenant's DLQ stream (kept 7 days).", "short",
			promQuery(`topk(10, sum by (tenant) (vrsky_dlq_messages))`, "{{tenant}}"))).
		WithPanel(graph("CDC replication slot lag", "WAL bytes each PostgreSQL CDC integration's replication slot holds back.", "bytes",
			promQuery(`max by (tenant, integration) (vrsky_cdc_slot_lag_bytes)`, "{{tenant}}/{{integration}}"))).
		WithPanel(graph("Claim-check", "Body bytes fetched from the blob store per second, and failed blob store operations by kind.", "short",
			promQuery(`sum(rate(vrsky_claimcheck_bytes_total`+rate+`))`, "bytes fetched"),
			promQuery(`sum by (operation) (rate(vrsky_claimcheck_errors_total`+rate+`))`, "{{operation}} errors"))).
		WithRow(dashboard.NewRowBuilder("Control plane")).
		WithPanel(graph("Provisioning duration p95", "95th percentile duration of tenant provisioning workflows by operation and outcome.", "s",
			promQuery(`histogram_quantile(0.95, sum by (le, operation, outcome) (rate(vrsky_provisioning_duration_seconds_bucket`+rate+`)))`, "{{operation}} {{outcome}}"))).
		WithPanel(graph("Provisioning failures", "Failed tenant provisioning operations per second.", "short",
			promQuery(`sum by (operation) (rate(vrsky_provisioning_failures_total`+rate+`))`, "{{operation}}"))).
		WithPanel(graph("Temporal workflows", "Workflows completed and failed in the worker (Temporal SDK metrics).", "short",
			promQuery(`sum(rate(temporal_workflow_completed_total`+rate+`))`, "completed"),
			promQuery(`sum(rate(temporal_workflow_failed_total`+rate+`))`, "failed"))).
		WithPanel(graph("Temporal task failures", "Workflow task and activity execution failures per second in the worker.", "short",
			promQuery(`sum(rate(temporal_workflow_task_execution_failed_total`+rate+`))`, "workflow tasks"),
			promQuery(`sum(rate(temporal_activity_execution_failed_total`+rate+`))`, "activities"))).
		WithRow(dashboard.NewRowBuilder("NATS")).
		WithPanel(single("NATS servers up", "Platform NATS servers the worker reaches on their monitoring port.", "short",
			promQuery(`sum(vrsky_nats_up)`, "up"))).
		WithPanel(single("JetStream meta leaders", "Servers that call themselves JetStream meta leader: exactly 1 in a healthy cluster.", "short",
			promQuery(`sum(vrsky_nats_jetstream_meta_leader)`, "leaders"))).
		WithPanel(single("JetStream storage used", "Largest share of its JetStream storage limit any platform server uses.", "percentunit",
			promQuery(`max(vrsky_nats_jetstream_storage_used_bytes / vrsky_nats_jetstream_storage_max_bytes)`, "used"))).
		WithPanel(single("NATS connections", "Client connections over all platform servers.", "short",
			promQuery(`sum(vrsky_nats_connections)`, "connections"))).
		WithRow(dashboard.NewRowBuilder("Logs")).
		WithPanel(logGraph("Errors logged by role and component", "Log lines at level ERROR per role and component (Loki).",
			lokiQuery(`sum by (role, component) (count_over_time(`+streams(`level="ERROR"`)+` [$__auto]))`, "{{role}} {{component}}"))).
		WithPanel(logGraph("Warnings logged by role", "Log lines at level WARN per role (Loki).",
			lokiQuery(`sum by (role) (count_over_time(`+streams(`level="WARN"`)+` [$__auto]))`, "{{role}}"))).
		WithPanel(logLines("Error log lines", "The latest ERROR lines of every role; open a line for its tenant, integration and request_id.",
			streams(`level="ERROR"`)))
}
