-- The metrics history: every few seconds, the worker writes one row per
-- running integration with its counters as they stand (cumulative counts of
-- messages in, out and failed attempts, and the dead letters waiting), so
-- the API can answer rates over the last 24 hours; older rows are pruned.
-- p50_ms and p99_ms stay NULL until runners report latencies.
CREATE TABLE integration_samples (
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    integration_id text NOT NULL,
    at             timestamptz NOT NULL,
    in_total       bigint NOT NULL,
    out_total      bigint NOT NULL,
    errors_total   bigint NOT NULL,
    dlq_messages   bigint NOT NULL,
    p50_ms         double precision NULL,
    p99_ms         double precision NULL,
    PRIMARY KEY (tenant_id, integration_id, at)
);
CREATE INDEX integration_samples_at_idx ON integration_samples (at);
