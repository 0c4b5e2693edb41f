-- Where each tenant's NATS streams live: on the shared platform cluster or
-- on a dedicated instance, or moving between the two. A tenant without a
-- row is on the shared cluster. The TenantPlacement workflow writes the
-- row at every step of a move; instance holds the dedicated instance's
-- sealed credentials, which only the workflow's activities open.
CREATE TABLE tenant_placements (
    tenant_id  text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    placement  text NOT NULL CHECK (placement IN ('shared', 'dedicated', 'moving-to-dedicated', 'moving-to-shared')),
    step       text NOT NULL DEFAULT '',
    forced     boolean NOT NULL DEFAULT false,
    instance   bytea NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change of a tenant's placement, for its history; only the last
-- 100 of each tenant are kept.
CREATE TABLE tenant_placement_events (
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id        bigserial NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    placement text NOT NULL CHECK (placement IN ('shared', 'dedicated', 'moving-to-dedicated', 'moving-to-shared')),
    step      text NOT NULL DEFAULT '',
    reason    text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tenant_placement_events_at_idx ON tenant_placement_events (tenant_id, at DESC);
