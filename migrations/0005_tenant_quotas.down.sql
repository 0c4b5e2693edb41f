DELETE FROM tenants WHERE status = 'failed';
ALTER TABLE tenants DROP COLUMN failure_reason;
ALTER TABLE tenants DROP COLUMN limits;
