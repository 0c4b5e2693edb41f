-- Tenant secrets as the API seals them (internal/secretbox): the sealed value
-- records its key's ID and its own nonce, so the separate nonce column goes;
-- key_id tells which secrets a key rotation still has to re-seal; version
-- counts the writes of a name. Nothing ever wrote the table before this
-- migration, so no row has to be converted.
ALTER TABLE tenant_secrets DROP COLUMN nonce;
ALTER TABLE tenant_secrets ADD COLUMN key_id text NOT NULL DEFAULT '';
ALTER TABLE tenant_secrets ADD COLUMN version int NOT NULL DEFAULT 1;
ALTER TABLE tenant_secrets ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
