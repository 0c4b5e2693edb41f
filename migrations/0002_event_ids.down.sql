DROP INDEX IF EXISTS integration_events_transition_idx;
ALTER TABLE integration_events DROP COLUMN IF EXISTS transition_id;
