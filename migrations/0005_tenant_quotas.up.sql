-- A tenant's quotas (JetStream disk, memory, streams, consumers, DLQ size,
-- integrations), as given at creation or changed by an admin; NULL means
-- the defaults. A tenant whose provisioning failed stays, in status
-- 'failed', with the reason, so that GET shows why.
ALTER TABLE tenants ADD COLUMN limits jsonb NULL;
ALTER TABLE tenants ADD COLUMN failure_reason text NULL;
