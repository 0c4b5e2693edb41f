-- Each tenant's egress policy: where its connectors may connect, set by a
-- platform admin (PATCH /v1/tenants/{id}) and mirrored to the runners in
-- the vrsky_egress KV bucket. '{}' is the default: public addresses only.
-- Its shape is sdk.EgressPolicy: {"allowPrivate": bool, "allowHosts": [..]}.
ALTER TABLE tenants ADD COLUMN egress jsonb NOT NULL DEFAULT '{}'::jsonb;
