DROP TABLE IF EXISTS tenant_secrets;
DROP TABLE IF EXISTS message_states;
DROP TABLE IF EXISTS integration_events;
DROP TABLE IF EXISTS integration_versions;
DROP TABLE IF EXISTS integrations;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS tenants;
