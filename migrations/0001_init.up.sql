-- Base metadata schema: tenants, their API keys, integrations and their
-- versioned specs, the lifecycle log, per-message state for messages that are
-- not on the happy path, and encrypted tenant secrets.
-- Every tenant-owned table starts its primary key and indexes with tenant_id.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz NULL
);

-- Keys are looked up by their hash on every request, before the tenant is
-- known; only the hash is stored.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NULL,
    revoked_at   timestamptz NULL
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

CREATE TABLE integrations (
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              text NOT NULL,
    name            text NOT NULL,
    current_version int NOT NULL DEFAULT 0,
    desired_status  text NOT NULL DEFAULT 'stopped',
    status          text NOT NULL DEFAULT 'stopped',
    last_error      text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE integration_versions (
    tenant_id      text NOT NULL,
    integration_id text NOT NULL,
    version        int NOT NULL,
    spec           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NULL,
    PRIMARY KEY (tenant_id, integration_id, version),
    FOREIGN KEY (tenant_id, integration_id)
        REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);

-- The lifecycle log of every integration. It is an audit trail, so it has no
-- foreign key to integrations: it outlives a deleted integration.
CREATE TABLE integration_events (
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             bigserial NOT NULL,
    integration_id text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    action         text NOT NULL,
    from_status    text NULL,
    to_status      text NULL,
    reason         text NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX integration_events_integration_idx
    ON integration_events (tenant_id, integration_id, at);

-- Mirror of the per-message state kept in NATS KV, only for messages that
-- are retrying, failed or dead-lettered.
CREATE TABLE message_states (
    tenant_id      text NOT NULL,
    integration_id text NOT NULL,
    message_id     text NOT NULL,
    stage          text NOT NULL,
    state          text NOT NULL CHECK (state IN ('retrying', 'failed', 'dlq')),
    attempts       int NOT NULL DEFAULT 0,
    last_error     text NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, integration_id, message_id, stage),
    FOREIGN KEY (tenant_id, integration_id)
        REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_states_state_idx
    ON message_states (tenant_id, integration_id, state, updated_at);

CREATE TABLE tenant_secrets (
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    ciphertext bytea NOT NULL,
    nonce      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
