-- Each lifecycle transition carries the ID the control plane gave it (the
-- workflow run and the update that asked for it), so that recording it again
-- after a retry adds no second row to the log. Rows written by hand or before
-- this migration have none.
ALTER TABLE integration_events ADD COLUMN transition_id text NULL;
CREATE UNIQUE INDEX integration_events_transition_idx
    ON integration_events (tenant_id, transition_id);
