ALTER TABLE tenant_secrets DROP COLUMN updated_at;
ALTER TABLE tenant_secrets DROP COLUMN version;
ALTER TABLE tenant_secrets DROP COLUMN key_id;
-- Sealed values hold their nonce; the column only has to exist again.
ALTER TABLE tenant_secrets ADD COLUMN nonce bytea NOT NULL DEFAULT ''::bytea;
